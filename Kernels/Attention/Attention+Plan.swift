import Foundation

extension Attention {
    /// Where each sequence's tiles live in the packed (padded) token order.
    ///
    /// Sequence s owns tokens `starts[s] ..< starts[s+1]` of the caller's buffers and padded
    /// positions `padStarts[s] ..< padStarts[s] + tiles(s)·blockSize` of the packed operands;
    /// padded positions past a sequence's end hold zeros. `tileSequence[ti]` names the sequence of
    /// padded tile `ti`.
    struct Plan {
        let starts: [Int]
        let padStarts: [Int]
        let tileSequence: [Int]
        /// Rows of the caller's buffers (`starts.last`).
        let tokens: Int
        let paddedTokens: Int
        var tiles: Int { paddedTokens / blockSize }

        init(_ sequenceStarts: [Int]) {
            precondition(!sequenceStarts.isEmpty, "Attention: sequenceStarts needs at least one entry (count = sequences + 1)")
            precondition(sequenceStarts[0] >= 0, "Attention: sequenceStarts[0] must be >= 0")
            var pads = [0], owners: [Int] = []
            for s in 0 ..< sequenceStarts.count - 1 {
                let len = sequenceStarts[s + 1] - sequenceStarts[s]
                precondition(len >= 0, "Attention: sequenceStarts must be non-decreasing (sequence \(s))")
                let tiles = (len + blockSize - 1) / blockSize
                owners += [Int](repeating: s, count: tiles)
                pads.append(pads[s] + tiles * blockSize)
            }
            starts = sequenceStarts
            padStarts = pads
            tileSequence = owners
            tokens = sequenceStarts[sequenceStarts.count - 1]
            paddedTokens = pads[pads.count - 1]
        }

        var sequences: Int { starts.count - 1 }
        @inline(__always) func length(_ s: Int) -> Int { starts[s + 1] - starts[s] }

        /// (sequence, first local row, rows) of padded tile `ti`.
        @inline(__always) func tile(_ ti: Int) -> (s: Int, i0: Int, n: Int) {
            let s = tileSequence[ti]
            let i0 = ti * blockSize - padStarts[s]
            return (s, i0, min(blockSize, length(s) - i0))
        }

        /// Tasks `ti · groups + x` for every tile and `x < groups`, most expensive first: under a
        /// causal mask a query tile's work grows with its position, so late tiles are handed out
        /// first and the dynamic queue ends with cheap ones (longest-processing-time order).
        func tasksByCost(groups: Int, causal: Bool, reverse: Bool = false) -> [Int] {
            var order = Array(0 ..< tiles)
            if causal {
                // reverse: a key tile's backward work shrinks with its position.
                order.sort { a, b in
                    let ca = tile(a).i0, cb = tile(b).i0
                    if ca != cb { return reverse ? ca < cb : ca > cb }
                    return a < b
                }
            }
            var tasks: [Int] = []
            tasks.reserveCapacity(tiles * groups)
            for ti in order { for x in 0 ..< groups { tasks.append(ti * groups + x) } }
            return tasks
        }
    }

    /// Hands out task indices to workers in order. Which worker runs a task never changes its
    /// result (each task owns its outputs and initialises its scratch), so dynamic scheduling
    /// keeps results bitwise identical for any worker count.
    final class TaskQueue: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private let count: Int
        init(_ count: Int) { self.count = count }
        func take() -> Int? {
            lock.lock()
            defer { lock.unlock() }
            if next >= count { return nil }
            next += 1
            return next - 1
        }
    }

    /// Head dimension rounded up to whole product-tile columns (row-packed operands' stride).
    @inline(__always) static func paddedDim(_ d: Int) -> Int {
        (d + tileColumns - 1) / tileColumns * tileColumns
    }

    /// Packs `heads` column blocks of `src` (rows of `tokens`, `ld` apart) transposed per tile:
    /// dst[((h·paddedTokens + ti·bs) · D) + d·bs + j] = src[token(ti, j)·ld + h·D + d], zero past a
    /// sequence's end. Parallel over (head, tile); every element written by one task.
    static func packTransposed(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, ld: Int,
                               plan: Plan, heads: Int, headDim D: Int, workers: Int?) {
        let bs = blockSize
        Parallel.forEach(heads * plan.tiles, workers: workers) { task in
            let h = task / plan.tiles, ti = task % plan.tiles
            let (s, i0, n) = plan.tile(ti)
            let tile = dst + (h * plan.paddedTokens + ti * bs) * D
            let first = src + (plan.starts[s] + i0) * ld + h * D
            // Register-block transposes (Transpose.swift) over whole vLanes x vLanes blocks
            // (rows past n read as zero); leftover head-dimension columns one element at a time.
            let dBlocks = bs % vLanes == 0 ? D / vLanes * vLanes : 0
            var jb = 0
            while jb < bs {
                if jb < n {
                    var db = 0
                    while db < dBlocks {
                        Transpose.native(first + jb * ld + db, lds: ld, rows: min(vLanes, n - jb)) { p, v in
                            vstore(v, tile + (db + p) * bs + jb, 0)
                        }
                        db += vLanes
                    }
                } else if dBlocks > 0 {
                    for d in 0 ..< dBlocks { (tile + d * bs + jb).update(repeating: 0, count: min(vLanes, bs - jb)) }
                }
                jb += dBlocks > 0 ? vLanes : bs
            }
            for j in 0 ..< bs {
                let row = first + j * ld
                for d in dBlocks ..< D { tile[d * bs + j] = j < n ? row[d] : 0 }
            }
        }
    }

    /// Packs `heads` column blocks of `src` row by row with stride `Dp >= D`:
    /// dst[(h·paddedTokens + p) · Dp + d] = src[token(p)·ld + h·D + d], zero in padding.
    static func packRows(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, ld: Int,
                         plan: Plan, heads: Int, headDim D: Int, stride Dp: Int, workers: Int?) {
        let bs = blockSize
        Parallel.forEach(heads * plan.tiles, workers: workers) { task in
            let h = task / plan.tiles, ti = task % plan.tiles
            let (s, i0, n) = plan.tile(ti)
            let tile = dst + (h * plan.paddedTokens + ti * bs) * Dp
            let first = src + (plan.starts[s] + i0) * ld + h * D
            for j in 0 ..< bs {
                let row = tile + j * Dp
                if j < n {
                    row.update(from: first + j * ld, count: D)
                    if Dp > D { (row + D).update(repeating: 0, count: Dp - D) }
                } else {
                    row.update(repeating: 0, count: Dp)
                }
            }
        }
    }

    /// Common shape checks of the three entry points.
    static func checkShape(heads: Int, kvHeads: Int, headDim: Int, ldq: Int, ldk: Int, ldv: Int, ldo: Int,
                           scale: Float) {
        precondition(heads >= 1 && kvHeads >= 1 && headDim >= 1, "Attention: heads, kvHeads, headDim must be >= 1")
        precondition(heads % kvHeads == 0, "Attention: kvHeads (\(kvHeads)) must divide heads (\(heads))")
        precondition(ldq >= heads * headDim && ldo >= heads * headDim, "Attention: ldq and ldo must be >= heads·headDim")
        precondition(ldk >= kvHeads * headDim && ldv >= kvHeads * headDim, "Attention: ldk and ldv must be >= kvHeads·headDim")
        precondition(scale > 0 && scale.isFinite, "Attention: scale must be positive and finite")
    }
}
