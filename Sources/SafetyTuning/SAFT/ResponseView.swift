import Foundation
import Kernels

/// Guided SAFT's second view (`saft --guide-response`): co-training (Blum & Mitchell 1998) of a
/// discriminant on the rows' *responses*, taught by the prompt-side guided score.
///
/// The references are requests only, so the guided score reads a row's prompt. A harmful row's
/// answer (a compliant how-to) differs from a benign one in ways the prompt does not show. The
/// pool's rows the guided score is confident about (z > `high`: harmful; z < `low`: benign, in sd of
/// the benign references) label a regularised discriminant on the mean response state; every row is
/// scored by a model fitted without it (`folds`-way cross-fitting), so a pseudo-label never scores its
/// own row. Both views' z-scores are summed (`(z_g + z_r)/√2`), standardised on the pseudo-benign rows,
/// and a row goes when the guided score alone flags it, or when the joint score exceeds `threshold`
/// and the row's response score is past the midpoint of the two pseudo-classes' means. No label is
/// read: the pool's `Embeddings` carry none.
///
/// The view is applied only when it confirms the prompt view: its cross-fitted scores must rank the
/// pseudo-harmful rows above the pseudo-benign ones with AUROC >= `minimumAgreement`. In a pool
/// without harmful rows the few rows above the guided threshold are benign outliers whose responses
/// share nothing, and the check fails (measured in Docs/SAFT.md: 0.70 on the clean mixture, 0.95-0.98
/// on the contaminated ones).
public enum ResponseView {
    public struct Options: Sendable {
        public var high = 3.090232306167813  // z(0.999): the rows the guided threshold removes
        public var low = 1.0
        public var shrinkage = 0.3
        /// Cross-fitting folds: 10 rather than 5 because which rows share a fold moved the 10%
        /// mixture's recall by ±0.012 at 5 folds and ±0.005 at 10 (Docs/SAFT.md).
        public var folds = 10
        public var threshold = 3.090232306167813
        public var minimumAgreement = 0.9
        /// Pseudo-labelled rows per class used to fit, at most (an even stride).
        public var maxRows = 8192
        public init() {}
    }

    public struct Result: Sendable {
        /// Response-view z-scores (cross-fitted) and the joint z-scores, per row.
        public var responseZ: [Double]
        public var jointZ: [Double]
        public var removed: [Bool]
        public var pseudoHarmful: Int, pseudoBenign: Int
        /// AUROC of the response-view scores on the pseudo-labelled rows, and whether it was enough
        /// for the view to remove rows (when not, `removed` is the guided removal).
        public var agreement: Double
        public var applied: Bool
    }

    /// `guidedZ`: the guided score per row in sd of the benign references above their mean;
    /// `response`: (rows, dim) mean-response states. Nil when fewer than `2·folds` rows are
    /// confidently harmful (nothing to learn the response view from; the caller keeps the guided result).
    public static func score(guidedZ zg: [Double], guidedRemoved: [Bool], response x: [Float], dim d: Int,
                             options o: Options = Options()) throws -> Result? {
        let n = zg.count
        precondition(x.count == n * d && guidedRemoved.count == n, "ResponseView: \(x.count) values for \(n) rows of \(d)")
        let harmful = zg.indices.filter { zg[$0] > o.high }, benign = zg.indices.filter { zg[$0] < o.low }
        guard harmful.count >= 2 * o.folds, benign.count >= 2 * o.folds else { return nil }
        func capped(_ rows: [Int]) -> [Int] {
            let step = max(1, (rows.count + o.maxRows - 1) / o.maxRows)
            return Array(stride(from: 0, to: rows.count, by: step).map { rows[$0] })
        }
        // Folds deal each class's rows round-robin (so every fold trains on both classes whatever the
        // file's order); unlabelled rows go by index.
        var fold = (0 ..< n).map { $0 % o.folds }
        for (k, i) in harmful.enumerated() { fold[i] = k % o.folds }
        for (k, i) in benign.enumerated() { fold[i] = k % o.folds }
        var raw = [Double](repeating: 0, count: n)
        for f in 0 ..< o.folds {
            let train = { (rows: [Int]) in capped(rows.filter { fold[$0] != f }) }
            let w = try GuidedSAFT.direction(x, train(harmful), x, train(benign), dim: d, shrinkage: o.shrinkage)
            for i in 0 ..< n where fold[i] == f { raw[i] = w.score(x, row: i) }
        }
        func standardised(_ v: [Double]) -> [Double] {
            let (m, s) = GuidedSAFT.meanSD(benign.map { v[$0] })
            return v.map { ($0 - m) / max(s, 1e-12) }
        }
        let zr = standardised(raw)
        let joint = standardised(zip(zg, zr).map { ($0 + $1) / 2.squareRoot() })
        let labelled = harmful + benign
        let agreement = RankingMetrics.auroc(scores: labelled.map { Float(zr[$0]) },
                                             labels: labelled.map { zg[$0] > o.high }) ?? 0
        let applied = agreement >= o.minimumAgreement
        // The response must also sit nearer the confidently harmful responses than the benign ones: on
        // templated data a benign template between the two pseudo-classes otherwise scores high on
        // both views (Docs/SAFT.md: 19% of the demo's benign rows without this condition, none with it).
        let midpoint = harmful.map { zr[$0] }.reduce(0, +) / Double(harmful.count) / 2
        let removed = (0 ..< n).map { guidedRemoved[$0] || (applied && joint[$0] > o.threshold && zr[$0] > midpoint) }
        return Result(responseZ: zr, jointZ: joint, removed: removed, pseudoHarmful: harmful.count, pseudoBenign: benign.count,
                      agreement: agreement, applied: applied)
    }
}
