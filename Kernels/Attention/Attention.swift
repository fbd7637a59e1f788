import Foundation

/// Scaled-dot-product attention with grouped-query heads over packed variable-length sequences.
///
/// Layout (Docs/KERNELS-ATTENTION.md): tokens of all sequences are packed back to back, no
/// padding; sequence s is rows `sequenceStarts[s] ..< sequenceStarts[s+1]`. Q rows hold `heads`
/// blocks of `headDim` floats (`ldq` apart), K and V rows `kvHeads` blocks (`ldk`, `ldv` apart),
/// so q, k, v may be views into one fused qkv buffer. Query head h reads kv head h / (heads / kvHeads).
public enum Attention {
    /// Query rows per task tile and key rows per inner tile (Br = Bc, FlashAttention-2 notation).
    package static let blockSize = 64
    static let log2e: Float = 1.442_695_04
    static let ln2: Float = 0.693_147_18

    /// out = softmax(scale · Q Kᵀ + mask) V per sequence and head; lse = log Σ_j exp(scale · q·k_j).
    ///
    /// Shapes (tokens = `sequenceStarts.last`): `q` (tokens, ldq ≥ heads·D); `k`, `v` (tokens,
    /// ldk/ldv ≥ kvHeads·D); `out` (tokens, ldo ≥ heads·D); `lse` (heads, tokens), natural log.
    /// `sequenceStarts` has sequences + 1 non-decreasing entries; rows outside every sequence are
    /// neither read nor written. `causal` masks keys after the query (position within its
    /// sequence); `scale` defaults to 1/√D.
    /// Contract: overwrites `out` columns h·D..<(h+1)·D of every sequence row and `lse`; `out` must
    /// not alias q, k, v. Tiled with an online softmax: no T x T matrix exists. Parallel over
    /// (sequence, head, 64-row query tile) tasks; each output element is owned by one task, so
    /// results are bitwise identical for any `workers`.
    /// Cost: 4·D·H·Σ T² FLOPs non-causal, half that causal (counted), H·Σ T² exponentials.
    /// Reference: Dao 2023, FlashAttention-2, Algorithm 1; `forwardReference`.
    public static func forward(out: UnsafeMutablePointer<Float>, ldo: Int, lse: UnsafeMutablePointer<Float>,
                               q: UnsafePointer<Float>, ldq: Int, k: UnsafePointer<Float>, ldk: Int,
                               v: UnsafePointer<Float>, ldv: Int, sequenceStarts: [Int],
                               heads: Int, kvHeads: Int, headDim: Int, causal: Bool = true,
                               scale: Float? = nil, workers: Int? = nil) {
        let D = headDim, scaleValue = scale ?? 1 / Float(D).squareRoot()
        checkShape(heads: heads, kvHeads: kvHeads, headDim: D, ldq: ldq, ldk: ldk, ldv: ldv, ldo: ldo, scale: scaleValue)
        let plan = Plan(sequenceStarts)
        if plan.tiles == 0 { return }
        let bs = blockSize, Dv = forwardPaddedDim(D)
        let kvFloats = plan.paddedTokens * kvHeads
        let packed = kvFloats * (D + Dv)
        let perWorker = forwardRows * (D + bs + Dv) + 6 * forwardStatRows
        let nth = Parallel.resolve(workers)
        Workspace.withScratch(floats: packed + nth * perWorker) { ws in
            // Kᵀ tiles feed Q·Kᵀ as the broadcast-free operand; V rows padded to whole tiles feed P·V.
            let kT = ws, vP = ws + kvFloats * D
            packTransposed(kT, k, ld: ldk, plan: plan, heads: kvHeads, headDim: D, workers: workers)
            packRows(vP, v, ld: ldv, plan: plan, heads: kvHeads, headDim: D, stride: Dv, workers: workers)
            let tasks = plan.tasksByCost(groups: heads, causal: causal)
            let queue = TaskQueue(tasks.count)
            let c = scaleValue * log2e
            Parallel.run(workers: workers, maxUseful: tasks.count) { ith, _ in
                let scratch = ws + packed + ith * perWorker
                while let next = queue.take() {
                    let task = tasks[next]
                    let ti = task / heads, h = task % heads
                    let g = h / (heads / kvHeads)
                    let (s, i0, nr) = plan.tile(ti)
                    let start = plan.starts[s], len = plan.length(s)
                    let pad = plan.padStarts[s]
                    forwardTile(out: out + (start + i0) * ldo + h * D, ldo: ldo,
                                lse: lse + h * plan.tokens + start + i0,
                                q: q + (start + i0) * ldq + h * D, ldq: ldq,
                                kT: kT + (g * plan.paddedTokens + pad) * D,
                                vP: vP + (g * plan.paddedTokens + pad) * Dv,
                                i0: i0, rows: nr, length: len, headDim: D, causal: causal, c: c, scratch: scratch)
                }
            }
        }
    }

    /// One query tile of one head against every visible key tile of its sequence (online softmax).
    /// Scores are kept in log2 units: x = c·q·k with c = scale·log2(e), so P = 2^(x - m).
    /// Head dim rounded up to whole forward-tile columns (stride of the packed V rows).
    @inline(__always) static func forwardPaddedDim(_ d: Int) -> Int {
        (d + forwardTileColumns - 1) / forwardTileColumns * forwardTileColumns
    }
    /// Query rows of a tile rounded up to whole forward tiles (scratch rows).
    static var forwardRows: Int { (blockSize + forwardTileRows - 1) / forwardTileRows * forwardTileRows }
    /// Scratch rows of the per-row statistics: whole vectors past `forwardRows`.
    static var forwardStatRows: Int { (forwardRows + vLanes - 1) / vLanes * vLanes }

