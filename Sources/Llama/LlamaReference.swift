import Foundation

/// The slow twin of the engine: a naive Llama forward in Double, one sequence at a time.
/// It is the in-repo oracle for the fast forward, KV-cache decoding and gradient checks.
package enum LlamaReference {
    /// Residual stream after the embedding (index 0) and after every block (1...L), each T x C,
    /// and the logits (T x V) of every position.
    package static func forward(_ w: LlamaWeights, tokens: [Int]) -> (hidden: [[Double]], logits: [Double]) {
        let c = w.config, C = c.hiddenSize, T = tokens.count, D = c.headDim
        let H = c.heads, Hkv = c.kvHeads, group = H / Hkv, F = c.ffnSize
        // y[t, o] = sum_i x[t, i] W[o, i]
        func linear(_ x: [Double], _ W: UnsafeMutablePointer<Float>, rows: Int, inDim: Int, rowOffset: Int = 0) -> [Double] {
            var y = [Double](repeating: 0, count: T * rows)
            for t in 0 ..< T {
                for o in 0 ..< rows {
                    var s = 0.0
                    let wr = W + (rowOffset + o) * inDim
                    for i in 0 ..< inDim { s += x[t * inDim + i] * Double(wr[i]) }
                    y[t * rows + o] = s
                }
            }
            return y
        }
        func rmsnorm(_ x: [Double], _ weight: UnsafeMutablePointer<Float>) -> [Double] {
            var y = x
            for t in 0 ..< T {
                var ss = 0.0
                for i in 0 ..< C { ss += x[t * C + i] * x[t * C + i] }
                let r = 1 / (ss / Double(C) + Double(c.rmsEps)).squareRoot()
                for i in 0 ..< C { y[t * C + i] = x[t * C + i] * r * Double(weight[i]) }
            }
            return y
        }
        // Adjacent-pair RoPE: dims (2i, 2i+1) of each head rotate by pos · base^(-2i/ropeDim).
        func rope(_ x: inout [Double], heads: Int) {
            for t in 0 ..< T {
                for h in 0 ..< heads {
                    for i in 0 ..< c.ropeDim / 2 {
                        let theta = Double(t) * pow(Double(c.ropeBase), -2 * Double(i) / Double(c.ropeDim))
                        let j = t * heads * D + h * D + 2 * i
                        let a = x[j], b = x[j + 1]
                        x[j] = a * cos(theta) - b * sin(theta)
                        x[j + 1] = a * sin(theta) + b * cos(theta)
                    }
                }
            }
        }
        var x = [Double](repeating: 0, count: T * C)
        for t in 0 ..< T {
            for i in 0 ..< C { x[t * C + i] = Double(w.embedding[tokens[t] * C + i]) }
        }
        var hidden = [x]
        for l in 0 ..< c.layers {
            let xn = rmsnorm(x, w.attnNorm(l))
            var q = linear(xn, w.qkv(l), rows: c.qDim, inDim: C)
            var k = linear(xn, w.qkv(l), rows: c.kvDim, inDim: C, rowOffset: c.qDim)
            let v = linear(xn, w.qkv(l), rows: c.kvDim, inDim: C, rowOffset: c.qDim + c.kvDim)
            rope(&q, heads: H)
            rope(&k, heads: Hkv)
            var att = [Double](repeating: 0, count: T * c.qDim)
            let scale = 1 / Double(D).squareRoot()
            for h in 0 ..< H {
                let kh = h / group
                for t in 0 ..< T {
                    var scores = [Double](repeating: 0, count: t + 1)
                    for s in 0 ... t {
                        var dot = 0.0
                        for d in 0 ..< D { dot += q[t * c.qDim + h * D + d] * k[s * c.kvDim + kh * D + d] }
                        scores[s] = dot * scale
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let z = e.reduce(0, +)
                    for d in 0 ..< D {
                        var acc = 0.0
                        for s in 0 ... t { acc += e[s] / z * v[s * c.kvDim + kh * D + d] }
                        att[t * c.qDim + h * D + d] = acc
                    }
                }
            }
            let o = linear(att, w.wo(l), rows: C, inDim: c.qDim)
            for i in 0 ..< T * C { x[i] += o[i] }
            let xn2 = rmsnorm(x, w.ffnNorm(l))
            let gate = linear(xn2, w.gateUp(l), rows: F, inDim: C)
            let up = linear(xn2, w.gateUp(l), rows: F, inDim: C, rowOffset: F)
            var act = [Double](repeating: 0, count: T * F)
            for i in 0 ..< T * F { act[i] = gate[i] / (1 + exp(-gate[i])) * up[i] }
            let down = linear(act, w.down(l), rows: C, inDim: F)
            for i in 0 ..< T * C { x[i] += down[i] }
            hidden.append(x)
        }
        let xf = rmsnorm(x, w.outputNorm)
        let logits = linear(xf, w.output, rows: c.vocabSize, inDim: C)
        return (hidden, logits)
    }
}
