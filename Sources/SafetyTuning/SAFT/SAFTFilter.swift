import Foundation
import Kernels

/// A fitted SAFT filter, everything needed to score new rows: what `saft fit` writes (JSON) and
/// `saft score` applies to each shard. The published (subspace) part is the mean and top-k basis
/// of the pool; the guided part is a reference direction; combined uses both (GuidedSAFT.combine).
public struct SAFTFilter: Codable, Sendable {
    public struct Subspace: Codable, Sendable {
        public var block: Int
        public var rank: Int
        public var weights: [Float]
        public var mean: [Float]
        /// rank x dim, row j = v_j.
        public var basis: [Float]
        public var singularValues: [Double]
        public var threshold: Float
        public var rule: String
        /// 1.4826·MAD of √score over the pool (the combined score's unit).
        public var rootScale: Float

        public init(block: Int, rank: Int, weights: [Float], mean: [Float], basis: [Float], singularValues: [Double],
                    threshold: Float, rule: String, rootScale: Float) {
            self.block = block; self.rank = rank; self.weights = weights; self.mean = mean; self.basis = basis
            self.singularValues = singularValues; self.threshold = threshold; self.rule = rule; self.rootScale = rootScale
        }

        public func scores(_ x: [Float], rows: Int) -> [Float] {
            SAFTFilter.projectionScores(x, rows: rows, mean: mean, basis: basis, rank: rank, weights: weights)
        }
    }

    public var method: String
    public var position: String
    public var maxTokens: Int
    public var modelIdentity: String
    public var guided: GuidedSAFT.Direction?
    public var guidedRule: String?
    public var subspace: Subspace?
    public var warnings: [String]

    public init(method: String, position: String, maxTokens: Int, modelIdentity: String, guided: GuidedSAFT.Direction?,
                guidedRule: String?, subspace: Subspace?, warnings: [String]) {
        self.method = method; self.position = position; self.maxTokens = maxTokens; self.modelIdentity = modelIdentity
        self.guided = guided; self.guidedRule = guidedRule; self.subspace = subspace; self.warnings = warnings
    }

    public var blocks: [Int] { Array(Set([guided?.block, subspace?.block].compactMap { $0 })).sorted() }

    /// Scores and removal decisions for rows embedded at `blocks`.
    public func apply(_ byBlock: [Int: [Float]], rows: Int) throws -> (scores: [Float], removed: [Bool], threshold: Float) {
        for b in blocks where byBlock[b] == nil { throw DatasetError("the rows were not embedded at block \(b), which the filter uses") }
        switch method {
        case "guided":
            let g = guided!, s = g.scores(byBlock[g.block]!, rows: rows)
            return (s, s.map { $0 > g.threshold }, g.threshold)
        case "subspace":
            let p = subspace!, s = p.scores(byBlock[p.block]!, rows: rows)
            return (s, s.map { $0 > p.threshold }, p.threshold)
        default:
            let g = guided!, p = subspace!
            let sg = g.scores(byBlock[g.block]!, rows: rows), sp = p.scores(byBlock[p.block]!, rows: rows)
            let c = SAFTFilter.combined(guided: sg, guidedThreshold: g.threshold, guidedMean: Float(g.benignMeanScore),
                                        guidedScale: Float(g.benignSD), subspace: sp, subspaceThreshold: p.threshold, rootScale: p.rootScale)
            return (c.scores, c.removed, 0)
        }
    }

    /// The combined rule: a row goes when the guided score flags it, or when the subspace score flags
    /// it and its guided score is above the benign references' mean (an outlier of the published
    /// score that the guided direction places among typical benign requests stays: on templated
    /// data the published score's outliers can be a whole benign template; Docs/SAFT.md). Scores:
    /// (g - τ_g) / sd_g, or the larger of that and (√s - √τ_s) / scale where the subspace part
    /// counts: positive exactly for removed rows.
    public static func combined(guided: [Float], guidedThreshold: Float, guidedMean: Float, guidedScale: Float,
                                subspace: [Float], subspaceThreshold: Float, rootScale: Float) -> (scores: [Float], removed: [Bool]) {
        let sdG = max(guidedScale, 1e-12), scale = max(rootScale, 1e-12)
        let rootT: Float = subspaceThreshold.isFinite ? max(subspaceThreshold, 0).squareRoot() : .infinity
        var scores = [Float](), removed = [Bool]()
        scores.reserveCapacity(guided.count); removed.reserveCapacity(guided.count)
        for (g, s) in zip(guided, subspace) {
            let gm = (g - guidedThreshold) / sdG
            let subspaceCounts = g > guidedMean && s > subspaceThreshold
            removed.append(g > guidedThreshold || subspaceCounts)
            let sm = rootT.isFinite ? (max(s, 0).squareRoot() - rootT) / scale : -.infinity
            // A flagged subspace part is positive (a tiny floor where √ rounding meets the threshold).
            scores.append(subspaceCounts ? max(gm, sm, Float.leastNormalMagnitude) : gm)
        }
        return (scores, removed)
    }

    /// 1.4826·MAD of √scores.
    public static func rootScale(_ scores: [Float]) -> Float {
        let root = scores.map { max($0, 0).squareRoot() }
        let median = root.sorted()[root.count / 2]
        return max(root.map { abs($0 - median) }.sorted()[root.count / 2] * 1.4826, 1e-12)
    }

    /// s_i = (1/k) Σ_j w_j <x_i - μ, v_j>² through the projection kernel (as SAFT.run scores).
    public static func projectionScores(_ x: [Float], rows: Int, mean: [Float], basis: [Float], rank k: Int, weights: [Float]) -> [Float] {
        let d = mean.count
        precondition(x.count == rows * d && basis.count >= k * d && weights.count >= k, "projectionScores: inconsistent shapes")
        var out = [Float](repeating: 0, count: rows)
        if rows == 0 { return out }
        x.withUnsafeBufferPointer { xp in
            mean.withUnsafeBufferPointer { mu in
                basis.withUnsafeBufferPointer { v in
                    weights.withUnsafeBufferPointer { wp in
                        out.withUnsafeMutableBufferPointer { o in
                            ProjectionScore.score(x: xp.baseAddress!, rows: rows, cols: d, ldx: d, mean: mu.baseAddress!,
                                                  basis: v.baseAddress!, rank: k, weights: wp.baseAddress!,
                                                  squared: o.baseAddress!, workers: nil)
                        }
                    }
                }
            }
        }
        return out
    }

    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try e.encode(self)
    }

    public static func decode(_ data: Data, path: String) throws -> SAFTFilter {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        do { return try d.decode(SAFTFilter.self, from: data) } catch {
            throw DatasetError("\(path): not a SAFT filter file (\(error))")
        }
    }
}
