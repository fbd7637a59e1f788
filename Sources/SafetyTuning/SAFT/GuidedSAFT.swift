import Foundation
import Kernels

/// Guided SAFT (issue 10, Docs/SAFT.md): the harm direction comes from reference prompts, not from
/// the pool's own variance. Per block, d = mean(harmful refs) - mean(benign refs); a pool row's
/// score is <h - mean(benign refs), d/|d|>. The block is chosen, and the threshold calibrated, from
/// cross-validated reference scores only; optionally (`Options.adaptRounds`) the direction is then
/// refitted with the pool's own confidently scored rows as extra training rows. The pool contributes
/// its embeddings and nothing else (`Embeddings` carries no labels, so the pool's labels cannot reach
/// the fit).
public enum GuidedSAFT {
    /// How the threshold is placed on the held-out reference scores (Gaussian fits of both classes).
    public enum Calibration: Sendable, Equatable {
        /// Where the two classes are equally many standard deviations away:
        /// τ = (m_b·s_h + m_h·s_b) / (s_b + s_h).
        case balanced
        /// The benign (1 - F) Gaussian quantile: τ = m_b + z(1 - F)·s_b.
        case benignFalsePositiveRate(Double)

        public var name: String {
            switch self {
            case .balanced: return "balanced"
            case .benignFalsePositiveRate(let f): return "benign-fpr \(f)"
            }
        }
    }

    /// Reference embeddings: rows of each class at every block (row-major, `dim` columns).
    public struct References: Sendable {
        public var harmful: [Int: [Float]]
        public var benign: [Int: [Float]]
        public var harmfulCount: Int, benignCount: Int, dim: Int
        public init(harmful: Embeddings, benign: Embeddings) {
            precondition(harmful.dim == benign.dim, "references: dimensions differ")
            self.harmful = harmful.byBlock; self.benign = benign.byBlock
            harmfulCount = harmful.rows; benignCount = benign.rows; dim = harmful.dim
        }
        public init(harmful: [Int: [Float]], benign: [Int: [Float]], harmfulCount: Int, benignCount: Int, dim: Int) {
            self.harmful = harmful; self.benign = benign
            self.harmfulCount = harmfulCount; self.benignCount = benignCount; self.dim = dim
        }
    }

    /// The fitted score at one block: everything needed to score new rows.
    public struct Direction: Sendable, Codable, Equatable {
        public var block: Int
        /// Unit direction (dim) and the benign reference mean it is centred on (dim).
        public var direction: [Float]
        public var benignMean: [Float]
        /// Cross-validated separability of the references at this block.
        public var cvAUROC: Double
        public var cvSeparation: Double
        /// Held-out reference score statistics (mean, sd) and the calibrated threshold.
        public var benignMeanScore: Double, benignSD: Double, harmfulMeanScore: Double, harmfulSD: Double
        public var threshold: Float

        /// Scores of `rows` rows of `x` (row-major, dim columns).
        public func scores(_ x: [Float], rows: Int) -> [Float] {
            let d = direction.count
            precondition(x.count == rows * d, "guided scores: \(x.count) values for \(rows) rows of \(d)")
            var c: Float = 0
            for j in 0 ..< d { c += benignMean[j] * direction[j] }
            var out = [Float](repeating: 0, count: rows)
            x.withUnsafeBufferPointer { xp in
                direction.withUnsafeBufferPointer { v in
                    for i in 0 ..< rows {
                        let r = xp.baseAddress! + i * d
                        var s: Float = 0
                        for j in 0 ..< d { s += r[j] * v[j] }
                        out[i] = s - c
                    }
                }
            }
            return out
        }
    }

    public struct Options: Sendable {
        public var folds = 5
        public var calibration: Calibration = .balanced
        /// nil: d = mean difference (the score). λ in (0, 1]: the regularised discriminant
        /// w = ((1-λ)·S_w + λ·(tr S_w / dim)·I)⁻¹ d, S_w the pooled within-class covariance of the
        /// references (λ = 1 is the mean difference again).
        public var shrinkage: Double? = nil
        /// Rounds of adaptation to the pool (0: the reference direction as it is). Each round refits the
        /// direction on the references plus the pool's own confident rows, pseudo-labelled by the
        /// current score: harmful above `adaptHigh`, benign below `adaptLow` (both in sd of the held-out
        /// benign reference scores above their mean), at most `adaptMaxRows` of each (an even stride).
        public var adaptRounds = 0
        public var adaptHigh = 3.090232306167813  // z(0.999)
        public var adaptLow = 1.0
        public var adaptMaxRows = 8192
        /// Pool rows the pseudo-labels are drawn from, at most (an even stride over the pool; bounds the
        /// memory of `saft fit`, which gathers them from the shards).
        public var adaptPoolRows = 65_536
        public init() {}
    }

