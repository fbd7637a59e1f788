import Foundation

/// AdamW on flat parameter buffers (Loshchilov & Hutter 2019, decoupled weight decay), in the
/// order PyTorch's `torch.optim.AdamW` (foreach=False) applies it, plus global-norm clipping.
public enum AdamW {
    /// Hyperparameters of one step.
    public struct Options: Sendable {
        public var learningRate: Float
        public var beta1: Float
        public var beta2: Float
        public var eps: Float
        public var weightDecay: Float
        public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                    weightDecay: Float = 0.01) {
            self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
            self.eps = eps; self.weightDecay = weightDecay
        }
    }

    /// One AdamW step at step number `step` (1 for the first step), for each i < count:
    ///   g = gradScale·grad[i]
    ///   param[i] *= 1 − lr·weightDecay                       (decoupled decay)
    ///   m[i] = β1·m[i] + (1 − β1)·g;  v[i] = β2·v[i] + (1 − β2)·g²
    ///   param[i] −= (lr / (1 − β1^step)) · m[i] / (sqrt(v[i]) / sqrt(1 − β2^step) + eps)
    ///
    /// Shapes: `param`, `grad`, `m`, `v` are flat arrays of `count` floats (m and v start at 0).
    /// Contract: updates `param`, `m`, `v` in place; reads `grad`. `gradScale` carries the
    /// clipping factor from `clipScale` (1 = no clipping). Elementwise, parallel over ranges;
    /// bitwise identical for any `workers`. Cost: about 14 FLOPs + 1 sqrt + 1 division per
    /// element; 28 bytes moved per element.
    public static func step(param: UnsafeMutablePointer<Float>, grad: UnsafePointer<Float>,
                            m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                            count: Int, step: Int, options: Options, gradScale: Float = 1,
                            workers: Int? = nil) {
        precondition(count >= 0 && step >= 1, "AdamW.step: count must be >= 0 and step >= 1")
        let o = options
        let bc1 = 1 - Foundation.pow(Double(o.beta1), Double(step))
        let bc2 = 1 - Foundation.pow(Double(o.beta2), Double(step))
        let stepSize = Float(Double(o.learningRate) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let decay = 1 - o.learningRate * o.weightDecay
        let blocks = (count + vLanes - 1) / vLanes
        Parallel.run(workers: workers, maxUseful: max(1, count / 32768)) { ith, nth in
            let b1 = VFloat(repeating: o.beta1), b2 = VFloat(repeating: o.beta2)
            let c1 = VFloat(repeating: 1 - o.beta1), c2 = VFloat(repeating: 1 - o.beta2)
            let gs = VFloat(repeating: gradScale), dv = VFloat(repeating: decay)
            let ss = VFloat(repeating: stepSize), bs = VFloat(repeating: bc2Sqrt), ev = VFloat(repeating: o.eps)
            for b in Parallel.range(ith, of: nth, count: blocks) {
                let i = b * vLanes
                let n = min(vLanes, count - i)
                var p = VFloat(), g = VFloat(), mv = VFloat(), vv = VFloat()
                if n == vLanes {
                    p = vload(param, i); g = vload(grad, i); mv = vload(m, i); vv = vload(v, i)
                } else {
                    for j in 0 ..< n { p[j] = param[i + j]; g[j] = grad[i + j]; mv[j] = m[i + j]; vv[j] = v[i + j] }
                }
                g *= gs
                p *= dv
                mv = b1 * mv + c1 * g
                vv = b2 * vv + c2 * (g * g)
                let denom = vv.squareRoot() / bs + ev
                p -= ss * (mv / denom)
                if n == vLanes {
                    vstore(p, param, i); vstore(mv, m, i); vstore(vv, v, i)
                } else {
                    for j in 0 ..< n { param[i + j] = p[j]; m[i + j] = mv[j]; v[i + j] = vv[j] }
                }
            }
        }
    }

    /// Floats per partial sum of `sumOfSquares`: a fixed chunk, independent of the worker count.
    package static let normChunk = 8192

    /// Σ x² over `count` floats, deterministic for any `workers`.
    ///
    /// The buffer is cut into fixed chunks of `normChunk` floats; each chunk's partial sum is
    /// formed the same way whichever worker computes it (Float SIMD accumulators, then Double),
    /// and the partials are added in chunk order in Double. Bitwise identical for any `workers`.
    /// Cost: 2·count FLOPs; reads 4·count bytes.
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int, workers: Int? = nil) -> Double {
        precondition(count >= 0, "AdamW.sumOfSquares: negative count")
        let chunks = (count + normChunk - 1) / normChunk
        if chunks == 0 { return 0 }
        return Workspace.withScratch(floats: 2 * chunks) { scratch in
            let partial = UnsafeMutableRawPointer(scratch).bindMemory(to: Double.self, capacity: chunks)
            Parallel.run(workers: workers, maxUseful: chunks) { ith, nth in
                for k in Parallel.range(ith, of: nth, count: chunks) {
                    let lo = k * normChunk
                    partial[k] = Double(RMSNorm.sumOfSquares(x + lo, min(normChunk, count - lo)))
                }
            }
            var s = 0.0
            for k in 0 ..< chunks { s += partial[k] }
            return s
        }
    }

    /// Global L2 norm of several gradient buffers: sqrt(Σ over buffers of `sumOfSquares`),
    /// buffers combined in the order given. Deterministic for any `workers`.
    public static func globalNorm(_ buffers: [(pointer: UnsafePointer<Float>, count: Int)], workers: Int? = nil) -> Double {
        var s = 0.0
        for b in buffers { s += sumOfSquares(b.pointer, count: b.count, workers: workers) }
        return s.squareRoot()
    }

    /// The factor `step` multiplies gradients by for global-norm clipping, as
    /// `torch.nn.utils.clip_grad_norm_`: min(1, maxNorm / (norm + 1e-6)).
    public static func clipScale(norm: Double, maxNorm: Double) -> Float {
        precondition(maxNorm > 0, "AdamW.clipScale: maxNorm must be positive")
        return Float(min(1, maxNorm / (norm + 1e-6)))
    }
}
