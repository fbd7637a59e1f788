/// Row-wise softmax: out[r, :] = exp(inp[r, :] − max) / Σ exp(inp[r, :] − max).
public enum Softmax {
    /// Shapes: `inp`, `out` are (rows, columns) contiguous.
    /// Contract: overwrites `out`; `out` may alias `inp`. Entries of −infinity (masks) give 0;
    /// a row that is entirely −infinity gives zeros (not NaN). The output itself is what
    /// `backward` needs. Parallel over rows; bitwise identical for any `workers`.
    /// Accuracy: within `FastMath.expMaxRelativeError` + a few ulps of the exact softmax.
    /// Cost: about 4·rows·columns FLOPs + one exp per element; two passes over each row.
    public static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               rows: Int, columns: Int, workers: Int? = nil) {
        precondition(rows >= 0 && columns >= 1, "Softmax.forward: bad shape rows=\(rows) columns=\(columns)")
        let N = columns
        Parallel.run(workers: workers, maxUseful: max(1, rows * N / 4096)) { ith, nth in
            for r in Parallel.range(ith, of: nth, count: rows) {
                let x = inp + r * N, y = out + r * N
                let m = rowMax(x, N)
                if m == -.infinity { y.update(repeating: 0, count: N); continue }
                let sum = expShiftedSum(x, y, N, shift: m)
                let inv = VFloat(repeating: 1 / sum)
                var c = 0
                while c + vLanes <= N { vstore(vload(y, c) * inv, y, c); c += vLanes }
                while c < N { y[c] *= inv[0]; c += 1 }
            }
        }
    }

    /// dinp[r, c] += out[r, c] · (dout[r, c] − Σ_j out[r, j]·dout[r, j]).
    ///
    /// Shapes as `forward`; `out` is the forward output. Contract: ACCUMULATES into `dinp`,
    /// which must not alias `out` or `dout`. Parallel over rows; bitwise identical for any `workers`.
    /// Cost: 4·rows·columns FLOPs.
    public static func backward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                out: UnsafePointer<Float>, rows: Int, columns: Int, workers: Int? = nil) {
        precondition(rows >= 0 && columns >= 1, "Softmax.backward: bad shape rows=\(rows) columns=\(columns)")
        let N = columns
        Parallel.run(workers: workers, maxUseful: max(1, rows * N / 4096)) { ith, nth in
            for r in Parallel.range(ith, of: nth, count: rows) {
                let y = out + r * N, g = dout + r * N, dx = dinp + r * N
                var a0 = VFloat(), a1 = VFloat()
                var c = 0
                while c + 2 * vLanes <= N {
                    fmadd(&a0, vload(y, c), vload(g, c)); fmadd(&a1, vload(y, c + vLanes), vload(g, c + vLanes))
                    c += 2 * vLanes
                }
                while c + vLanes <= N { fmadd(&a0, vload(y, c), vload(g, c)); c += vLanes }
                var dot = (a0 + a1).sum()
                while c < N { dot += y[c] * g[c]; c += 1 }
                let dv = VFloat(repeating: dot)
                c = 0
                while c + vLanes <= N {
                    var d = vload(dx, c)
                    fmadd(&d, vload(y, c), vload(g, c) - dv)
                    vstore(d, dx, c)
                    c += vLanes
                }
                while c < N { dx[c] += y[c] * (g[c] - dot); c += 1 }
            }
        }
    }

    /// Maximum of `count` floats (−infinity for an all-masked row).
    @inline(__always)
    static func rowMax(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var m0 = VFloat(repeating: -.infinity), m1 = m0
        var c = 0
        while c + 2 * vLanes <= count {
            m0 = vmax(m0, vload(x, c)); m1 = vmax(m1, vload(x, c + vLanes)); c += 2 * vLanes
        }
        while c + vLanes <= count { m0 = vmax(m0, vload(x, c)); c += vLanes }
        var m = vmax(m0, m1).max()
        while c < count { m = Swift.max(m, x[c]); c += 1 }
        return m
    }

    /// y[c] = exp(x[c] − shift) for c < count; returns Σ y (y may alias x).
    @inline(__always)
    static func expShiftedSum(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                              shift: Float) -> Float {
        let sv = VFloat(repeating: shift)
        var s0 = VFloat(), s1 = VFloat()
        var c = 0
        while c + 2 * vLanes <= count {
            let e0 = vexp(vload(x, c) - sv), e1 = vexp(vload(x, c + vLanes) - sv)
            vstore(e0, y, c); vstore(e1, y, c + vLanes)
            s0 += e0; s1 += e1
            c += 2 * vLanes
        }
        while c + vLanes <= count {
            let e0 = vexp(vload(x, c) - sv); vstore(e0, y, c); s0 += e0; c += vLanes
        }
        var s = (s0 + s1).sum()
        if c < count {
            var v = VFloat(repeating: -.infinity)
            for j in 0 ..< count - c { v[j] = x[c + j] }
            let e = vexp(v - sv)
            for j in 0 ..< count - c { y[c + j] = e[j]; s += e[j] }
        }
        return s
    }
}
