/// Decode-time matrix-vector product reading quantized weight rows directly.
///
/// y[n] = Σ_k W[n, k]·x[k], W stored row-major as N rows of K values in GGUF blocks (the
/// layout of a GGUF tensor with ne0 = K, ne1 = N). Blocks are dequantized in registers and
/// never written to memory: the kernel is bound by the bandwidth of reading W.
public enum QuantizedGEMV {
    /// Supported weight types.
    public static func supports(_ type: GGMLType) -> Bool { type == .q8_0 || type == .q4_1 }

    /// y[n] = Σ_k W[n, k]·x[k] for n < rows (overwrites y).
    ///
    /// Shapes: `w` is rows·`type.rowBytes(count: columns)` bytes; `x` is (columns) floats;
    /// `y` is (rows). `columns` is a multiple of 32 (checked). Types: Q8_0 (x = q·d) and
    /// Q4_1 (x = q·d + m, computed as d·Σ q·x + m·Σ x per block, Σ x precomputed once per call).
    /// Contract: overwrites `y`; parallel over contiguous row ranges; bitwise identical for any
    /// `workers`. Accumulation is per row in Float: each block contributes d·(q·x) (one product
    /// per element, summed in 16-lane vectors); the error bound is that of a dot product of
    /// length K over the dequantized weights.
    /// Cost: 2·rows·columns FLOPs; reads rows·rowBytes + 4·columns bytes.
    public static func gemv(_ type: GGMLType, w: UnsafeRawPointer, x: UnsafePointer<Float>,
                            y: UnsafeMutablePointer<Float>, rows: Int, columns: Int, workers: Int? = nil) {
        precondition(supports(type), "QuantizedGEMV: \(type.name) is not supported (Q8_0, Q4_1)")
        precondition(rows >= 0 && columns >= 0 && columns % 32 == 0,
                     "QuantizedGEMV: columns \(columns) must be a multiple of 32")
        let K = columns, blocks = K / 32
        let rowBytes = type.rowBytes(count: K)!
        let useful = max(1, rows * rowBytes / 65536)
        switch type {
        case .q8_0:
            Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
                for n in Parallel.range(ith, of: nth, count: rows) {
                    y[n] = dotQ8_0(w + n * rowBytes, x, blocks)
                }
            }
        case .q4_1:
            Workspace.withScratch(floats: max(1, blocks)) { xsum in
                for b in 0 ..< blocks {
                    var s = SIMD16<Float>()
                    s += UnsafeRawPointer(x + 32 * b).loadUnaligned(as: SIMD16<Float>.self)
                    s += UnsafeRawPointer(x + 32 * b + 16).loadUnaligned(as: SIMD16<Float>.self)
                    xsum[b] = s.sum()
                }
                Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
                    for n in Parallel.range(ith, of: nth, count: rows) {
                        y[n] = dotQ4_1(w + n * rowBytes, x, xsum, blocks)
                    }
                }
            }
        default:
            preconditionFailure("unreachable")
        }
    }

    @inline(__always)
    static func loadX(_ x: UnsafePointer<Float>, _ i: Int) -> SIMD16<Float> {
        UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Σ_b d_b · Σ_j q_bj · x_bj over one Q8_0 row.
    @inline(__always)
    static func dotQ8_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ blocks: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var p = row
        for b in 0 ..< blocks {
            let d = SIMD16<Float>(repeating: Dequantize.half(p, 0))
            let q0 = Dequantize.float16((p + 2).loadUnaligned(as: SIMD16<Int8>.self))
            let q1 = Dequantize.float16((p + 18).loadUnaligned(as: SIMD16<Int8>.self))
            fmadd(&acc0, q0 * d, loadX(x, 32 * b))
            fmadd(&acc1, q1 * d, loadX(x, 32 * b + 16))
            p += 34
        }
        return (acc0 + acc1).sum()
    }

    /// Σ_b (d_b · Σ_j q_bj · x_bj + m_b · Σ_j x_bj) over one Q4_1 row.
    @inline(__always)
    static func dotQ4_1(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, _ xsum: UnsafePointer<Float>,
                        _ blocks: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var mterm: Float = 0
        var p = row
        for b in 0 ..< blocks {
            let d = SIMD16<Float>(repeating: Dequantize.half(p, 0))
            mterm += Dequantize.half(p, 2) * xsum[b]
            let q = Dequantize.bytes16(p + 4)
            fmadd(&acc0, Dequantize.float16(q & 0x0F) * d, loadX(x, 32 * b))
            fmadd(&acc1, Dequantize.float16(q &>> 4) * d, loadX(x, 32 * b + 16))
            p += 20
        }
        return (acc0 + acc1).sum() + mterm
    }
}
