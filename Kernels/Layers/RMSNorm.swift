import Foundation

/// Root-mean-square layer normalisation with a learned per-channel weight (Llama).
public enum RMSNorm {
    /// out[r, c] = inp[r, c] · rstd[r] · weight[c], with rstd[r] = 1 / sqrt(mean_c(inp[r, c]²) + eps).
    ///
    /// Shapes: `inp`, `out` are (rows, channels) row-major, contiguous; `weight` is (channels);
    /// `rstd` is (rows) and receives the reciprocal RMS of each row, which `backward` needs.
    /// Contract: overwrites `out` and `rstd`; `out` may alias `inp` (in-place). Parallel over
    /// rows; bitwise identical for any `workers`.
    /// Cost: 4·rows·channels FLOPs; 4·(2·rows·channels + channels + rows) bytes.
    /// Reference: Zhang & Sennrich 2019, "Root Mean Square Layer Normalization".
    public static func forward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               rows: Int, channels: Int, eps: Float, workers: Int? = nil) {
        precondition(rows >= 0 && channels >= 1, "RMSNorm.forward: bad shape rows=\(rows) channels=\(channels)")
        precondition(eps >= 0, "RMSNorm.forward: eps must be >= 0")
        let C = channels
        Parallel.run(workers: workers, maxUseful: max(1, rows * C / 4096)) { ith, nth in
            for r in Parallel.range(ith, of: nth, count: rows) {
                let x = inp + r * C, y = out + r * C
                let ss = sumOfSquares(x, C)
                let s = 1 / (ss / Float(C) + eps).squareRoot()
                rstd[r] = s
                let sv = VFloat(repeating: s)
                var c = 0
                while c + vLanes <= C {
                    vstore(vload(x, c) * sv * vload(weight, c), y, c)
                    c += vLanes
                }
                while c < C { y[c] = x[c] * s * weight[c]; c += 1 }
            }
        }
    }

    /// Accumulates the gradients of `forward`:
    ///   dinp[r, c]  += rstd·(weight[c]·dout[r, c]) − rstd³·inp[r, c]·(Σ_j dout[r, j]·weight[j]·inp[r, j]) / C
    ///   dweight[c]  += Σ_r dout[r, c]·inp[r, c]·rstd[r]
    ///
    /// Shapes as `forward`; `rstd` is the vector `forward` saved for the same `inp`.
    /// Contract: ACCUMULATES into `dinp` and `dweight` (zero them first for a plain gradient);
    /// `dinp` must not alias `inp` or `dout`. `dweight` may be nil (frozen weight). dinp is
    /// parallel over rows, dweight over channel ranges (each sums all rows in row order), so
    /// results are bitwise identical for any `workers`.
    /// Cost: about 9·rows·channels FLOPs; reads inp and dout twice.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                                rows: Int, channels: Int, workers: Int? = nil) {
        precondition(rows >= 0 && channels >= 1, "RMSNorm.backward: bad shape rows=\(rows) channels=\(channels)")
        let C = channels
        let useful = max(1, rows * C / 4096)
        Parallel.run(workers: workers, maxUseful: useful) { ith, nth in
            for r in Parallel.range(ith, of: nth, count: rows) {
                let x = inp + r * C, g = dout + r * C, dx = dinp + r * C
                let s = rstd[r]
                // in the forward pass this was: y = x · s · w, with s depending on every x_j
                var acc0 = VFloat(), acc1 = VFloat()
                var c = 0
                while c + 2 * vLanes <= C {
                    fmadd(&acc0, vload(g, c) * vload(weight, c), vload(x, c))
                    fmadd(&acc1, vload(g, c + vLanes) * vload(weight, c + vLanes), vload(x, c + vLanes))
                    c += 2 * vLanes
                }
                while c + vLanes <= C {
                    fmadd(&acc0, vload(g, c) * vload(weight, c), vload(x, c)); c += vLanes
                }
                var dot = (acc0 + acc1).sum()
                while c < C { dot += g[c] * weight[c] * x[c]; c += 1 }
                let k = s * s * s * dot / Float(C)
                let sv = VFloat(repeating: s), kv = VFloat(repeating: -k)
                c = 0
                while c + vLanes <= C {
                    var d = vload(dx, c)
                    fmadd(&d, sv * vload(weight, c), vload(g, c))
                    fmadd(&d, kv, vload(x, c))
                    vstore(d, dx, c)
                    c += vLanes
                }
                while c < C { dx[c] += s * weight[c] * g[c] - k * x[c]; c += 1 }
            }
        }
        guard let dweight else { return }
        // dweight is a reduction over rows: split channels, never rows.
        let blocks = (C + vLanes - 1) / vLanes
        Parallel.run(workers: workers, maxUseful: min(blocks, useful)) { ith, nth in
            let range = Parallel.range(ith, of: nth, count: blocks)
            if range.isEmpty { return }
            let c0 = range.lowerBound * vLanes, c1 = min(C, range.upperBound * vLanes)
            for r in 0 ..< rows {
                let x = inp + r * C, g = dout + r * C
                let sv = VFloat(repeating: rstd[r])
                var c = c0
                while c + vLanes <= c1 {
                    var d = vload(dweight, c)
                    fmadd(&d, vload(g, c) * vload(x, c), sv)
                    vstore(d, dweight, c)
                    c += vLanes
                }
                while c < c1 { dweight[c] += g[c] * x[c] * rstd[r]; c += 1 }
            }
        }
    }

    /// Σ x² over `count` floats with four vector accumulators.
    @inline(__always)
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat()
        var c = 0
        while c + 4 * vLanes <= count {
            let v0 = vload(x, c), v1 = vload(x, c + vLanes), v2 = vload(x, c + 2 * vLanes), v3 = vload(x, c + 3 * vLanes)
            fmadd(&a0, v0, v0); fmadd(&a1, v1, v1); fmadd(&a2, v2, v2); fmadd(&a3, v3, v3)
            c += 4 * vLanes
        }
        while c + vLanes <= count { let v = vload(x, c); fmadd(&a0, v, v); c += vLanes }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while c < count { s += x[c] * x[c]; c += 1 }
        return s
    }
}
