import Foundation

extension CrossEntropy {
    /// How per-token losses are combined into the training loss.
    public enum Reduction: Sendable {
        /// Mean over every counted token of the batch.
        case meanPerBatch
        /// Mean over each sequence's counted tokens, then mean over sequences that have any.
        case meanPerSequence
        /// Plain sum over counted tokens.
        case sum
    }

    /// Per-token weights w[t] such that the reduced loss is Σ_t w[t]·loss[t]; pass them as
    /// `tokenWeights` to `forwardBackward` to get that loss's gradient.
    ///
    /// Shapes: `targets` is (Σ sequenceLengths) Int32, the sequences back to back (padding
    /// included: padded and prompt tokens carry `ignoreIndex`). Ignored tokens get weight 0.
    /// Sums are formed in Double, then rounded once per weight.
    public static func tokenWeights(targets: UnsafePointer<Int32>, sequenceLengths: [Int],
                                    ignoreIndex: Int32 = defaultIgnoreIndex, reduction: Reduction) -> [Float] {
        precondition(sequenceLengths.allSatisfy { $0 >= 0 }, "CrossEntropy.tokenWeights: negative length")
        let total = sequenceLengths.reduce(0, +)
        var w = [Float](repeating: 0, count: total)
        var counts = [Int]()
        var start = 0
        for n in sequenceLengths {
            var k = 0
            for t in start ..< start + n where targets[t] != ignoreIndex { k += 1 }
            counts.append(k)
            start += n
        }
        let counted = counts.reduce(0, +), sequencesWithTokens = counts.filter { $0 > 0 }.count
        start = 0
        for (s, n) in sequenceLengths.enumerated() {
            let value: Double
            switch reduction {
            case .sum: value = 1
            case .meanPerBatch: value = counted > 0 ? 1 / Double(counted) : 0
            case .meanPerSequence: value = counts[s] > 0 ? 1 / (Double(sequencesWithTokens) * Double(counts[s])) : 0
            }
            for t in start ..< start + n where targets[t] != ignoreIndex { w[t] = Float(value) }
            start += n
        }
        return w
    }

    /// Σ_t weights[t]·losses[t], summed in Double in token order (deterministic).
    public static func weightedSum(losses: UnsafePointer<Float>, weights: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for t in 0 ..< count { s += Double(weights[t]) * Double(losses[t]) }
        return s
    }

    /// Mean loss of each sequence over its counted tokens (0 for a sequence with none).
    public static func sequenceMeans(losses: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                     sequenceLengths: [Int], ignoreIndex: Int32 = defaultIgnoreIndex) -> [Double] {
        var out = [Double]()
        var start = 0
        for n in sequenceLengths {
            var s = 0.0, k = 0
            for t in start ..< start + n where targets[t] != ignoreIndex { s += Double(losses[t]); k += 1 }
            out.append(k > 0 ? s / Double(k) : 0)
            start += n
        }
        return out
    }
}