    /// Fits every block the references cover and returns them best first (the first is chosen).
    public static func fit(_ refs: References, options: Options = Options()) throws -> [Direction] {
        guard refs.harmfulCount >= 2, refs.benignCount >= 2 else {
            throw DatasetError("guided SAFT needs at least 2 harmful and 2 benign reference prompts (got \(refs.harmfulCount) and \(refs.benignCount))")
        }
        let blocks = refs.harmful.keys.sorted()
        guard !blocks.isEmpty, blocks.allSatisfy({ refs.benign[$0] != nil }) else {
            throw DatasetError("guided SAFT: harmful and benign references must be embedded at the same blocks")
        }
        let fits = try blocks.map { try fitBlock($0, refs, options) }
        // Best cross-validated AUROC in steps of 0.002 (it saturates); ties go to the larger separation.
        func key(_ f: Direction) -> (Int, Double) { (Int((f.cvAUROC / 0.002).rounded(.down)), f.cvSeparation) }
        return fits.sorted { key($0) > key($1) }
    }

    /// One block's direction, cross-validated on the references. `extra` rows (pseudo-labelled pool
    /// rows, `adapt`) join the training side of every fold and the final fit, never the held-out side.
    static func fitBlock(_ block: Int, _ refs: References, _ options: Options,
                         extra: (harmful: [Float], benign: [Float]) = ([], [])) throws -> Direction {
        let d = refs.dim
        let nh = refs.harmfulCount, nb = refs.benignCount, eh = extra.harmful.count / d, eb = extra.benign.count / d
        let h = refs.harmful[block]! + extra.harmful, b = refs.benign[block]! + extra.benign
        let folds = max(2, min(options.folds, refs.harmfulCount, refs.benignCount))
        // Held-out scores: fold f holds rows i with i % folds == f (references are listed by category,
        // so every fold sees every category).
        var heldH = [Double](repeating: 0, count: refs.harmfulCount), heldB = [Double](repeating: 0, count: refs.benignCount)
        for f in 0 ..< folds {
            let trainH = (0 ..< refs.harmfulCount).filter { $0 % folds != f } + Array(nh ..< nh + eh)
            let trainB = (0 ..< refs.benignCount).filter { $0 % folds != f } + Array(nb ..< nb + eb)
            let dir = try direction(h, trainH, b, trainB, dim: d, shrinkage: options.shrinkage)
            for i in stride(from: f, to: refs.harmfulCount, by: folds) { heldH[i] = dir.score(h, row: i) }
            for i in stride(from: f, to: refs.benignCount, by: folds) { heldB[i] = dir.score(b, row: i) }
        }
        let labels = [Bool](repeating: true, count: heldH.count) + [Bool](repeating: false, count: heldB.count)
        let auroc = RankingMetrics.auroc(scores: (heldH + heldB).map(Float.init), labels: labels) ?? 0.5
        let (mh, sh) = meanSD(heldH), (mb, sb) = meanSD(heldB)
        let separation = (mh - mb) / max(((sh * sh + sb * sb) / 2).squareRoot(), 1e-12)
        let tau: Double
        switch options.calibration {
        case .balanced:
            tau = (mb * sh + mh * sb) / max(sb + sh, 1e-12)
        case .benignFalsePositiveRate(let fpr):
            guard fpr > 0 && fpr < 0.5 else { throw DatasetError("benign false-positive rate \(fpr) must be in (0, 0.5)") }
            tau = mb + normalQuantile(1 - fpr) * sb
        }
        let all = try direction(h, Array(0 ..< nh + eh), b, Array(0 ..< nb + eb), dim: d, shrinkage: options.shrinkage)
        return Direction(block: block, direction: all.unit, benignMean: all.benignMean, cvAUROC: auroc, cvSeparation: separation,
                         benignMeanScore: mb, benignSD: sb, harmfulMeanScore: mh, harmfulSD: sh, threshold: Float(tau))
    }

    struct RawDirection {
        var unit: [Float], benignMean: [Float]
        func score(_ x: [Float], row: Int) -> Double {
            let d = unit.count
            var s = 0.0
            for j in 0 ..< d { s += Double(x[row * d + j] - benignMean[j]) * Double(unit[j]) }
            return s
        }
    }

