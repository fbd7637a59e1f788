import Foundation

extension Attention {
    /// Keys per decode task (flash-decoding split): fixed, so results never depend on `workers`.
    package static let decodeChunk = 256

    /// One new query token per sequence against its KV cache (batched generation):
    /// out_s,h = Σ_j softmax_j(scale · q_s,h · k_s,j) v_s,j over the cache's first `lengths[s]` rows.
    ///
    /// Shapes: `q` (sequences, ldq ≥ heads·D), one row per sequence; `out` (sequences, ldo ≥
    /// heads·D). Key j of sequence s, kv head g is `keyCache[s·cacheStride + j·ldkv + g·D ..< +D]`
    /// (same for `valueCache`), e.g. cacheStride = maxTokens·ldkv for per-sequence caches of
    /// (maxTokens, kvHeads·D) rows. The new token's k and v must already be in the cache, so
    /// lengths[s] ≥ 1 counts it. The query is the last position: every cached key is visible.
    /// Contract: overwrites `out` (heads·D columns of each row). Parallel over (sequence, chunk of
    /// `decodeChunk` keys) tasks that stream whole cache rows (every head at once, so reads are
    /// sequential) and leave a partial (max, sum, unnormalised output) per head; a second pass
    /// over (sequence, head) merges the chunks in order. The split depends only on the lengths,
    /// so results are bitwise identical for any `workers`.
    /// Cost: 4·D·H·Σ lengths FLOPs; reads 2·D·Hkv·Σ lengths cache floats (memory-bound).
    /// Reference: Dao et al. 2023, Flash-Decoding; the last row of `forwardReference`.
    public static func decode(out: UnsafeMutablePointer<Float>, ldo: Int, q: UnsafePointer<Float>, ldq: Int,
                              keyCache: UnsafePointer<Float>, valueCache: UnsafePointer<Float>, ldkv: Int,
                              cacheStride: Int, lengths: [Int], heads: Int, kvHeads: Int, headDim: Int,
                              scale: Float? = nil, workers: Int? = nil) {
        let D = headDim, H = heads, scaleValue = scale ?? 1 / Float(D).squareRoot()
        checkShape(heads: heads, kvHeads: kvHeads, headDim: D, ldq: ldq, ldk: ldkv, ldv: ldkv, ldo: ldo, scale: scaleValue)
        precondition(lengths.allSatisfy { $0 >= 1 }, "Attention.decode: every length must be >= 1 (the new token is cached)")
        let G = heads / kvHeads, chunk = decodeChunk
        let Dv = (D + vLanes - 1) / vLanes * vLanes
        var firstChunk = [0]
        for n in lengths { firstChunk.append(firstChunk.last! + (n + chunk - 1) / chunk) }
        let chunks = firstChunk.last!
        // Partial of (chunk, head): unnormalised output (Dv floats), then its max and sum.
        let partialStride = Dv + 2
        let perWorker = H * chunk + H * Dv
        let nth = Parallel.resolve(workers)
        let c = scaleValue * log2e
        Workspace.withScratch(floats: chunks * H * partialStride + nth * perWorker) { ws in
            let partials = ws
            let queue = TaskQueue(chunks)
            Parallel.run(workers: workers, maxUseful: chunks) { ith, _ in
                let scores = ws + chunks * H * partialStride + ith * perWorker, qs = scores + H * chunk
                while let task = queue.take() {
                    var s = 0
                    while firstChunk[s + 1] <= task { s += 1 }
                    let j0 = (task - firstChunk[s]) * chunk, nj = min(chunk, lengths[s] - j0)
                    let kBase = keyCache + s * cacheStride, vBase = valueCache + s * cacheStride
                    // Queries, zero-padded to whole vectors.
                    for h in 0 ..< H {
                        let src = q + s * ldq + h * D, dst = qs + h * Dv
                        for d in 0 ..< Dv { dst[d] = d < D ? src[d] : 0 }
                    }
                    // Scores in log2 units, one cache row (all kv heads) at a time.
                    for j in 0 ..< nj {
                        let key = kBase + (j0 + j) * ldkv
                        for h in 0 ..< H { scores[h * chunk + j] = c * dot(key + (h / G) * D, qs + h * Dv, D) }
                    }
                    // Per head: m = max, P = 2^(x - m), l = ΣP.
                    for h in 0 ..< H {
                        let row = scores + h * chunk, part = partials + (task * H + h) * partialStride
                        var m = -Float.infinity
                        for j in 0 ..< nj { m = max(m, row[j]) }
                        var sum: Float = 0, j = 0
                        let shift = VFloat(repeating: -m)
                        while j + vLanes <= nj {
                            let p = vexp2(vload(row, j) + shift)
                            vstore(p, row, j)
                            sum += horizontalSum(p)
                            j += vLanes
                        }
                        while j < nj { row[j] = exp2(row[j] - m); sum += row[j]; j += 1 }
                        part.update(repeating: 0, count: Dv)
                        part[Dv] = m
                        part[Dv + 1] = sum
                    }
                    // Unnormalised outputs Σ_j P_j v_j, one cache row at a time.
                    for j in 0 ..< nj {
                        let value = vBase + (j0 + j) * ldkv
                        for h in 0 ..< H {
                            let dst = partials + (task * H + h) * partialStride, v = value + (h / G) * D
                            let pj = scores[h * chunk + j], vp = VFloat(repeating: pj)
                            var d = 0
                            while d + vLanes <= D {
                                var a = vload(dst, d)
                                fmadd(&a, vp, vload(v, d))
                                vstore(a, dst, d)
                                d += vLanes
                            }
                            while d < D { dst[d] += pj * v[d]; d += 1 }
                        }
                    }
                }
            }
            // Merge the chunks of each (sequence, head) in order: M = max m_c, w_c = 2^(m_c - M),
            // out = Σ w_c o_c / Σ w_c l_c.
            Parallel.forEach(lengths.count * H, workers: workers) { task in
                let s = task / H, h = task % H
                var M = -Float.infinity
                for ch in firstChunk[s] ..< firstChunk[s + 1] { M = max(M, partials[(ch * H + h) * partialStride + Dv]) }
                let dst = out + s * ldo + h * D
                var L: Float = 0
                for d in 0 ..< D { dst[d] = 0 }
                for ch in firstChunk[s] ..< firstChunk[s + 1] {
                    let part = partials + (ch * H + h) * partialStride
                    let w = exp2(part[Dv] - M)
                    L += w * part[Dv + 1]
                    for d in 0 ..< D { dst[d] += w * part[d] }
                }
                let inv = 1 / L
                for d in 0 ..< D { dst[d] *= inv }
            }
        }
    }

    /// Σ_d a[d]·b[d] over `n` floats: four vector accumulators, then a scalar tail.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = VFloat(), s1 = VFloat(), s2 = VFloat(), s3 = VFloat()
        var d = 0
        while d + 4 * vLanes <= n {
            fmadd(&s0, vload(a, d), vload(b, d))
            fmadd(&s1, vload(a, d + vLanes), vload(b, d + vLanes))
            fmadd(&s2, vload(a, d + 2 * vLanes), vload(b, d + 2 * vLanes))
            fmadd(&s3, vload(a, d + 3 * vLanes), vload(b, d + 3 * vLanes))
            d += 4 * vLanes
        }
        while d + vLanes <= n {
            fmadd(&s0, vload(a, d), vload(b, d))
            d += vLanes
        }
        var total = horizontalSum((s0 + s1) + (s2 + s3))
        while d < n { total += a[d] * b[d]; d += 1 }
        return total
    }
}
