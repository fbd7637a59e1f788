import Foundation

/// Chooses the judge's feature blocks and L2 strength and fits its classifier (what `train-judge`
/// runs after embedding). A candidate is one block or several blocks' states side by side. Model
/// selection never sees the held-out rows: it splits the training rows again by prompt (an inner
/// validation set) and picks the (blocks, λ) of least validation log loss, then refits on all
/// training rows.
public enum JudgeTrainer {
    public struct Candidate<Key: Hashable & Sendable>: Sendable {
        public var blocks: [Key]
        public var l2: Double
        public var validationLogLoss: Double
        public var validationF1: Double
    }

    public struct Result<Key: Hashable & Sendable>: Sendable {
        public var blocks: [Key]
        public var l2: Double
        public var fit: LogisticRegression.Fit
        public var candidates: [Candidate<Key>]
    }

    public static let defaultL2Grid: [Double] = [1e-3, 1e-2, 1e-1, 1]

    /// `byBlock[b]` holds (rows, width) states of feature part `b` (a block, or a `JudgeFeature`);
    /// `candidates` are sets of parts (nil: each part alone); `train` marks the rows the classifier may learn from.
    public static func train<Key: Hashable & Comparable & Sendable>(
        byBlock: [Key: [Float]], width: Int, candidates blockSets: [[Key]]? = nil, labels: [Bool], prompts: [String],
        train: [Bool], l2Grid: [Double] = defaultL2Grid, seed: UInt64, workers: Int? = nil,
        name: (Key) -> String = { "\($0)" }, note: ((String) -> Void)? = nil) throws -> Result<Key> {
        let n = labels.count
        let sets = blockSets ?? byBlock.keys.sorted().map { [$0] }
        precondition(!sets.isEmpty && sets.allSatisfy { !$0.isEmpty && $0.allSatisfy { byBlock[$0] != nil } },
                     "JudgeTrainer: every candidate block needs its states")
        func features(_ set: [Key]) -> [Float] { JudgeEmbeddingSpec.features(byBlock, blocks: set, rows: n, width: width) }
        let trainRows = (0 ..< n).filter { train[$0] }
        guard trainRows.contains(where: { labels[$0] }), trainRows.contains(where: { !labels[$0] }) else {
            throw DatasetError("the training split needs both harmful and benign rows")
        }
        // Inner split by prompt, with another seed so it is independent of the held-out split.
        let inner = trainRows.map { PromptSplit.isHeldOut(prompts[$0], seed: seed &+ 0x5eed, fraction: 0.2) }
        let fitRows = zip(trainRows, inner).filter { !$0.1 }.map(\.0), valRows = zip(trainRows, inner).filter { $0.1 }.map(\.0)
        var candidates: [Candidate<Key>] = []
        let canValidate = fitRows.contains { labels[$0] } && fitRows.contains { !labels[$0] } && valRows.count >= 2
        if canValidate && (sets.count > 1 || l2Grid.count > 1) {
            for set in sets {
                let x = features(set), dim = width * set.count
                for l2 in l2Grid {
                    let f = try LogisticRegression.fit(features: gather(x, rows: fitRows, dim: dim), rows: fitRows.count, dim: dim,
                                                       labels: fitRows.map { labels[$0] }, l2: l2, workers: workers)
                    let p = f.model.probabilities(gather(x, rows: valRows, dim: dim), rows: valRows.count)
                    var logLoss = 0.0
                    for (k, r) in valRows.enumerated() { logLoss -= log(max(1e-12, labels[r] ? p[k] : 1 - p[k])) }
                    logLoss /= Double(valRows.count)
                    let f1 = EvaluationMetrics.agreement(predicted: p.map { $0 > 0.5 }, labels: valRows.map { labels[$0] }).f1
                    candidates.append(Candidate(blocks: set, l2: l2, validationLogLoss: logLoss, validationF1: f1))
                    note?(String(format: "blocks %@, l2 %g: validation log loss %.4f, F1 %.3f (%d Newton steps)",
                                 set.map(name).joined(separator: "+"), l2, logLoss, f1, f.iterations))
                }
            }
        }
        let best = candidates.min { $0.validationLogLoss < $1.validationLogLoss }
        let blocks = best?.blocks ?? sets[sets.count / 2], l2 = best?.l2 ?? l2Grid[l2Grid.count / 2]
        let fit = try LogisticRegression.fit(features: gather(features(blocks), rows: trainRows, dim: width * blocks.count), rows: trainRows.count,
                                             dim: width * blocks.count, labels: trainRows.map { labels[$0] }, l2: l2, workers: workers)
        return Result(blocks: blocks, l2: l2, fit: fit, candidates: candidates)
    }

    /// Rows `rows` of a (·, dim) matrix.
    public static func gather(_ x: [Float], rows: [Int], dim: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * dim)
        for (k, r) in rows.enumerated() { for j in 0 ..< dim { out[k * dim + j] = x[r * dim + j] } }
        return out
    }
}