    /// d = mean(h[rowsH]) - mean(b[rowsB]) in Double (or the regularised discriminant), normalised.
    static func direction(_ h: [Float], _ rowsH: [Int], _ b: [Float], _ rowsB: [Int], dim d: Int,
                          shrinkage: Double? = nil) throws -> RawDirection {
        var mh = [Double](repeating: 0, count: d), mb = [Double](repeating: 0, count: d)
        for i in rowsH { for j in 0 ..< d { mh[j] += Double(h[i * d + j]) } }
        for i in rowsB { for j in 0 ..< d { mb[j] += Double(b[i * d + j]) } }
        for j in 0 ..< d { mh[j] /= Double(rowsH.count); mb[j] /= Double(rowsB.count) }
        var diff = (0 ..< d).map { mh[$0] - mb[$0] }
        if let lambda = shrinkage, lambda < 1 {
            guard lambda > 0 else { throw DatasetError("shrinkage \(lambda) must be in (0, 1]") }
            // Pooled within-class scatter: the class-centred rows' Gram matrix through the GEMM-based
            // moments kernel (Float products, Double across row blocks), so that thousands of
            // pseudo-labelled pool rows (`adapt`) cost a GEMM, not n·d²/2 scalar steps.
            var centred = [Float](repeating: 0, count: (rowsH.count + rowsB.count) * d), r = 0
            for (x, rows, mu) in [(h, rowsH, mh), (b, rowsB, mb)] {
                for i in rows {
                    for j in 0 ..< d { centred[r * d + j] = Float(Double(x[i * d + j]) - mu[j]) }
                    r += 1
                }
            }
            var s = centred.withUnsafeBufferPointer { p in
                CovarianceStats(MatrixRows(p.baseAddress!, rows: r, cols: d)).gram
            }
            let n = Double(r)
            var trace = 0.0
            for a in 0 ..< d { trace += s[a * d + a] / n }
            for a in 0 ..< d {
                for c in a ..< d {
                    let v = (1 - lambda) * s[a * d + c] / n + (a == c ? lambda * trace / Double(d) : 0)
                    s[a * d + c] = v; s[c * d + a] = v
                }
            }
            diff = try choleskySolve(s, diff, dim: d)
        }
        let norm = max(diff.map { $0 * $0 }.reduce(0, +).squareRoot(), 1e-30)
        return RawDirection(unit: diff.map { Float($0 / norm) }, benignMean: mb.map(Float.init))
    }

    /// Solves A x = b for symmetric positive definite A (d x d, row-major).
    public static func choleskySolve(_ a: [Double], _ b: [Double], dim d: Int) throws -> [Double] {
        guard let x = Cholesky.solve(a, b, n: d) else {
            throw DatasetError("discriminant: covariance is not positive definite (raise the shrinkage)")
        }
        return x
    }

