/// Float -> GGUF blocks, matching ggml's reference quantizers (`quantize_row_*_ref`) bit for bit:
/// round-to-nearest with the same scale choice, truncation and clamping.
public enum Quantize {
    /// Writes `count` values from `src` as `type` into `out` (`type.rowBytes(count:)` bytes).
    ///
    /// Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1 (the K-quants have no reference quantizer
    /// here; this traps for them). `count` must be a whole number of blocks (checked).
    /// Error bounds after `Dequantize.row` (per block, amax = max|x|, before fp16 rounding of d):
    ///   Q8_0: |x − x̂| <= d/2 + ε·|x| with d = amax/127;
    ///   Q4_0: |x − x̂| <= d with d = amax/8 (truncation after +8.5 makes the step one-sided);
    ///   Q4_1: |x − x̂| <= d/2 + ... with d = (max − min)/15;
    ///   plus the rounding of d (and m) to fp16 (relative 2^-11).
    public static func row(_ type: GGMLType, src: UnsafePointer<Float>, out: UnsafeMutableRawPointer, count: Int) {
        precondition(type.rowBytes(count: count) != nil,
                     "Quantize.row: \(count) values are not a whole number of \(type.name) blocks")
        let blocks = count / type.blockSize
        switch type {
        case .f32: out.copyMemory(from: src, byteCount: 4 * count)
        case .f16: for i in 0 ..< count { out.storeBytes(of: HalfFloat.fromFloat(src[i]), toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16: for i in 0 ..< count { out.storeBytes(of: HalfFloat.bf16FromFloat(src[i]), toByteOffset: 2 * i, as: UInt16.self) }
        case .q8_0: for b in 0 ..< blocks { q8_0Block(src + 32 * b, out + 34 * b) }
        case .q4_0: for b in 0 ..< blocks { q4_0Block(src + 32 * b, out + 18 * b) }
        case .q4_1: for b in 0 ..< blocks { q4_1Block(src + 32 * b, out + 20 * b) }
        case .q4_K, .q6_K: preconditionFailure("Quantize.row: \(type.name) is dequantize-only")
        }
    }

    /// Array convenience: the bytes of `values` quantized as `type`.
    public static func bytes(_ type: GGMLType, _ values: [Float]) -> [UInt8] {
        guard let n = type.rowBytes(count: values.count) else {
            preconditionFailure("Quantize.bytes: \(values.count) values are not a whole number of \(type.name) blocks")
        }
        var out = [UInt8](repeating: 0, count: n)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBytes { o in
                if let base = v.baseAddress, let ob = o.baseAddress { row(type, src: base, out: ob, count: values.count) }
            }
        }
        return out
    }

    /// ggml quantize_row_q8_0_ref: d = amax/127, q = round(x/d) half away from zero.
    static func q8_0Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for j in 0 ..< 32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        y.storeBytes(of: HalfFloat.fromFloat(d), as: UInt16.self)
        for j in 0 ..< 32 {
            let q = (x[j] * id).rounded(.toNearestOrAwayFromZero)
            let clamped: Int8 = q.isNaN ? 0 : Int8(max(-128, min(127, q)))
            y.storeBytes(of: clamped, toByteOffset: 2 + j, as: Int8.self)
        }
    }

    /// ggml quantize_row_q4_0_ref: the signed value of largest magnitude maps to −8,
    /// q = min(15, trunc(x/d + 8.5)).
    static func q4_0Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var amax: Float = 0, mx: Float = 0
        for j in 0 ..< 32 where amax < abs(x[j]) { amax = abs(x[j]); mx = x[j] }
        let d = mx / -8
        let id: Float = d != 0 ? 1 / d : 0
        y.storeBytes(of: HalfFloat.fromFloat(d), as: UInt16.self)
        for j in 0 ..< 16 {
            let q0 = nibble(x[j] * id + 8.5), q1 = nibble(x[j + 16] * id + 8.5)
            y.storeBytes(of: q0 | (q1 << 4), toByteOffset: 2 + j, as: UInt8.self)
        }
    }

    /// ggml quantize_row_q4_1_ref: d = (max − min)/15, m = min, q = min(15, trunc((x − min)/d + 0.5)).
    static func q4_1Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for j in 0 ..< 32 { lo = min(lo, x[j]); hi = max(hi, x[j]) }
        let d = (hi - lo) / 15
        let id: Float = d != 0 ? 1 / d : 0
        y.storeBytes(of: HalfFloat.fromFloat(d), as: UInt16.self)
        y.storeBytes(of: HalfFloat.fromFloat(lo), toByteOffset: 2, as: UInt16.self)
        for j in 0 ..< 16 {
            let q0 = nibble((x[j] - lo) * id + 0.5), q1 = nibble((x[j + 16] - lo) * id + 0.5)
            y.storeBytes(of: q0 | (q1 << 4), toByteOffset: 4 + j, as: UInt8.self)
        }
    }

    /// C's `MIN(15, (int8_t)v)` for the non-negative v the quantizers produce (truncation).
    @inline(__always) static func nibble(_ v: Float) -> UInt8 {
        let t = v.isFinite ? max(0, min(15, v.rounded(.towardZero))) : 0
        return UInt8(t)
    }
}
