import Foundation
import Kernels

/// SAFT (Choi, Du, Li 2024; METHODS.md section 2): score samples by their squared projections on
/// the top singular directions of the centred embeddings of the pool, and drop the high scorers.
public enum SAFT {
    public enum Weighting: String, Sendable { case none, sigma }

    /// How the threshold is chosen.
    public enum Policy: Sendable {
        /// The paper's way: (block, k, tau) with the best F1 on labeled validation embeddings.
        case validation(embeddings: [Int: [Float]], labels: [Bool])
        /// Remove the top fraction of scores.
        case removeFraction(Double)
        /// Remove scores above a fixed value.
        case threshold(Float)
        /// Label-free: a two-component mixture on log scores when the scores separate, else a robust
        /// outlier rule (Docs/SAFT.md).
        case automatic
    }

    public struct Options: Sendable {
        /// Ranks tried: one value fixes k; with validation, the best in 1...maxRank.
        public var rank: Int? = nil
        public var maxRank = 4
        public var weighting: Weighting = .none
        public var subspace: PrincipalSubspace.Choice = .automatic
        public var seed: UInt64 = 0
        public var workers: Int? = nil
        public init() {}
    }

    public struct Result: Sendable {
        public var block: Int
        public var rank: Int
        public var scores: [Float]
        public var threshold: Float
        public var removed: [Bool]
        /// How the threshold was chosen, in words, and the policy name for reports.
        public var thresholdRule: String
        public var policy: String
        public var singularValues: [Double]
        public var subspaceMethod: String
        public var validationF1: Double?
        public var warnings: [String]
        public var removedCount: Int { removed.filter { $0 }.count }
    }

