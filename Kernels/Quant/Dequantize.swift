/// GGUF block formats -> Float, bit-exact with ggml's `dequantize_row_*` evaluated in IEEE
/// single precision without fused multiply-add (`d1·q − m1` is a rounded product, then a
/// rounded difference). Blocks are read little-endian from unaligned bytes.
public enum Dequantize {
    /// out[0..<count] = the `count` values stored at `src` as `type`.
    ///
    /// Shapes: `src` holds `type.rowBytes(count:)` bytes; `count` is a multiple of
    /// `type.blockSize` (checked). Contract: overwrites `out`; single-threaded (see `rows`).
    /// Cost: reads rowBytes, writes 4·count bytes.
    public static func row(_ type: GGMLType, src: UnsafeRawPointer, out: UnsafeMutablePointer<Float>, count: Int) {
        precondition(type.rowBytes(count: count) != nil,
                     "Dequantize.row: \(count) values are not a whole number of \(type.name) blocks")
        let blocks = count / type.blockSize
        switch type {
        case .f32: out.update(from: src.bindMemory(to: Float.self, capacity: count), count: count)
        case .f16: for i in 0 ..< count { out[i] = HalfFloat.toFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .bf16: for i in 0 ..< count { out[i] = HalfFloat.bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .q8_0: for b in 0 ..< blocks { q8_0Block(src + 34 * b, out + 32 * b) }
        case .q4_0: for b in 0 ..< blocks { q4_0Block(src + 18 * b, out + 32 * b) }
        case .q4_1: for b in 0 ..< blocks { q4_1Block(src + 20 * b, out + 32 * b) }
        case .q4_K: for b in 0 ..< blocks { q4_KBlock(src + 144 * b, out + 256 * b) }
        case .q6_K: for b in 0 ..< blocks { q6_KBlock(src + 210 * b, out + 256 * b) }
        }
    }

    /// Dequantizes a (rows, columns) matrix stored row after row (each row `rowBytes` long).
    /// Contract: overwrites `out` (rows x columns floats); parallel over rows.
    public static func rows(_ type: GGMLType, src: UnsafeRawPointer, out: UnsafeMutablePointer<Float>,
                            rows: Int, columns: Int, workers: Int? = nil) {
        guard let rb = type.rowBytes(count: columns), rows >= 0 else {
            preconditionFailure("Dequantize.rows: \(columns) columns are not a whole number of \(type.name) blocks")
        }
        Parallel.run(workers: workers, maxUseful: max(1, rows * columns / 16384)) { ith, nth in
            for r in Parallel.range(ith, of: nth, count: rows) {
                row(type, src: src + r * rb, out: out + r * columns, count: columns)
            }
        }
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        HalfFloat.toFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) static func bytes16(_ p: UnsafeRawPointer) -> SIMD16<UInt8> {
        p.loadUnaligned(as: SIMD16<UInt8>.self)
    }

    @inline(__always) static func float16(_ v: SIMD16<UInt8>) -> SIMD16<Float> {
        SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v))
    }

    @inline(__always) static func float16(_ v: SIMD16<Int8>) -> SIMD16<Float> {
        SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v))
    }

    /// Q8_0: x[j] = qs[j]·d.
    @inline(__always) static func q8_0Block(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = SIMD16<Float>(repeating: half(b, 0))
        let q0 = (b + 2).loadUnaligned(as: SIMD16<Int8>.self), q1 = (b + 18).loadUnaligned(as: SIMD16<Int8>.self)
        UnsafeMutableRawPointer(y).storeBytes(of: float16(q0) * d, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + 16).storeBytes(of: float16(q1) * d, as: SIMD16<Float>.self)
    }

    /// Q4_0: x[j] = (qs[j] & 15 − 8)·d, x[j + 16] = (qs[j] >> 4 − 8)·d.
    @inline(__always) static func q4_0Block(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = SIMD16<Float>(repeating: half(b, 0))
        let q = bytes16(b + 2), eight = SIMD16<Float>(repeating: 8)
        UnsafeMutableRawPointer(y).storeBytes(of: (float16(q & 0x0F) - eight) * d, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + 16).storeBytes(of: (float16(q &>> 4) - eight) * d, as: SIMD16<Float>.self)
    }

    /// Q4_1: x[j] = (qs[j] & 15)·d + m, x[j + 16] = (qs[j] >> 4)·d + m.
    @inline(__always) static func q4_1Block(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = SIMD16<Float>(repeating: half(b, 0)), m = SIMD16<Float>(repeating: half(b, 2))
        let q = bytes16(b + 4)
        UnsafeMutableRawPointer(y).storeBytes(of: float16(q & 0x0F) * d + m, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(y + 16).storeBytes(of: float16(q &>> 4) * d + m, as: SIMD16<Float>.self)
    }

    /// 6-bit scale and min of sub-block j (0..<8) from Q4_K's 12 packed bytes.
    @inline(__always) static func scaleMinK4(_ j: Int, _ s: UnsafeRawPointer) -> (UInt8, UInt8) {
        let q = s.assumingMemoryBound(to: UInt8.self)
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }

    /// Q4_K super-block of 256: 8 sub-blocks of 32 with 6-bit scale sc and min mn;
    /// x = (d·sc)·q − (dmin·mn), low nibbles of 32 bytes first, then their high nibbles.
    static func q4_KBlock(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(b, 0), dmin = half(b, 2)
        let scales = b + 4
        var q = (b + 16).assumingMemoryBound(to: UInt8.self)
        var out = y
        for pair in 0 ..< 4 {
            let (s1, m1) = scaleMinK4(2 * pair, scales), (s2, m2) = scaleMinK4(2 * pair + 1, scales)
            let d1 = d * Float(s1), mm1 = dmin * Float(m1), d2 = d * Float(s2), mm2 = dmin * Float(m2)
            for l in 0 ..< 32 { out[l] = d1 * Float(q[l] & 0xF) - mm1 }
            for l in 0 ..< 32 { out[32 + l] = d2 * Float(q[l] >> 4) - mm2 }
            q += 32; out += 64
        }
    }

    /// Q6_K super-block of 256: 6-bit q = low nibble (ql) | 2 high bits (qh) << 4, minus 32;
    /// 16 int8 scales, one per 16 values; x = (d·scale)·q.
    static func q6_KBlock(_ b: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        var ql = b.assumingMemoryBound(to: UInt8.self)
        var qh = (b + 128).assumingMemoryBound(to: UInt8.self)
        var sc = (b + 192).assumingMemoryBound(to: Int8.self)
        let d = half(b, 208)
        var out = y
        for _ in 0 ..< 2 {
            for l in 0 ..< 32 {
                let i = l / 16
                let q1 = Int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32
                let q2 = Int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32
                let q3 = Int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32
                let q4 = Int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32
                out[l] = d * Float(sc[i]) * Float(q1)
                out[l + 32] = d * Float(sc[i + 2]) * Float(q2)
                out[l + 64] = d * Float(sc[i + 4]) * Float(q3)
                out[l + 96] = d * Float(sc[i + 6]) * Float(q4)
            }
            out += 128; ql += 64; qh += 32; sc += 8
        }
    }
}
