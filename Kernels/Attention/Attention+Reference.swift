import Foundation

extension Attention {
    /// Naive attention in `T` (run it in Double): for every sequence and head, the explicit
    /// T x T score matrix in four passes as in llm.c's `attention_forward` (scores, row max,
    /// exp-normalise, weighted sum of values).
    ///
    /// Same layout and arguments as `forward`; returns `out` dense (tokens, heads·D) and `lse`
    /// (heads, tokens). Rows outside every sequence are zero in `out` and `lse`.
    package static func forwardReference<T: BinaryFloatingPoint>(
        q: [T], ldq: Int, k: [T], ldk: Int, v: [T], ldv: Int, sequenceStarts: [Int],
        heads: Int, kvHeads: Int, headDim D: Int, causal: Bool = true, scale: T? = nil
    ) -> (out: [T], lse: [T]) {
        let tokens = sequenceStarts.last!, group = heads / kvHeads
        let sc = scale ?? 1 / T(D).squareRoot()
        var out = [T](repeating: 0, count: tokens * heads * D)
        var lse = [T](repeating: 0, count: heads * tokens)
        for s in 0 ..< sequenceStarts.count - 1 {
            let start = sequenceStarts[s], len = sequenceStarts[s + 1] - start
            for h in 0 ..< heads {
                let g = h / group
                for i in 0 ..< len {
                    let last = causal ? i : len - 1
                    // pass 1: scores and their maximum
                    var scores = [T](repeating: 0, count: last + 1)
                    var maxScore = -T.infinity
                    for j in 0 ... last {
                        var dot: T = 0
                        for d in 0 ..< D { dot += q[(start + i) * ldq + h * D + d] * k[(start + j) * ldk + g * D + d] }
                        scores[j] = dot * sc
                        maxScore = max(maxScore, scores[j])
                    }
                    // pass 2: exponentials and their sum
                    var sum: T = 0
                    for j in 0 ... last {
                        scores[j] = T(exp(Double(scores[j] - maxScore)))
                        sum += scores[j]
                    }
                    // pass 3: normalise
                    for j in 0 ... last { scores[j] /= sum }
                    // pass 4: weighted sum of values
                    for d in 0 ..< D {
                        var acc: T = 0
                        for j in 0 ... last { acc += scores[j] * v[(start + j) * ldv + g * D + d] }
                        out[(start + i) * heads * D + h * D + d] = acc
                    }
                    lse[h * tokens + start + i] = maxScore + T(log(Double(sum)))
                }
            }
        }
        return (out, lse)
    }

    /// Gradients of `forwardReference` for upstream `dout` (dense (tokens, heads·D)), with the
    /// probabilities recomputed explicitly: dV = Pᵀ dO, dP = dO Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
    /// dQ = scale·dS K, dK = scale·dSᵀ Q (summed over the query heads of each kv head).
    /// Returns dense dq (tokens, heads·D), dk and dv (tokens, kvHeads·D): overwrite semantics.
    package static func backwardReference<T: BinaryFloatingPoint>(
        dout: [T], q: [T], ldq: Int, k: [T], ldk: Int, v: [T], ldv: Int, sequenceStarts: [Int],
        heads: Int, kvHeads: Int, headDim D: Int, causal: Bool = true, scale: T? = nil
    ) -> (dq: [T], dk: [T], dv: [T]) {
        let tokens = sequenceStarts.last!, group = heads / kvHeads
        let sc = scale ?? 1 / T(D).squareRoot()
        var dq = [T](repeating: 0, count: tokens * heads * D)
        var dk = [T](repeating: 0, count: tokens * kvHeads * D)
        var dv = [T](repeating: 0, count: tokens * kvHeads * D)
        for s in 0 ..< sequenceStarts.count - 1 {
            let start = sequenceStarts[s], len = sequenceStarts[s + 1] - start
            for h in 0 ..< heads {
                let g = h / group
                for i in 0 ..< len {
                    let last = causal ? i : len - 1
                    var p = [T](repeating: 0, count: last + 1)
                    var maxScore = -T.infinity
                    for j in 0 ... last {
                        var dot: T = 0
                        for d in 0 ..< D { dot += q[(start + i) * ldq + h * D + d] * k[(start + j) * ldk + g * D + d] }
                        p[j] = dot * sc
                        maxScore = max(maxScore, p[j])
                    }
                    var sum: T = 0
                    for j in 0 ... last { p[j] = T(exp(Double(p[j] - maxScore))); sum += p[j] }
                    for j in 0 ... last { p[j] /= sum }
                    var dp = [T](repeating: 0, count: last + 1)
                    var pdp: T = 0
                    for j in 0 ... last {
                        for d in 0 ..< D { dp[j] += dout[(start + i) * heads * D + h * D + d] * v[(start + j) * ldv + g * D + d] }
                        pdp += p[j] * dp[j]
                    }
                    for j in 0 ... last {
                        let ds = p[j] * (dp[j] - pdp) * sc
                        for d in 0 ..< D {
                            let dO = dout[(start + i) * heads * D + h * D + d]
                            dv[(start + j) * kvHeads * D + g * D + d] += p[j] * dO
                            dq[(start + i) * heads * D + h * D + d] += ds * k[(start + j) * ldk + g * D + d]
                            dk[(start + j) * kvHeads * D + g * D + d] += ds * q[(start + i) * ldq + h * D + d]
                        }
                    }
                }
            }
        }
        return (dq, dk, dv)
    }
}