    /// Fits the subspace of every embedded block and filters by `policy`.
    public static func run(_ e: Embeddings, policy: Policy, options: Options = Options()) throws -> Result {
        guard e.rows >= 2 else { throw DatasetError("SAFT needs at least 2 samples, got \(e.rows)") }
        let blocks = e.byBlock.keys.sorted()
        let maxK = min(options.rank ?? options.maxRank, e.dim, e.rows - 1)
        guard maxK >= 1 else { throw DatasetError("rank must be at least 1") }
        var warnings: [String] = []
        struct Fit { var block: Int; var pcs: PrincipalComponents }
        var fits: [Fit] = []
        for b in blocks {
            let x = e.byBlock[b]!
            let pcs = x.withUnsafeBufferPointer { p in
                PrincipalSubspace.compute(MatrixRows(p.baseAddress!, rows: e.rows, cols: e.dim), rank: maxK,
                                          choice: options.subspace, seed: options.seed, workers: options.workers)
            }
            fits.append(Fit(block: b, pcs: pcs))
        }
        func scores(_ fit: Fit, _ x: [Float], rows: Int, k: Int) -> [Float] {
            var out = [Float](repeating: 0, count: rows)
            let w = (0 ..< k).map { options.weighting == .sigma ? Float(fit.pcs.singularValues[$0]) : 1 }
            x.withUnsafeBufferPointer { xp in
                fit.pcs.mean.withUnsafeBufferPointer { mu in
                    fit.pcs.basis.withUnsafeBufferPointer { v in
                        w.withUnsafeBufferPointer { wp in
                            out.withUnsafeMutableBufferPointer { o in
                                ProjectionScore.score(x: xp.baseAddress!, rows: rows, cols: e.dim, ldx: e.dim, mean: mu.baseAddress!,
                                                      basis: v.baseAddress!, rank: k, weights: wp.baseAddress!,
                                                      squared: o.baseAddress!, workers: options.workers)
                            }
                        }
                    }
                }
            }
            return out
        }
        var chosen = fits[0], k = maxK, threshold: Float = .infinity, rule = "", policyName = "", f1: Double?
        switch policy {
        case .validation(let embeddings, let labels):
            let n = labels.count
            guard n >= 2, labels.contains(true), labels.contains(false) else {
                throw DatasetError("the validation set needs both harmful and benign labeled rows (got \(n) rows)")
            }
            var best = (f1: -1.0, fit: fits[0], k: 1, tau: Float.infinity)
            let ranks = options.rank.map { [$0] } ?? Array(1 ... maxK)
            for fit in fits {
                guard let v = embeddings[fit.block], v.count == n * e.dim else {
                    throw DatasetError("validation embeddings for block \(fit.block) are missing or have the wrong size")
                }
                for kk in ranks {
                    let s = scores(fit, v, rows: n, k: kk)
                    // 100 evenly spaced candidates between the min and max validation score (S3).
                    let lo = s.min()!, hi = s.max()!
                    for i in 0 ..< 100 {
                        let tau = lo + (hi - lo) * Float(i) / 100
                        let f = RankingMetrics.confusion(scores: s, labels: labels, threshold: tau).f1
                        if f > best.f1 { best = (f, fit, kk, tau) }
                    }
                }
            }
            chosen = best.fit; k = best.k; threshold = best.tau; f1 = best.f1
            policyName = "validation"
            rule = String(format: "best validation F1 %.3f over blocks %@, k in %@ and 100 thresholds", best.f1,
                          blocks.map(String.init).joined(separator: ","), ranks.map(String.init).joined(separator: ","))
        case .removeFraction(let f):
            guard f >= 0 && f < 1 else { throw DatasetError("remove fraction \(f) must be in [0, 1)") }
            if fits.count > 1 { warnings.append("several blocks embedded without validation: using block \(fits[0].block)") }
            let s = scores(chosen, chosen.pcs.mean.isEmpty ? [] : e.byBlock[chosen.block]!, rows: e.rows, k: k)
            let removeCount = Int((Double(e.rows) * f).rounded())
            let sorted = s.sorted(by: >)
            threshold = removeCount == 0 ? .infinity : (removeCount >= sorted.count ? -.infinity : sorted[removeCount])
            policyName = "remove-fraction"
            rule = "remove the top \(removeCount) of \(e.rows) scores (fraction \(f))"
        case .threshold(let t):
            threshold = t
            policyName = "threshold"
            rule = "fixed threshold \(t)"
        case .automatic:
            if fits.count > 1 { warnings.append("several blocks embedded without validation: using block \(fits[0].block)") }
            let s = scores(chosen, e.byBlock[chosen.block]!, rows: e.rows, k: k)
            let auto = ScoreThreshold.automatic(s)
            threshold = auto.threshold
            rule = auto.rule
            policyName = "automatic"
            if let w = auto.warning { warnings.append(w) }
        }
        let s = scores(chosen, e.byBlock[chosen.block]!, rows: e.rows, k: k)
        let removed = s.map { $0 > threshold }
        let fraction = Double(removed.filter { $0 }.count) / Double(e.rows)
        if fraction > 0.5 {
            warnings.append(String(format: "%.0f%% of the rows were removed: SAFT assumes harmful rows are a minority and removes benign rows when they are not", fraction * 100))
        }
        return Result(block: chosen.block, rank: k, scores: s, threshold: threshold, removed: removed, thresholdRule: rule,
                      policy: policyName, singularValues: chosen.pcs.singularValues, subspaceMethod: chosen.pcs.method.rawValue,
                      validationF1: f1, warnings: warnings)
    }
}

