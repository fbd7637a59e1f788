import Foundation

/// Dynamic batching by length: the micro-batches of one epoch, each a list of sample indices whose
/// token total stays within a budget.
///
/// The engine packs sequences back to back without padding, so grouping by length saves no padded
/// compute here (it does in padded trainers, Hugging Face's `group_by_length`). What it buys is a
/// micro-batch defined by tokens instead of samples: the activation arena is planned once for the
/// budget (`TrainingEngine.plannedActivationBytes(tokens: budget)`), every step costs about the same,
/// and a set of short samples is not trained in tiny micro-batches while a long one sets the peak
/// memory. Grouping samples of similar length is what lets a budget be filled tightly: sorted
/// lengths pack with little slack left at the end of each micro-batch.
///
/// The plan of epoch e is a pure function of (lengths, budget, seed, e): the epoch's seeded
/// permutation is cut into windows of about `windowBatches` budgets of tokens; each window is
/// sorted by length (ties keep permutation order) and packed greedily; finally the order of the
/// epoch's micro-batches is shuffled with a second seeded permutation, so the step order does not
/// follow length. Windows keep micro-batch composition varying from epoch to epoch (a global sort
/// would put the same neighbours together every epoch). A sample longer than the budget forms a
/// micro-batch of its own. Every sample appears exactly once per epoch.
public enum BatchPlan {
    /// Windows hold about this many micro-batches' worth of tokens.
    public static let windowBatches = 32

    public static func lengthGrouped(lengths: [Int], budget: Int, seed: UInt64, epoch: Int) -> [[Int]] {
        precondition(budget >= 1, "BatchPlan.lengthGrouped: budget \(budget) must be positive")
        let order = permutation(lengths.count, seed: seed, epoch: epoch)
        var batches: [[Int]] = []
        var start = 0
        while start < order.count {
            var end = start, tokens = 0
            while end < order.count && (end == start || tokens + lengths[order[end]] <= windowBatches * budget) {
                tokens += lengths[order[end]]
                end += 1
            }
            // Longest first, ties in permutation order (a stable, fully determined sort).
            let window = order[start ..< end].enumerated().sorted {
                lengths[$0.element] != lengths[$1.element] ? lengths[$0.element] > lengths[$1.element] : $0.offset < $1.offset
            }.map(\.element)
            var current: [Int] = [], used = 0
            for i in window {
                if !current.isEmpty && used + lengths[i] > budget {
                    batches.append(current)
                    current = []; used = 0
                }
                current.append(i); used += lengths[i]
            }
            if !current.isEmpty { batches.append(current) }
            start = end
        }
        let shuffle = permutation(batches.count, seed: seed ^ 0xB47C_4E5D_A11C_0DE5, epoch: epoch)
        return shuffle.map { batches[$0] }
    }

    /// The sample order of `epoch`: Fisher–Yates with a generator seeded by (seed, epoch).
    public static func permutation(_ n: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = SplitMix(seed: SplitMix.mix(seed ^ SplitMix.mix(UInt64(epoch) &+ 0x51_7CC1)))
        var p = Array(0 ..< n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                p.swapAt(i, j)
            }
        }
        return p
    }
}
