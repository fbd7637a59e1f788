import Foundation

/// Rates, agreement and text-overlap metrics of the evaluation reports.
public enum EvaluationMetrics {
    /// Wilson score interval of a binomial proportion `successes / n` at z (1.959964 = 95%).
    /// Unlike the normal interval it stays inside [0, 1] and is sensible at 0 or n successes.
    public static func wilson(successes: Int, n: Int, z: Double = 1.959963984540054) -> (low: Double, high: Double) {
        guard n > 0 else { return (0, 1) }
        let p = Double(successes) / Double(n), nn = Double(n), z2 = z * z
        let centre = (p + z2 / (2 * nn)) / (1 + z2 / nn)
        let half = z / (1 + z2 / nn) * (p * (1 - p) / nn + z2 / (4 * nn * nn)).squareRoot()
        return (max(0, centre - half), min(1, centre + half))
    }

    /// Lower-cased alphanumeric words, the tokens of ROUGE (as in Lin 2004 and `rouge-score`
    /// without stemming): every other character separates words.
    public static func words(_ s: String) -> [Substring] {
        s.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) })
    }

    /// Length of the longest common subsequence (dynamic programming, O(|a|·|b|) time, O(|b|) memory).
    public static func lcsLength<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        var prev = [Int](repeating: 0, count: b.count + 1), cur = prev
        for x in a {
            for j in 1 ... b.count {
                cur[j] = x == b[j - 1] ? prev[j - 1] + 1 : max(prev[j], cur[j - 1])
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    /// ROUGE-L F1 of `candidate` against `reference` (LCS over words): 2PR / (P + R) with
    /// P = LCS/|candidate|, R = LCS/|reference|; 0 when either is empty.
    public static func rougeL(candidate: String, reference: String) -> Double {
        let c = words(candidate), r = words(reference)
        let l = lcsLength(c, r)
        if l == 0 { return 0 }
        let p = Double(l) / Double(c.count), rec = Double(l) / Double(r.count)
        return 2 * p * rec / (p + rec)
    }

    /// Agreement of `predicted` with `labels` (positive = harmful).
    public static func agreement(predicted: [Bool], labels: [Bool]) -> Agreement {
        precondition(predicted.count == labels.count, "agreement: \(predicted.count) predictions for \(labels.count) labels")
        var a = Agreement()
        for (p, y) in zip(predicted, labels) {
            switch (p, y) {
            case (true, true): a.truePositives += 1
            case (true, false): a.falsePositives += 1
            case (false, false): a.trueNegatives += 1
            case (false, true): a.falseNegatives += 1
            }
        }
        return a
    }
}

/// Confusion counts of a binary judge against labels, with the derived rates (positive = harmful).
public struct Agreement: Codable, Equatable, Sendable {
    public var truePositives = 0, falsePositives = 0, trueNegatives = 0, falseNegatives = 0
    public init() {}

    public var n: Int { truePositives + falsePositives + trueNegatives + falseNegatives }
    public var positives: Int { truePositives + falseNegatives }
    public var accuracy: Double { n == 0 ? 0 : Double(truePositives + trueNegatives) / Double(n) }
    /// TP / (TP + FP); 0 when nothing is predicted positive.
    public var precision: Double { truePositives + falsePositives == 0 ? 0 : Double(truePositives) / Double(truePositives + falsePositives) }
    /// TP / (TP + FN); 0 when there are no positives.
    public var recall: Double { positives == 0 ? 0 : Double(truePositives) / Double(positives) }
    /// 2·TP / (2·TP + FP + FN); 0 when TP = 0.
    public var f1: Double {
        let den = 2 * truePositives + falsePositives + falseNegatives
        return truePositives == 0 ? 0 : Double(2 * truePositives) / Double(den)
    }

    enum CodingKeys: String, CodingKey {
        case truePositives, falsePositives, trueNegatives, falseNegatives, n, accuracy, precision, recall, f1
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        truePositives = try c.decode(Int.self, forKey: .truePositives)
        falsePositives = try c.decode(Int.self, forKey: .falsePositives)
        trueNegatives = try c.decode(Int.self, forKey: .trueNegatives)
        falseNegatives = try c.decode(Int.self, forKey: .falseNegatives)
    }

    /// The counts, plus the derived rates for people reading the file (ignored when read back).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(truePositives, forKey: .truePositives)
        try c.encode(falsePositives, forKey: .falsePositives)
        try c.encode(trueNegatives, forKey: .trueNegatives)
        try c.encode(falseNegatives, forKey: .falseNegatives)
        try c.encode(n, forKey: .n)
        try c.encode(accuracy, forKey: .accuracy)
        try c.encode(precision, forKey: .precision)
        try c.encode(recall, forKey: .recall)
        try c.encode(f1, forKey: .f1)
    }

    public var json: [String: Any] {
        let ci = EvaluationMetrics.wilson(successes: truePositives + trueNegatives, n: n)
        return ["n": n, "positives": positives, "accuracy": accuracy, "accuracy_ci95": [ci.low, ci.high],
                "precision": precision, "recall": recall, "f1": f1,
                "true_positives": truePositives, "false_positives": falsePositives,
                "true_negatives": trueNegatives, "false_negatives": falseNegatives]
    }
}