/// The label-free threshold (Docs/SAFT.md), on r = √score (the RMS projection, in embedding units:
/// half-normal-like for a cluster around the mean, so Gaussian components fit it where log scores
/// would be dominated by a long left tail). A two-component Gaussian mixture is fitted by EM; when
/// its components are well separated and the upper one is a minority, the threshold is where the
/// upper component's posterior reaches 1/2. Otherwise the scores show no distinct cluster and only
/// robust outliers go: r above median + 3.5 · 1.4826 · MAD.
public enum ScoreThreshold {
    public static func automatic(_ scores: [Float]) -> (threshold: Float, rule: String, warning: String?) {
        let x = scores.map { Double(max($0, 0)).squareRoot() }
        let sorted = x.sorted()
        let median = sorted[sorted.count / 2]
        let mad = (x.map { abs($0 - median) }.sorted())[x.count / 2]
        let robust = median + 3.5 * 1.4826 * max(mad, 1e-12)
        let gm = mixture(x)
        if let gm {
            let separation = abs(gm.mu.1 - gm.mu.0) / (0.5 * (gm.sd.0 + gm.sd.1))
            if separation >= 2.5 && gm.w.1 < 0.5 && gm.w.1 * Double(x.count) >= 2 {
                // Solve posterior(upper) = 1/2 between the two means by bisection.
                var lo = gm.mu.0, hi = gm.mu.1
                for _ in 0 ..< 100 {
                    let mid = 0.5 * (lo + hi)
                    if density(mid, gm.w.1, gm.mu.1, gm.sd.1) > density(mid, gm.w.0, gm.mu.0, gm.sd.0) { hi = mid } else { lo = mid }
                }
                let t = 0.5 * (lo + hi)
                return (Float(t * t), String(format: "two-component mixture on root scores (separation %.1f sd, upper weight %.3f): posterior 1/2", separation, gm.w.1), nil)
            }
            if separation >= 2.5 && gm.w.1 >= 0.5 {
                return (Float(robust * robust), "robust outlier rule (median + 3.5 MAD of root scores)",
                        String(format: "the score distribution has a distinct upper cluster holding %.0f%% of the rows: harmful rows may be the majority, which SAFT cannot handle", gm.w.1 * 100))
            }
        }
        return (Float(robust * robust), "robust outlier rule (median + 3.5 MAD of root scores): no distinct high-score cluster", nil)
    }

    static func density(_ x: Double, _ w: Double, _ mu: Double, _ sd: Double) -> Double {
        w * exp(-0.5 * (x - mu) * (x - mu) / (sd * sd)) / sd
    }

    /// EM for two 1-D Gaussians (component 1 has the larger mean), initialised at the quartiles.
    static func mixture(_ x: [Double]) -> (w: (Double, Double), mu: (Double, Double), sd: (Double, Double))? {
        guard x.count >= 8 else { return nil }
        let s = x.sorted()
        var mu = (s[s.count / 4], s[3 * s.count / 4])
        let spread = max(s.last! - s.first!, 1e-9)
        var sd = (spread / 4, spread / 4), w = (0.5, 0.5)
        let floor = spread * 1e-3
        for _ in 0 ..< 200 {
            var n0 = 0.0, n1 = 0.0, s0 = 0.0, s1 = 0.0, q0 = 0.0, q1 = 0.0
            for v in x {
                let a = density(v, w.0, mu.0, sd.0), b = density(v, w.1, mu.1, sd.1)
                let r = a + b > 0 ? b / (a + b) : (v > 0.5 * (mu.0 + mu.1) ? 1 : 0)
                n0 += 1 - r; n1 += r; s0 += (1 - r) * v; s1 += r * v
            }
            guard n0 > 1e-9, n1 > 1e-9 else { return nil }
            let m0 = s0 / n0, m1 = s1 / n1
            for v in x {
                let a = density(v, w.0, mu.0, sd.0), b = density(v, w.1, mu.1, sd.1)
                let r = a + b > 0 ? b / (a + b) : (v > 0.5 * (mu.0 + mu.1) ? 1 : 0)
                q0 += (1 - r) * (v - m0) * (v - m0); q1 += r * (v - m1) * (v - m1)
            }
            let newMu = (m0, m1), newSd = (max((q0 / n0).squareRoot(), floor), max((q1 / n1).squareRoot(), floor))
            let converged = abs(newMu.0 - mu.0) + abs(newMu.1 - mu.1) < 1e-9 * spread
            mu = newMu; sd = newSd; w = (n0 / Double(x.count), n1 / Double(x.count))
            if converged { break }
        }
        if mu.0 > mu.1 { return ((w.1, w.0), (mu.1, mu.0), (sd.1, sd.0)) }
        return (w, mu, sd)
    }
}