    @inline(__always)
    static func forwardTile(out: UnsafeMutablePointer<Float>, ldo: Int, lse: UnsafeMutablePointer<Float>,
                            q: UnsafePointer<Float>, ldq: Int, kT: UnsafePointer<Float>, vP: UnsafePointer<Float>,
                            i0: Int, rows nr: Int, length len: Int, headDim D: Int, causal: Bool, c: Float,
                            scratch: UnsafeMutablePointer<Float>) {
        let bs = blockSize, R = forwardTileRows, CW = forwardTileColumns, Dv = forwardPaddedDim(D)
        let panels = (nr + R - 1) / R, rows = panels * R, FR = forwardRows, SR = forwardStatRows
        let qs = scratch, sc = qs + FR * D, o = sc + FR * bs, m = o + FR * Dv, l = m + SR
        let mNew = l + SR, alpha = mNew + SR, shift = alpha + SR, rowSum = shift + SR
        // Q tile interleaved by panel (qs[p·R·D + d·R + r]) so the tile's broadcasts are contiguous.
        for p in 0 ..< panels {
            let dst = qs + p * R * D, full = (p + 1) * R <= nr
            for d in 0 ..< D {
                for r in 0 ..< R {
                    dst[d * R + r] = full || p * R + r < nr ? q[(p * R + r) * ldq + d] : 0
                }
            }
        }
        for r in 0 ..< SR { m[r] = -.infinity; l[r] = 0; mNew[r] = -.infinity; rowSum[r] = 0 }
        o.update(repeating: 0, count: rows * Dv)
        let vc = VFloat(repeating: c)
        let keyTiles = causal ? (i0 + nr - 1) / bs + 1 : (len + bs - 1) / bs
        for kt in 0 ..< keyTiles {
            let j0 = kt * bs, nc = min(bs, len - j0)
            let cols = (nc + CW - 1) / CW * CW
            // S = Q Kᵀ (raw dot products) for the valid column blocks.
            let kTile = kT + j0 * D
            // Column strip outer: one D x CW strip of Kᵀ stays in L1 while the Q panels stream.
            for cb in stride(from: 0, to: cols, by: CW) {
                for p in 0 ..< panels {
                    forwardProduct(kc: D, a: qs + p * R * D, rs: 1, ks: R, b: kTile + cb, ldb: bs,
                         c: sc + p * R * bs + cb, ldc: bs, accumulate: false)
                }
            }
            // Online softmax: m' = max(m, rowmax x), α = 2^(m - m'), P = 2^(x - m'), l' = α·l + ΣP,
            // O ·= α. Row maxima and sums are horizontal; α, m, l are updated a vector of rows at a time.
            for r in 0 ..< rows {
                let row = sc + r * bs
                let nj = causal ? min(nc, i0 + r - j0 + 1) : nc
                if nj < cols { for j in max(nj, 0) ..< cols { row[j] = -.infinity } }
                var vm = vload(row, 0)
                for j in stride(from: vLanes, to: cols, by: vLanes) { vm = vmax(vm, vload(row, j)) }
                mNew[r] = max(m[r], horizontalMax(vm) * c)
            }
            let minusInf = VFloat(repeating: -.infinity)
            for r in stride(from: 0, to: rows, by: vLanes) {
                // A row with every key masked so far keeps m = -inf: α = 1 and P = 0 (shift 0).
                let mo = vload(m, r), mn = vload(mNew, r), dead = mn .== minusInf
                vstore(vexp2(mo - mn).replacing(with: 1, where: dead), alpha, r)
                vstore((-mn).replacing(with: 0, where: dead), shift, r)
                vstore(mn, m, r)
            }
            for r in 0 ..< rows {
                let row = sc + r * bs, sh = VFloat(repeating: shift[r])
                var sum = VFloat()
                for j in stride(from: 0, to: cols, by: vLanes) {
                    var x = sh
                    fmadd(&x, vload(row, j), vc)
                    let p = vexp2(x)
                    vstore(p, row, j)
                    sum += p
                }
                rowSum[r] = horizontalSum(sum)
                let a = alpha[r]
                if a != 1 {
                    let va = VFloat(repeating: a), orow = o + r * Dv
                    for d in stride(from: 0, to: Dv, by: vLanes) { vstore(vload(orow, d) * va, orow, d) }
                }
            }
            for r in stride(from: 0, to: rows, by: vLanes) {
                var lv = vload(rowSum, r)
                fmadd(&lv, vload(l, r), vload(alpha, r))
                vstore(lv, l, r)
            }
            // O += P V over the valid keys.
            let vTile = vP + j0 * Dv
            for cb in stride(from: 0, to: Dv, by: CW) {
                for p in 0 ..< panels {
                    forwardProduct(kc: nc, a: sc + p * R * bs, rs: bs, ks: 1, b: vTile + cb, ldb: Dv,
                         c: o + p * R * Dv + cb, ldc: Dv, accumulate: true)
                }
            }
        }
        for r in 0 ..< nr {
            let inv = 1 / l[r], src = o + r * Dv, dst = out + r * ldo
            for d in 0 ..< D { dst[d] = src[d] * inv }
            lse[r] = (m[r] + log2(l[r])) * ln2
        }
    }
}
