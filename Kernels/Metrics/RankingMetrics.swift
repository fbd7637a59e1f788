import Foundation

/// Metrics that judge a score as a detector of the positive class (harmful = true).
/// Convention everywhere: a sample is predicted positive when `score > threshold`.
public enum RankingMetrics {
    /// Area under the ROC curve = P(score of a random positive > score of a random negative)
    /// + 0.5·P(tie): the Mann-Whitney U statistic with mid-ranks, U / (n_pos·n_neg).
    /// NaN scores are rejected (precondition). Returns nil when either class is empty.
    /// Cost: O(n log n) (one sort).
    public static func auroc(scores: [Float], labels: [Bool]) -> Double? {
        precondition(scores.count == labels.count, "auroc: \(scores.count) scores for \(labels.count) labels")
        precondition(!scores.contains { $0.isNaN }, "auroc: NaN score")
        let nPos = labels.reduce(0) { $0 + ($1 ? 1 : 0) }, nNeg = labels.count - nPos
        if nPos == 0 || nNeg == 0 { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        // Sum of the (1-based, tie-averaged) ranks of the positives.
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let midRank = Double(i + j + 2) / 2
            for t in i ... j where labels[order[t]] { rankSum += midRank }
            i = j + 1
        }
        let u = rankSum - Double(nPos) * Double(nPos + 1) / 2
        return u / (Double(nPos) * Double(nNeg))
    }

    public struct Confusion: Equatable {
        public var truePositives = 0, falsePositives = 0, trueNegatives = 0, falseNegatives = 0
        public init(truePositives: Int = 0, falsePositives: Int = 0, trueNegatives: Int = 0, falseNegatives: Int = 0) {
            self.truePositives = truePositives; self.falsePositives = falsePositives
            self.trueNegatives = trueNegatives; self.falseNegatives = falseNegatives
        }
        /// TP / (TP + FP); 0 when nothing is predicted positive.
        public var precision: Double { truePositives + falsePositives == 0 ? 0 : Double(truePositives) / Double(truePositives + falsePositives) }
        /// TP / (TP + FN); 0 when there are no positives.
        public var recall: Double { truePositives + falseNegatives == 0 ? 0 : Double(truePositives) / Double(truePositives + falseNegatives) }
        /// 2·TP / (2·TP + FP + FN) (harmonic mean of precision and recall); 0 when TP = 0.
        public var f1: Double {
            let den = 2 * truePositives + falsePositives + falseNegatives
            return den == 0 || truePositives == 0 ? 0 : Double(2 * truePositives) / Double(den)
        }
    }

    /// Confusion counts of "positive iff score > threshold" against `labels`.
    public static func confusion(scores: [Float], labels: [Bool], threshold: Float) -> Confusion {
        precondition(scores.count == labels.count, "confusion: \(scores.count) scores for \(labels.count) labels")
        var c = Confusion()
        for (s, y) in zip(scores, labels) {
            let predicted = s > threshold
            switch (predicted, y) {
            case (true, true): c.truePositives += 1
            case (true, false): c.falsePositives += 1
            case (false, false): c.trueNegatives += 1
            case (false, true): c.falseNegatives += 1
            }
        }
        return c
    }

    /// Where the candidate thresholds come from.
    public enum Candidates {
        /// Every distinct score and one below the minimum (the exact optimum over all thresholds).
        case allScores
        /// SAFT (METHODS.md §2.3 step 6): tau_i = a + (b - a)·i/count, i = 0..<count, a = min, b = max.
        case evenlySpaced(count: Int)
        /// A caller-given list.
        case list([Float])
    }

    /// The candidate threshold with the largest F1 (first one on ties, in ascending threshold
    /// order) and its confusion counts. nil when `scores` is empty. Cost: O(n log n + c log n).
    public static func bestF1(scores: [Float], labels: [Bool], candidates: Candidates = .allScores)
        -> (threshold: Float, confusion: Confusion)? {
        precondition(scores.count == labels.count, "bestF1: \(scores.count) scores for \(labels.count) labels")
        precondition(!scores.contains { $0.isNaN }, "bestF1: NaN score")
        guard let lo = scores.min(), let hi = scores.max() else { return nil }
        var taus: [Float]
        switch candidates {
        case .allScores:
            taus = Array(Set(scores)).sorted()
            taus.insert(lo.nextDown, at: 0)
        case .evenlySpaced(let count):
            precondition(count >= 1, "bestF1: need at least one candidate")
            taus = (0 ..< count).map { Float(Double(lo) + (Double(hi) - Double(lo)) * Double($0) / Double(count)) }
        case .list(let list):
            precondition(!list.isEmpty && !list.contains { $0.isNaN }, "bestF1: empty or NaN candidate list")
            taus = list.sorted()
        }
        // Sorted scores with suffix counts of positives: predicted positives for tau are the
        // scores strictly above tau.
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        let sorted = order.map { scores[$0] }
        var positivesAbove = [Int](repeating: 0, count: order.count + 1)
        for i in stride(from: order.count - 1, through: 0, by: -1) {
            positivesAbove[i] = positivesAbove[i + 1] + (labels[order[i]] ? 1 : 0)
        }
        let totalPos = positivesAbove[0], total = scores.count
        var best: (Float, Confusion)?
        for tau in taus {
            // First index with sorted[idx] > tau.
            var a = 0, b = sorted.count
            while a < b { let m = (a + b) / 2; if sorted[m] > tau { b = m } else { a = m + 1 } }
            var c = Confusion()
            c.truePositives = positivesAbove[a]
            c.falsePositives = (total - a) - c.truePositives
            c.falseNegatives = totalPos - c.truePositives
            c.trueNegatives = a - c.falseNegatives
            if best == nil || c.f1 > best!.1.f1 { best = (tau, c) }
        }
        return best
    }
}
