import Foundation

extension Attention {
    /// One new query token per sequence against its KV cache (batched generation):
    /// out_s,h = Σ_j softmax_j(scale · q_s,h · k_s,j) v_s,j over the cache's first `lengths[s]` rows.
    ///
    /// Shapes: `q` (sequences, ldq ≥ heads·D), one row per sequence; `out` (sequences, ldo ≥
    /// heads·D). Key j of sequence s, kv head g is `keyCache[s·cacheStride + j·ldkv + g·D ..< +D]`
    /// (same for `valueCache`), e.g. cacheStride = maxTokens·ldkv for per-sequence caches of
    /// (maxTokens, kvHeads·D) rows. The new token's k and v must already be in the cache, so
    /// lengths[s] ≥ 1 counts it. The query is the last position: every cached key is visible.
    /// Contract: overwrites `out` (heads·D columns of each row). Parallel over (sequence, kv head)
    /// tasks, each handling the group's query heads so the cache is streamed once per kv head;
    /// bitwise identical for any `workers`.
    /// Cost: 4·D·H·Σ lengths FLOPs; reads 2·D·Hkv·Σ lengths cache floats (memory-bound).
    /// Reference: the last row of `forwardReference` on the cached sequence.
    public static func decode(out: UnsafeMutablePointer<Float>, ldo: Int, q: UnsafePointer<Float>, ldq: Int,
                              keyCache: UnsafePointer<Float>, valueCache: UnsafePointer<Float>, ldkv: Int,
                              cacheStride: Int, lengths: [Int], heads: Int, kvHeads: Int, headDim: Int,
                              scale: Float? = nil, workers: Int? = nil) {
        let D = headDim, scaleValue = scale ?? 1 / Float(D).squareRoot()
        checkShape(heads: heads, kvHeads: kvHeads, headDim: D, ldq: ldq, ldk: ldkv, ldv: ldkv, ldo: ldo, scale: scaleValue)
        precondition(lengths.allSatisfy { $0 >= 1 }, "Attention.decode: every length must be >= 1 (the new token is cached)")
        let G = heads / kvHeads, maxLen = lengths.max() ?? 0
        let Dv = (D + vLanes - 1) / vLanes * vLanes
        let perWorker = G * maxLen + G * Dv + G * Dv
        let nth = Parallel.resolve(workers)
        let c = scaleValue * log2e
        Workspace.withScratch(floats: nth * perWorker) { ws in
            let tasks = lengths.count * kvHeads
            let queue = TaskQueue(tasks)
            Parallel.run(workers: workers, maxUseful: tasks) { ith, _ in
                let scores = ws + ith * perWorker, acc = scores + G * maxLen, qs = acc + G * Dv
                while let task = queue.take() {
                    let s = task / kvHeads, g = task % kvHeads, n = lengths[s]
                    let kBase = keyCache + s * cacheStride + g * D, vBase = valueCache + s * cacheStride + g * D
                    // Queries of the group, zero-padded to whole vectors.
                    for x in 0 ..< G {
                        let src = q + s * ldq + (g * G + x) * D, dst = qs + x * Dv
                        for d in 0 ..< Dv { dst[d] = d < D ? src[d] : 0 }
                    }
                    // Scores in log2 units; each key row is read once for the whole group.
                    for j in 0 ..< n {
                        let key = kBase + j * ldkv
                        for x in 0 ..< G {
                            scores[x * maxLen + j] = c * dot(key, qs + x * Dv, D)
                        }
                    }
                    // Softmax per head: P = 2^(x - max) / Σ.
                    for x in 0 ..< G {
                        let row = scores + x * maxLen
                        var m = -Float.infinity
                        for j in 0 ..< n { m = max(m, row[j]) }
                        var sum: Float = 0
                        var j = 0
                        let shift = VFloat(repeating: -m)
                        while j + vLanes <= n {
                            let p = vexp2(vload(row, j) + shift)
                            vstore(p, row, j)
                            sum += horizontalSum(p)
                            j += vLanes
                        }
                        while j < n { row[j] = exp2(row[j] - m); sum += row[j]; j += 1 }
                        let inv = 1 / sum
                        for j in 0 ..< n { row[j] *= inv }
                    }
                    // out = P V, each value row read once for the group.
                    acc.update(repeating: 0, count: G * Dv)
                    for j in 0 ..< n {
                        let value = vBase + j * ldkv
                        for x in 0 ..< G {
                            let pj = VFloat(repeating: scores[x * maxLen + j]), dst = acc + x * Dv
                            var d = 0
                            while d + vLanes <= D {
                                var a = vload(dst, d)
                                fmadd(&a, pj, vload(value, d))
                                vstore(a, dst, d)
                                d += vLanes
                            }
                            let pjs = scores[x * maxLen + j]
                            while d < D { dst[d] += pjs * value[d]; d += 1 }
                        }
                    }
                    for x in 0 ..< G {
                        (out + s * ldo + (g * G + x) * D).update(from: acc + x * Dv, count: D)
                    }
                }
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
