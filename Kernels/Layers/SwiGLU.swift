/// The gated feed-forward activation of Llama: out = silu(gate) ⊙ up, silu(g) = g·σ(g).
public enum SwiGLU {
    /// out[i] = gate[i] · σ(gate[i]) · up[i], σ(g) = 1 / (1 + e^(−g)) through `vexp`.
    ///
    /// Shapes: `gate`, `up`, `out` are flat arrays of `count` floats (e.g. tokens x FFN).
    /// Contract: overwrites `out`; `out` may alias `gate` or `up`. Nothing needs saving for
    /// backward (it recomputes σ from `gate`). Parallel over contiguous ranges; bitwise identical
    /// for any `workers`.
    /// Accuracy: relative error of σ at most about 2·`FastMath.expMaxRelativeError` + 1 ulp.
    /// Cost: about 6 FLOPs + one exp per element; 12·count bytes.
    /// Reference: Shazeer 2020, "GLU Variants Improve Transformer".
    public static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>,
                               up: UnsafePointer<Float>, count: Int, workers: Int? = nil) {
        precondition(count >= 0, "SwiGLU.forward: negative count")
        let blocks = (count + vLanes - 1) / vLanes
        Parallel.run(workers: workers, maxUseful: max(1, count / 16384)) { ith, nth in
            let r = Parallel.range(ith, of: nth, count: blocks)
            for b in r {
                let i = b * vLanes
                if i + vLanes <= count {
                    let g = vload(gate, i)
                    vstore(g * sigmoid(g) * vload(up, i), out, i)
                } else {
                    var g = VFloat(), u = VFloat()
                    for j in 0 ..< count - i { g[j] = gate[i + j]; u[j] = up[i + j] }
                    let y = g * sigmoid(g) * u
                    for j in 0 ..< count - i { out[i + j] = y[j] }
                }
            }
        }
    }

    /// Accumulates the gradients of `forward`:
    ///   dgate[i] += dout[i] · up[i] · σ(g)·(1 + g·(1 − σ(g)))     (g = gate[i])
    ///   dup[i]   += dout[i] · g · σ(g)
    ///
    /// Shapes as `forward`. Contract: ACCUMULATES into `dgate` and `dup`; they must not alias
    /// each other or the inputs. Parallel over ranges; bitwise identical for any `workers`.
    /// Cost: about 12 FLOPs + one exp per element; 20·count bytes.
    public static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                                dout: UnsafePointer<Float>, gate: UnsafePointer<Float>,
                                up: UnsafePointer<Float>, count: Int, workers: Int? = nil) {
        precondition(count >= 0, "SwiGLU.backward: negative count")
        let blocks = (count + vLanes - 1) / vLanes
        Parallel.run(workers: workers, maxUseful: max(1, count / 16384)) { ith, nth in
            for b in Parallel.range(ith, of: nth, count: blocks) {
                let i = b * vLanes
                let n = min(vLanes, count - i)
                var g = VFloat(), u = VFloat(), d = VFloat(), dg = VFloat(), du = VFloat()
                if n == vLanes {
                    g = vload(gate, i); u = vload(up, i); d = vload(dout, i)
                    dg = vload(dgate, i); du = vload(dup, i)
                } else {
                    for j in 0 ..< n { g[j] = gate[i + j]; u[j] = up[i + j]; d[j] = dout[i + j]; dg[j] = dgate[i + j]; du[j] = dup[i + j] }
                }
                // in the forward pass this was: out = g · σ(g) · u
                let s = sigmoid(g)
                let one = VFloat(repeating: 1)
                let dsilu = s * (one + g * (one - s))
                dg += d * u * dsilu
                du += d * g * s
                if n == vLanes {
                    vstore(dg, dgate, i); vstore(du, dup, i)
                } else {
                    for j in 0 ..< n { dgate[i + j] = dg[j]; dup[i + j] = du[j] }
                }
            }
        }
    }

    @inline(__always)
    static func sigmoid(_ g: VFloat) -> VFloat {
        let one = VFloat(repeating: 1)
        return one / (one + vexp(-g))
    }
}
