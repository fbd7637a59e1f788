import Foundation

extension Attention {
    /// Gradients of `forward`: dQ += scale·dS K, dK += scale·dSᵀ Q, dV += Pᵀ dO, where
    /// P = exp(scale·Q Kᵀ − lse) is recomputed from the saved `lse`, dP = dO Vᵀ,
    /// dS = P ⊙ (dP − δ) and δ_i = rowsum(dO ⊙ O)_i. dK and dV sum over the query heads of each
    /// kv head.
    ///
    /// Shapes: as `forward`, plus `dout` and `out` (tokens, ≥ heads·D), `dq` (tokens, lddq ≥
    /// heads·D), `dk`/`dv` (tokens, ≥ kvHeads·D); `out` and `lse` are what `forward` returned for
    /// the same q, k, v, mask and scale.
    /// Contract: ACCUMULATES (+=) into dq, dk, dv (only the columns and rows of the sequences);
    /// they must not alias each other or any input (they may be views into one fused dqkv buffer).
    /// Threading, deterministic either way (every element owned by one task, partial sums added
    /// in a fixed order), so results are bitwise identical for any `workers`:
    /// - kvHeads ≥ `fusedBackwardMinimumKVHeads` (3): one pass over (sequence, kv head) tasks, each
    ///   looping key tiles x query tiles of the group's heads; dQ is accumulated in scratch rows
    ///   owned by the task and added to `dq` at the end.
    /// - fewer kv heads: dK/dV over (sequence, kv head, 64-key tile) tasks that loop over every
    ///   query of the group, then dQ over (sequence, head, 64-query tile) tasks (S and dP recomputed).
    /// Scratch (from `Workspace`): packed Q, dO (and dQ when fused), heads·tokens·D each, and K, Kᵀ,
    /// Vᵀ, kvHeads·tokens·D each.
    /// Cost: counted as 2.5x forward, 10·D·H·Σ T² FLOPs non-causal (half causal); executed 10·
    /// (fused) or 14· (two passes), plus H·Σ T² exponentials per pass.
    /// Reference: Dao 2023, FlashAttention-2, Algorithm 2; `backwardReference`.
    public static func backward(dq: UnsafeMutablePointer<Float>, lddq: Int,
                                dk: UnsafeMutablePointer<Float>, lddk: Int,
                                dv: UnsafeMutablePointer<Float>, lddv: Int,
                                dout: UnsafePointer<Float>, lddout: Int,
                                out: UnsafePointer<Float>, ldo: Int, lse: UnsafePointer<Float>,
                                q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
                                v: UnsafePointer<Float>, ldv: Int, sequenceStarts: [Int],
                                heads: Int, kvHeads: Int, headDim: Int, causal: Bool = true,
                                scale: Float? = nil, workers: Int? = nil) {
        let D = headDim, scaleValue = scale ?? 1 / Float(D).squareRoot()
        checkShape(heads: heads, kvHeads: kvHeads, headDim: D, ldq: ldq, ldk: ldk, ldv: ldv, ldo: ldo, scale: scaleValue)
        precondition(lddout >= heads * D && lddq >= heads * D, "Attention.backward: lddout and lddq must be >= heads·headDim")
        precondition(lddk >= kvHeads * D && lddv >= kvHeads * D, "Attention.backward: lddk and lddv must be >= kvHeads·headDim")
        let plan = Plan(sequenceStarts)
        if plan.tiles == 0 { return }
        let bs = blockSize, Dv = paddedDim(D), PT = plan.paddedTokens, G = heads / kvHeads
        let qFloats = heads * PT * Dv, kvFloats = kvHeads * PT
        let packed = 2 * qFloats + kvFloats * (2 * D + Dv) + 2 * heads * PT
        let perWorker = 2 * bs * Dv + 2 * bs * bs
        let nth = Parallel.resolve(workers)
        // Fused single pass when there are enough kv heads to share out; the choice depends on
        // kvHeads only (never on `workers` or the batch), so a sequence's gradients are bitwise
        // the same whatever else is in the batch.
        let fused = kvHeads >= fusedBackwardMinimumKVHeads
        Workspace.withScratch(floats: packed + nth * perWorker + (fused ? qFloats : 0)) { ws in
            let qP = ws, oP = qP + qFloats, kT = oP + qFloats, vT = kT + kvFloats * D, kP = vT + kvFloats * D
            let lse2 = kP + kvFloats * Dv, delta = lse2 + heads * PT
            packRows(qP, q, ld: ldq, plan: plan, heads: heads, headDim: D, stride: Dv, workers: workers)
            packRows(oP, dout, ld: lddout, plan: plan, heads: heads, headDim: D, stride: Dv, workers: workers)
            packTransposed(kT, k, ld: ldk, plan: plan, heads: kvHeads, headDim: D, workers: workers)
            packTransposed(vT, v, ld: ldv, plan: plan, heads: kvHeads, headDim: D, workers: workers)
            packRows(kP, k, ld: ldk, plan: plan, heads: kvHeads, headDim: D, stride: Dv, workers: workers)
            // lse in log2 units (+inf past a sequence's end, so P vanishes there) and δ = rowsum(dO ⊙ O).
            Parallel.forEach(heads * plan.tiles, workers: workers) { task in
                let h = task / plan.tiles, ti = task % plan.tiles
                let (s, i0, n) = plan.tile(ti)
                let row0 = plan.starts[s] + i0
                for r in 0 ..< bs {
                    let at = h * PT + ti * bs + r
                    if r < n {
                        lse2[at] = lse[h * plan.tokens + row0 + r] * log2e
                        let o = out + (row0 + r) * ldo + h * D, g = dout + (row0 + r) * lddout + h * D
                        var acc: Float = 0
                        for d in 0 ..< D { acc += o[d] * g[d] }
                        delta[at] = acc
                    } else {
                        lse2[at] = .infinity
                        delta[at] = 0
                    }
                }
            }
            let c = scaleValue * log2e
            let ctx = BackwardContext(qP: qP, oP: oP, kT: kT, vT: vT, kP: kP, lse2: lse2, delta: delta,
                                      paddedTokens: PT, headDim: D, causal: causal, c: c)

            // dK, dV of key tile `ti` and kv head `g`, looping over every visible query tile of the
            // group's heads; with `dQall`, also dQ += dS K into the (head, padded token) rows there.
            func keyTile(_ ti: Int, _ g: Int, scratch: UnsafeMutablePointer<Float>, dQall: UnsafeMutablePointer<Float>?) {
                let dKacc = scratch, dVacc = dKacc + bs * Dv, sc = dVacc + bs * Dv, dp = sc + bs * bs
                let (s, j0, nc) = plan.tile(ti)
                let firstTile = plan.padStarts[s] / bs, len = plan.length(s)
                let keyPanels = (nc + tileRows - 1) / tileRows
                dKacc.update(repeating: 0, count: bs * Dv)
                dVacc.update(repeating: 0, count: bs * Dv)
                let kvAt = g * PT + ti * bs
                for h in g * G ..< (g + 1) * G {
                    let firstQuery = causal ? j0 / bs : 0
                    for qt in firstQuery ..< (len + bs - 1) / bs {
                        let i0 = qt * bs, nr = min(bs, len - i0), qAt = h * PT + (firstTile + qt) * bs
                        ctx.scoresAndGradients(qAt: qAt, kvAt: kvAt, i0: i0, rows: nr, j0: j0, keys: nc, p: sc, ds: dp)
                        // dV += Pᵀ dO  (forward: O = P V)
                        // dK += dSᵀ Q  (forward: S = Q Kᵀ; the scale is applied once at the end)
                        for cb in stride(from: 0, to: Dv, by: tileColumns) {
                            for jp in 0 ..< keyPanels {
                                tile(kc: nr, a: sc + jp * tileRows, rs: 1, ks: bs, b: oP + qAt * Dv + cb, ldb: Dv,
                                     c: dVacc + jp * tileRows * Dv + cb, ldc: Dv, accumulate: true)
                            }
                            for jp in 0 ..< keyPanels {
                                tile(kc: nr, a: dp + jp * tileRows, rs: 1, ks: bs, b: qP + qAt * Dv + cb, ldb: Dv,
                                     c: dKacc + jp * tileRows * Dv + cb, ldc: Dv, accumulate: true)
                            }
                        }
                        // dQ += dS K  (forward: S = Q Kᵀ)
                        if let dQall {
                            let panels = (nr + tileRows - 1) / tileRows
                            for cb in stride(from: 0, to: Dv, by: tileColumns) {
                                for p in 0 ..< panels {
                                    tile(kc: nc, a: dp + p * tileRows * bs, rs: bs, ks: 1, b: kP + kvAt * Dv + cb, ldb: Dv,
                                         c: dQall + qAt * Dv + p * tileRows * Dv + cb, ldc: Dv, accumulate: true)
                                }
                            }
                        }
                    }
                }
                let row0 = plan.starts[s] + j0
                for j in 0 ..< nc {
                    let dkRow = dk + (row0 + j) * lddk + g * D, dvRow = dv + (row0 + j) * lddv + g * D
                    for d in 0 ..< D {
                        dkRow[d] += scaleValue * dKacc[j * Dv + d]
                        dvRow[d] += dVacc[j * Dv + d]
                    }
                }
            }

            if fused {
                // One pass over (sequence, kv head) tasks: each owns dK, dV of its kv head and dQ of
                // the group's heads, accumulated over key tiles in order.
                let dQall = ws + packed + nth * perWorker
                var order = (0 ..< plan.sequences).filter { plan.length($0) > 0 }
                order.sort { plan.length($0) > plan.length($1) || (plan.length($0) == plan.length($1) && $0 < $1) }
                let tasks = order.flatMap { s in (0 ..< kvHeads).map { s * kvHeads + $0 } }
                Parallel.forEach(heads, workers: workers) { h in
                    (dQall + h * PT * Dv).update(repeating: 0, count: PT * Dv)
                }
                let queue = TaskQueue(tasks.count)
                Parallel.run(workers: workers, maxUseful: tasks.count) { ith, _ in
                    let scratch = ws + packed + ith * perWorker
                    while let next = queue.take() {
                        let s = tasks[next] / kvHeads, g = tasks[next] % kvHeads
                        let first = plan.padStarts[s] / bs
                        for ti in first ..< plan.padStarts[s + 1] / bs { keyTile(ti, g, scratch: scratch, dQall: dQall) }
                    }
                }
                Parallel.forEach(heads * plan.tiles, workers: workers) { task in
                    let h = task / plan.tiles, ti = task % plan.tiles
                    let (s, i0, nr) = plan.tile(ti)
                    let src = dQall + (h * PT + ti * bs) * Dv, row0 = plan.starts[s] + i0
                    for r in 0 ..< nr {
                        let dqRow = dq + (row0 + r) * lddq + h * D
                        for d in 0 ..< D { dqRow[d] += scaleValue * src[r * Dv + d] }
                    }
                }
                return
            }

            // Pass 1: dK, dV per (key tile, kv head), looping over every query tile of the group.
            let keyTasks = plan.tasksByCost(groups: kvHeads, causal: causal, reverse: true)
            let keyQueue = TaskQueue(keyTasks.count)
            Parallel.run(workers: workers, maxUseful: keyTasks.count) { ith, _ in
                let scratch = ws + packed + ith * perWorker
                while let next = keyQueue.take() {
                    keyTile(keyTasks[next] / kvHeads, keyTasks[next] % kvHeads, scratch: scratch, dQall: nil)
                }
            }

            // Pass 2: dQ per (query tile, head), looping over the visible key tiles.
            let queryTasks = plan.tasksByCost(groups: heads, causal: causal)
            let queryQueue = TaskQueue(queryTasks.count)
            Parallel.run(workers: workers, maxUseful: queryTasks.count) { ith, _ in
                let scratch = ws + packed + ith * perWorker
                let dQacc = scratch, sc = dQacc + 2 * bs * Dv, dp = sc + bs * bs
                while let next = queryQueue.take() {
                    let task = queryTasks[next]
                    let ti = task / heads, h = task % heads, g = h / G
                    let (s, i0, nr) = plan.tile(ti)
                    let firstTile = plan.padStarts[s] / bs, len = plan.length(s)
                    let panels = (nr + tileRows - 1) / tileRows
                    dQacc.update(repeating: 0, count: bs * Dv)
                    let qAt = h * PT + ti * bs
                    let keyTiles = causal ? (i0 + nr - 1) / bs + 1 : (len + bs - 1) / bs
                    for kt in 0 ..< keyTiles {
                        let j0 = kt * bs, nc = min(bs, len - j0), kvAt = g * PT + (firstTile + kt) * bs
                        ctx.scoresAndGradients(qAt: qAt, kvAt: kvAt, i0: i0, rows: nr, j0: j0, keys: nc, p: sc, ds: dp)
                        // dQ += dS K  (forward: S = Q Kᵀ)
                        for cb in stride(from: 0, to: Dv, by: tileColumns) {
                            for p in 0 ..< panels {
                                tile(kc: nc, a: dp + p * tileRows * bs, rs: bs, ks: 1, b: kP + kvAt * Dv + cb, ldb: Dv,
                                     c: dQacc + p * tileRows * Dv + cb, ldc: Dv, accumulate: true)
                            }
                        }
                    }
                    let row0 = plan.starts[s] + i0
                    for r in 0 ..< nr {
                        let dqRow = dq + (row0 + r) * lddq + h * D
                        for d in 0 ..< D { dqRow[d] += scaleValue * dQacc[r * Dv + d] }
                    }
                }
            }
        }
    }