    static func meanSD(_ x: [Double]) -> (Double, Double) {
        let m = x.reduce(0, +) / Double(x.count)
        let v = x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(x.count - 1, 1))
        return (m, v.squareRoot())
    }

    /// Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1)
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let e = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let pl = 0.02425
        if p < pl {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((e[0] * q + e[1]) * q + e[2]) * q + e[3]) * q + 1)
        }
        if p > 1 - pl { return -normalQuantile(1 - p) }
        let q = p - 0.5, r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }

    /// The result of filtering a pool.
    public struct Result: Sendable {
        public var method: String
        public var block: Int
        public var scores: [Float]
        public var threshold: Float
        public var removed: [Bool]
        public var thresholdRule: String
        public var fits: [Direction]
        /// The direction that scored the pool (the chosen block's, adapted when asked).
        public var direction: Direction
        /// Per adaptation round: pool rows pseudo-labelled harmful and benign (before the row cap).
        public var adaptation: [(harmful: Int, benign: Int)] = []
        public var warnings: [String]
        public var removedCount: Int { removed.filter { $0 }.count }
    }

    /// Adapts `start` to the pool (`Options.adaptRounds`): each round pseudo-labels the pool's
    /// confident rows with the current score and refits on references plus those rows; the threshold
    /// is calibrated again on held-out reference scores. Uses the pool's embeddings only (no labels).
    public static func adapt(_ start: Direction, references refs: References, pool x: [Float], rows: Int,
                             options: Options) throws -> (Direction, [(harmful: Int, benign: Int)]) {
        let d = refs.dim
        var current = start, counts: [(harmful: Int, benign: Int)] = []
        for _ in 0 ..< options.adaptRounds {
            let z = current.scores(x, rows: rows).map { (Double($0) - current.benignMeanScore) / max(current.benignSD, 1e-12) }
            let hi = z.indices.filter { z[$0] > options.adaptHigh }, lo = z.indices.filter { z[$0] < options.adaptLow }
            counts.append((hi.count, lo.count))
            func take(_ idx: [Int]) -> [Float] {
                let step = max(1, (idx.count + options.adaptMaxRows - 1) / options.adaptMaxRows)
                var out: [Float] = []
                out.reserveCapacity(min(idx.count, options.adaptMaxRows) * d)
                for k in stride(from: 0, to: idx.count, by: step) { out += x[idx[k] * d ..< (idx[k] + 1) * d] }
                return out
            }
            current = try fitBlock(start.block, refs, options, extra: (take(hi), take(lo)))
        }
        return (current, counts)
    }

    /// The pool rows adaptation reads: every row, or an even stride of `Options.adaptPoolRows` of them.
    public static func adaptationRows(_ n: Int, options: Options) -> [Int] {
        Array(stride(from: 0, to: n, by: max(1, (n + options.adaptPoolRows - 1) / max(options.adaptPoolRows, 1))))
    }

    /// Scores the pool at the chosen block (the best of `fits` the pool was embedded at), adapting the
    /// direction to the pool first when `adapt` gives the references and `Options.adaptRounds > 0`.
    public static func run(pool: Embeddings, fits: [Direction], calibration: Calibration,
                           adapt: (references: References, options: Options)? = nil) throws -> Result {
        guard let chosen = fits.first(where: { pool.byBlock[$0.block] != nil }) else {
            throw DatasetError("guided SAFT: the pool was not embedded at any reference block")
        }
        var best = chosen, rounds: [(harmful: Int, benign: Int)] = []
        if let adapt, adapt.options.adaptRounds > 0 {
            let x = pool.byBlock[chosen.block]!, d = pool.dim, rows = adaptationRows(pool.rows, options: adapt.options)
            let sample = rows.count == pool.rows ? x : rows.flatMap { x[$0 * d ..< ($0 + 1) * d] }
            (best, rounds) = try Self.adapt(chosen, references: adapt.references, pool: sample, rows: rows.count, options: adapt.options)
        }
        let s = best.scores(pool.byBlock[best.block]!, rows: pool.rows)
        let removed = s.map { $0 > best.threshold }
        var warnings: [String] = []
        let fraction = Double(removed.filter { $0 }.count) / Double(max(pool.rows, 1))
        if fraction > 0.5 {
            warnings.append(String(format: "%.0f%% of the rows score as harmful: the pool is mostly harmful (guided SAFT still filters it; check the data)", fraction * 100))
        }
        if chosen.cvAUROC < 0.9 {
            warnings.append(String(format: "the references separate poorly at block %d (cross-validated AUROC %.3f): scores may be unreliable", chosen.block, chosen.cvAUROC))
        }
        var rule = String(format: "guided: block %d by cross-validated reference AUROC %.4f (separation %.2f sd)", chosen.block, chosen.cvAUROC, chosen.cvSeparation)
        if !rounds.isEmpty {
            rule += "; adapted to the pool in \(rounds.count) rounds (pool rows pseudo-labelled harmful/benign per round: "
                + rounds.map { "\($0.harmful)/\($0.benign)" }.joined(separator: ", ") + ")"
        }
        rule += String(format: "; threshold %@ on held-out reference scores (benign %.3f ± %.3f, harmful %.3f ± %.3f)",
                       calibration.name, best.benignMeanScore, best.benignSD, best.harmfulMeanScore, best.harmfulSD)
        return Result(method: "guided", block: best.block, scores: s, threshold: best.threshold, removed: removed, thresholdRule: rule,
                      fits: fits, direction: best, adaptation: rounds, warnings: warnings)
    }

    /// Combined (`SAFTFilter.combined`): a row goes when the guided score flags it, or when the
    /// subspace score flags it and the guided score is above the benign references' mean. The combined
    /// score is positive exactly for removed rows, in units of each score's own spread.
    public static func combine(guided g: Result, subspace s: SAFT.Result) -> Result {
        let c = SAFTFilter.combined(guided: g.scores, guidedThreshold: g.threshold, guidedMean: Float(g.direction.benignMeanScore),
                                    guidedScale: Float(g.direction.benignSD), subspace: s.scores, subspaceThreshold: s.threshold,
                                    rootScale: SAFTFilter.rootScale(s.scores))
        let removed = c.removed
        var warnings = g.warnings + s.warnings
        if removed.filter({ $0 }).count > removed.count / 2 { warnings.append("more than half of the rows were removed") }
        return Result(method: "combined", block: g.block, scores: c.scores, threshold: 0, removed: removed,
                      thresholdRule: "combined: removed when the guided score (\(g.thresholdRule)) flags the row, or the subspace score at block \(s.block), k \(s.rank) (\(s.thresholdRule)) flags it and its guided score is above the benign references' mean",
                      fits: g.fits, direction: g.direction, adaptation: g.adaptation, warnings: warnings)
    }
}