    /// Smallest kvHeads for which `backward` runs fused: one pass over (sequence, kv head) tasks
    /// that also accumulate dQ (10·D·H·Σ T² FLOPs instead of 14, but only sequences·kvHeads
    /// tasks). Below it, two passes with tile-sized tasks. Tests set it to cover both paths.
    nonisolated(unsafe) package static var fusedBackwardMinimumKVHeads = 3

    /// Packed operands of the backward passes (see `backward` for their layouts).
    struct BackwardContext {
        let qP, oP, kT, vT, kP, lse2, delta: UnsafeMutablePointer<Float>
        let paddedTokens, headDim: Int
        let causal: Bool
        let c: Float

        /// For query rows at packed position `qAt` (local rows i0..<i0+rows) and keys at `kvAt`
        /// (local j0..<j0+keys): p ← P = 2^(c·Q Kᵀ − lse2) with masked entries 0, and
        /// ds ← dS/scale = P ⊙ (dO Vᵀ − δ). Rows past `rows` (to the tile-row multiple) are 0;
        /// columns past `keys` (to the tile-column multiple) are 0.
        @inline(__always)
        func scoresAndGradients(qAt: Int, kvAt: Int, i0: Int, rows nr: Int, j0: Int, keys nc: Int,
                                p: UnsafeMutablePointer<Float>, ds: UnsafeMutablePointer<Float>) {
            let bs = blockSize, R = tileRows, CW = tileColumns, D = headDim, Dv = paddedDim(D)
            let panels = (nr + R - 1) / R, cols = (nc + CW - 1) / CW * CW
            let qRows = qP + qAt * Dv, oRows = oP + qAt * Dv
            let kTile = kT + kvAt * D, vTile = vT + kvAt * D
            // S = Q Kᵀ and dP = dO Vᵀ (recomputed; forward: S = Q Kᵀ, O = P V)
            for cb in stride(from: 0, to: cols, by: CW) {
                for pi in 0 ..< panels {
                    tile(kc: D, a: qRows + pi * R * Dv, rs: Dv, ks: 1, b: kTile + cb, ldb: bs,
                         c: p + pi * R * bs + cb, ldc: bs, accumulate: false)
                    tile(kc: D, a: oRows + pi * R * Dv, rs: Dv, ks: 1, b: vTile + cb, ldb: bs,
                         c: ds + pi * R * bs + cb, ldc: bs, accumulate: false)
                }
            }
            let vc = VFloat(repeating: c)
            for r in 0 ..< panels * R {
                let prow = p + r * bs, drow = ds + r * bs
                // forward: P = exp(S·scale − lse), masked keys excluded
                let nj = causal ? min(nc, i0 + r - j0 + 1) : nc
                if nj < cols { for j in max(nj, 0) ..< cols { prow[j] = -.infinity } }
                let shift = VFloat(repeating: -lse2[qAt + r]), dr = VFloat(repeating: delta[qAt + r])
                for j in stride(from: 0, to: cols, by: vLanes) {
                    var x = shift
                    fmadd(&x, vload(prow, j), vc)
                    let pv = vexp2(x)
                    vstore(pv, prow, j)
                    vstore(pv * (vload(drow, j) - dr), drow, j)
                }
            }
        }
    }
}
