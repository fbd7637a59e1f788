import Foundation
import Kernels
import Llama
import SafetyTuning
import TestSupport
import XCTest

/// Rows with a dominant benign nuisance (coordinate 0, sd 6: length/topic) and a weaker harm
/// direction (coordinate 3, +5 for harmful rows), noise sd 1: the pool's top singular direction is
/// the nuisance, the references' mean difference is the harm direction. `shifted` rows differ from
/// such references as a real pool does: harmful rows +3 on coordinate 3 and +4 on coordinate 5 (a
/// direction the references do not show), benign rows spread 1.5x wider along coordinate 3.
func nuisanceRows(_ n: Int, harmful: (Int) -> Bool, dim: Int, rng: inout SeededRNG, shifted: Bool = false) -> ([Float], [Bool]) {
    var x = [Float](), labels = [Bool]()
    for i in 0 ..< n {
        let h = harmful(i)
        labels.append(h)
        for j in 0 ..< dim {
            var v = rng.normal()
            if j == 0 { v += 6 * rng.normal() }
            if j == 3 { v = h ? v + (shifted ? 3 : 5) : (shifted ? 1.5 * v : v) }
            if j == 5 && h && shifted { v += 4 }
            x.append(Float(v))
        }
    }
    return (x, labels)
}

func syntheticReferences(dim: Int, count: Int, rng: inout SeededRNG, block: Int = 4) -> GuidedSAFT.References {
    let (h, _) = nuisanceRows(count, harmful: { _ in true }, dim: dim, rng: &rng)
    let (b, _) = nuisanceRows(count, harmful: { _ in false }, dim: dim, rng: &rng)
    return GuidedSAFT.References(harmful: [block: h], benign: [block: b], harmfulCount: count, benignCount: count, dim: dim)
}

final class GuidedSAFTTests: XCTestCase {
    func testGuidedFindsPlantedRowsWhereTheSubspaceDoesNot() throws {
        var rng = SeededRNG(seed: 11)
        let dim = 16, rows = 600
        let (pool, labels) = nuisanceRows(rows, harmful: { $0 % 7 == 0 }, dim: dim, rng: &rng)
        let e = Embeddings(rows: rows, dim: dim, byBlock: [4: pool], position: .lastPromptToken)
        let published = try SAFT.run(e, policy: .automatic)
        let pq = RemovalQuality(scores: published.scores, removed: published.removed, labels: labels)
        XCTAssertLessThan(pq.auroc!, 0.75, "the nuisance should dominate the published score")
        for shrinkage in [nil, 0.3] as [Double?] {
            var o = GuidedSAFT.Options()
            o.shrinkage = shrinkage
            let fits = try GuidedSAFT.fit(syntheticReferences(dim: dim, count: 300, rng: &rng), options: o)
            let g = try GuidedSAFT.run(pool: e, fits: fits, calibration: o.calibration)
            let q = RemovalQuality(scores: g.scores, removed: g.removed, labels: labels)
            XCTAssertGreaterThan(q.auroc!, 0.99, "shrinkage \(String(describing: shrinkage))")
            XCTAssertGreaterThanOrEqual(q.recall, 0.95, g.thresholdRule)
            XCTAssertLessThanOrEqual(q.benignRemovedFraction, 0.03, g.thresholdRule)
            // The direction is the planted one.
            XCTAssertGreaterThan(abs(fits[0].direction[3]), 0.95)
            XCTAssertGreaterThan(fits[0].cvAUROC, 0.99)
        }
    }

    func testBlockChoiceUsesReferencesOnlyAndScoresAreRowWise() throws {
        // Block 2 carries the harm signal, block 9 only noise: the references pick block 2.
        var rng = SeededRNG(seed: 12)
        let dim = 8, n = 60
        let good = syntheticReferences(dim: dim, count: n, rng: &rng, block: 2)
        let noiseH = normalFloats(n * dim, &rng), noiseB = normalFloats(n * dim, &rng)
        let refs = GuidedSAFT.References(harmful: [2: good.harmful[2]!, 9: noiseH], benign: [2: good.benign[2]!, 9: noiseB],
                                         harmfulCount: n, benignCount: n, dim: dim)
        let fits = try GuidedSAFT.fit(refs)
        XCTAssertEqual(fits.map(\.block), [2, 9])
        XCTAssertLessThan(fits[1].cvAUROC, 0.75)
        // Pool labels cannot enter: `Embeddings` has none, and a row's score depends on that row
        // alone (a pool and its reversal score identically, row for row).
        let (pool, _) = nuisanceRows(50, harmful: { $0 % 5 == 0 }, dim: dim, rng: &rng)
        let e = Embeddings(rows: 50, dim: dim, byBlock: [2: pool, 9: pool], position: .lastPromptToken)
        var reversed = [Float]()
        for i in (0 ..< 50).reversed() { reversed += pool[i * dim ..< (i + 1) * dim] }
        let r1 = try GuidedSAFT.run(pool: e, fits: fits, calibration: .balanced)
        let r2 = try GuidedSAFT.run(pool: Embeddings(rows: 50, dim: dim, byBlock: [2: reversed, 9: reversed], position: .lastPromptToken),
                                    fits: fits, calibration: .balanced)
        XCTAssertEqual(r1.scores, r2.scores.reversed())
        XCTAssertEqual(r1.block, 2)
    }

    /// A shifted pool (`nuisanceRows`): the reference direction alone ranks it moderately; adapting
    /// to the pool's confident rows finds the rest without any pool label, and a clean pool of the
    /// same kind still loses little.
    func testAdaptationToThePoolRecoversAShiftedHarmDirection() throws {
        var rng = SeededRNG(seed: 16)
        let dim = 16
        let refs = syntheticReferences(dim: dim, count: 150, rng: &rng)
        var o = GuidedSAFT.Options()
        o.shrinkage = 0.3
        o.calibration = .benignFalsePositiveRate(0.001)
        let fits = try GuidedSAFT.fit(refs, options: o)
        let (pool, labels) = nuisanceRows(1000, harmful: { $0 % 5 == 0 }, dim: dim, rng: &rng, shifted: true)
        let e = Embeddings(rows: 1000, dim: dim, byBlock: [4: pool], position: .lastPromptToken)
        let plain = try GuidedSAFT.run(pool: e, fits: fits, calibration: o.calibration)
        o.adaptRounds = 3
        let adapted = try GuidedSAFT.run(pool: e, fits: fits, calibration: o.calibration, adapt: (refs, o))
        let p = RemovalQuality(scores: plain.scores, removed: plain.removed, labels: labels)
        let a = RemovalQuality(scores: adapted.scores, removed: adapted.removed, labels: labels)
        XCTAssertLessThan(p.auroc!, 0.96)
        XCTAssertGreaterThan(a.auroc!, 0.99)
        XCTAssertGreaterThan(a.recall, p.recall + 0.2, adapted.thresholdRule)
        XCTAssertLessThanOrEqual(a.benignRemovedFraction, 0.03, adapted.thresholdRule)
        XCTAssertEqual(adapted.adaptation.count, 3)
        XCTAssertTrue(adapted.thresholdRule.contains("adapted to the pool in 3 rounds"), adapted.thresholdRule)
        XCTAssertLessThan(abs(plain.direction.direction[5]), 0.2)
        XCTAssertGreaterThan(abs(adapted.direction.direction[5]), 0.35, "the adapted direction leans toward the pool's own harm coordinate")
        XCTAssertEqual(plain.adaptation.count, 0)
        // Zero rounds is the reference direction, exactly.
        o.adaptRounds = 0
        XCTAssertEqual(try GuidedSAFT.run(pool: e, fits: fits, calibration: o.calibration, adapt: (refs, o)).scores, plain.scores)
        // A clean pool of the same kind.
        o.adaptRounds = 3
        let (clean, _) = nuisanceRows(1000, harmful: { _ in false }, dim: dim, rng: &rng, shifted: true)
        let c = try GuidedSAFT.run(pool: Embeddings(rows: 1000, dim: dim, byBlock: [4: clean], position: .lastPromptToken),
                                   fits: fits, calibration: o.calibration, adapt: (refs, o))
        XCTAssertLessThanOrEqual(c.removedCount, 40, c.thresholdRule)
        // The row cap strides evenly over the pool.
        o.adaptPoolRows = 300
        XCTAssertEqual(GuidedSAFT.adaptationRows(1000, options: o), Array(stride(from: 0, to: 1000, by: 4)))
        XCTAssertEqual(GuidedSAFT.adaptationRows(200, options: o), Array(0 ..< 200))
    }

    func testScoreAndThresholdMatchTheDefinition() throws {
        var rng = SeededRNG(seed: 13)
        let dim = 5, n = 20
        let refs = syntheticReferences(dim: dim, count: n, rng: &rng)
        var o = GuidedSAFT.Options()
        o.calibration = .benignFalsePositiveRate(0.05)
        let f = try GuidedSAFT.fit(refs, options: o)[0]
        // Direction: normalised mean difference; benign mean; score = <x - μ_b, d̂>.
        let h = refs.harmful[4]!.map(Double.init), b = refs.benign[4]!.map(Double.init)
        let mh = (0 ..< dim).map { j in (0 ..< n).map { h[$0 * dim + j] }.reduce(0, +) / Double(n) }
        let mb = (0 ..< dim).map { j in (0 ..< n).map { b[$0 * dim + j] }.reduce(0, +) / Double(n) }
        let diff = zip(mh, mb).map { $0 - $1 }, norm = diff.map { $0 * $0 }.reduce(0, +).squareRoot()
        for j in 0 ..< dim {
            XCTAssertEqual(Double(f.direction[j]), diff[j] / norm, accuracy: 1e-6)
            XCTAssertEqual(Double(f.benignMean[j]), mb[j], accuracy: 1e-5)
        }
        let x: [Float] = [1, 2, 3, 4, 5]
        let expected = (0 ..< dim).map { (Double(x[$0]) - mb[$0]) * diff[$0] / norm }.reduce(0, +)
        XCTAssertEqual(Double(f.scores(x, rows: 1)[0]), expected, accuracy: 1e-5)
        XCTAssertEqual(Double(f.threshold), f.benignMeanScore + 1.6448536 * f.benignSD, accuracy: 1e-4)
        XCTAssertEqual(GuidedSAFT.normalQuantile(0.975), 1.959964, accuracy: 1e-6)
        XCTAssertEqual(GuidedSAFT.normalQuantile(0.001), -3.090232, accuracy: 1e-6)
        // The discriminant with λ = 1 is the mean difference; with λ < 1 it solves the shrunk system.
        o.shrinkage = 1
        XCTAssertEqual(try GuidedSAFT.fit(refs, options: o)[0].direction, f.direction)
        let a: [Double] = [4, 1, 0, 1, 3, 1, 0, 1, 2], rhs: [Double] = [1, 2, 3]
        let sol = try GuidedSAFT.choleskySolve(a, rhs, dim: 3)
        for i in 0 ..< 3 { XCTAssertEqual((0 ..< 3).map { a[i * 3 + $0] * sol[$0] }.reduce(0, +), rhs[i], accuracy: 1e-12) }
    }

    func testCleanPoolLosesAlmostNothingAndMajorityIsFilteredWithAWarning() throws {
        var rng = SeededRNG(seed: 14)
        let dim = 16
        let fits = try GuidedSAFT.fit(syntheticReferences(dim: dim, count: 100, rng: &rng))
        let (clean, _) = nuisanceRows(1000, harmful: { _ in false }, dim: dim, rng: &rng)
        let c = try GuidedSAFT.run(pool: Embeddings(rows: 1000, dim: dim, byBlock: [4: clean], position: .lastPromptToken),
                                   fits: fits, calibration: .balanced)
        XCTAssertLessThanOrEqual(c.removedCount, 20, c.thresholdRule)
        XCTAssertTrue(c.warnings.isEmpty)
        let (mostly, labels) = nuisanceRows(400, harmful: { $0 % 10 < 7 }, dim: dim, rng: &rng)
        let m = try GuidedSAFT.run(pool: Embeddings(rows: 400, dim: dim, byBlock: [4: mostly], position: .lastPromptToken),
                                   fits: fits, calibration: .balanced)
        let q = RemovalQuality(scores: m.scores, removed: m.removed, labels: labels)
        XCTAssertGreaterThanOrEqual(q.recall, 0.95)
        XCTAssertLessThanOrEqual(q.benignRemovedFraction, 0.05)
        XCTAssertTrue(m.warnings.contains { $0.contains("mostly harmful") }, "\(m.warnings)")
        // One row is enough for the guided score.
        let one = try GuidedSAFT.run(pool: Embeddings(rows: 1, dim: dim, byBlock: [4: Array(mostly[0 ..< dim])], position: .lastPromptToken),
                                     fits: fits, calibration: .balanced)
        XCTAssertEqual(one.scores.count, 1)
    }

    func testCombinedRemovesWhatEitherScoreFlags() throws {
        var rng = SeededRNG(seed: 15)
        let dim = 16, rows = 400
        let (pool, _) = nuisanceRows(rows, harmful: { $0 % 8 == 0 }, dim: dim, rng: &rng)
        let e = Embeddings(rows: rows, dim: dim, byBlock: [4: pool], position: .lastPromptToken)
        let g = try GuidedSAFT.run(pool: e, fits: try GuidedSAFT.fit(syntheticReferences(dim: dim, count: 60, rng: &rng)), calibration: .balanced)
        let s = try SAFT.run(e, policy: .removeFraction(0.05))
        let c = GuidedSAFT.combine(guided: g, subspace: s)
        // Guided flags, or subspace flags and the guided score is above the benign references' mean.
        let mean = Float(g.direction.benignMeanScore)
        XCTAssertEqual(c.removed, (0 ..< rows).map { g.removed[$0] || (s.removed[$0] && g.scores[$0] > mean) })
        XCTAssertEqual(c.scores.map { $0 > 0 }, c.removed)
        XCTAssertGreaterThan(c.removedCount, g.removedCount)
        let vetoed = (0 ..< rows).filter { s.removed[$0] && !g.removed[$0] && g.scores[$0] <= mean }
        XCTAssertFalse(vetoed.isEmpty, "the nuisance outliers of the published score include benign-looking rows")
        XCTAssertTrue(vetoed.allSatisfy { !c.removed[$0] })
    }

    func testResponseViewRecoversRowsThePromptViewMisses() throws {
        // Prompt view: harmful rows sit at z ~ N(3.5, 1.5) (the guided threshold 3.09 catches about 60%),
        // benign at N(0, 1). Response view: harmful rows carry a planted direction (3 sd) that only
        // shows in the responses, under a dominant nuisance direction. Harmful rows are every 5th: the
        // folds must still train on both classes.
        var rng = SeededRNG(seed: 17)
        let n = 1200, d = 24
        let harmful = (0 ..< n).map { $0 % 5 == 0 }
        let zg = harmful.map { $0 ? 3.5 + 1.5 * rng.normal() : rng.normal() }
        var x = [Float](repeating: 0, count: n * d)
        for i in 0 ..< n {
            for j in 0 ..< d { x[i * d + j] = Float(rng.normal() * (j == 0 ? 6 : 1)) }
            if harmful[i] { x[i * d + 3] += 3 }
        }
        let guidedRemoved = zg.map { $0 > 3.090232306167813 }
        let r = try XCTUnwrap(try ResponseView.score(guidedZ: zg, guidedRemoved: guidedRemoved, response: x, dim: d))
        func recall(_ removed: [Bool]) -> Double { Double((0 ..< n).filter { harmful[$0] && removed[$0] }.count) / Double(n / 5) }
        func benignLoss(_ removed: [Bool]) -> Double { Double((0 ..< n).filter { !harmful[$0] && removed[$0] }.count) / Double(n - n / 5) }
        XCTAssertLessThan(recall(guidedRemoved), 0.7)
        XCTAssertGreaterThan(recall(r.removed), 0.9)
        XCTAssertLessThan(benignLoss(r.removed), 0.03)
        XCTAssertTrue(zip(guidedRemoved, r.removed).allSatisfy { !$0 || $1 }, "every guided removal stays removed")
        XCTAssertEqual(r.pseudoHarmful, guidedRemoved.filter { $0 }.count)
        XCTAssertTrue(r.applied)
        XCTAssertGreaterThan(r.agreement, 0.9)
        // The response-view z-scores alone rank the planted rows well (AUROC from the kernel metrics).
        XCTAssertGreaterThan(RankingMetrics.auroc(scores: r.responseZ.map(Float.init), labels: harmful)!, 0.95)
        // A clean pool: its 40 rows above the guided threshold are benign outliers whose responses share
        // nothing; the view does not confirm them and removes nothing more.
        let cleanZ = (0 ..< n).map { $0 % 30 == 0 ? 4 + rng.normal() : rng.normal() }
        let clean = (0 ..< n * d).map { Float(rng.normal() * ($0 % d == 0 ? 6 : 1)) }
        let cleanRemoved = cleanZ.map { $0 > 3.090232306167813 }
        let c = try XCTUnwrap(try ResponseView.score(guidedZ: cleanZ, guidedRemoved: cleanRemoved, response: clean, dim: d))
        XCTAssertFalse(c.applied)
        XCTAssertLessThan(c.agreement, 0.9)
        XCTAssertEqual(c.removed, cleanRemoved)
        // A pool with too few confidently harmful rows has nothing to learn from.
        XCTAssertNil(try ResponseView.score(guidedZ: zg.map { min($0, 3) }, guidedRemoved: [Bool](repeating: false, count: n),
                                            response: x, dim: d))
    }

    func testReferencePromptsHaveThePromisedCountsAndNoDuplicates() throws {
        let all = ReferencePrompts.builtin
        let harmful = all.filter(\.harmful), benign = all.filter { !$0.harmful }
        XCTAssertGreaterThanOrEqual(harmful.count, 150)
        XCTAssertGreaterThanOrEqual(benign.count, 150)
        let normalised = all.map { $0.prompt.lowercased().trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(Set(normalised).count, all.count, "duplicate reference prompts")
        XCTAssertGreaterThanOrEqual(Set(harmful.map(\.category)).count, 15)
        for required in ["violence", "weapons", "cybercrime", "fraud", "drugs", "selfharm", "hate", "harassment", "minors",
                         "privacy", "misinformation", "terrorism", "animals", "childabuse", "politics"] {
            XCTAssertTrue(harmful.contains { $0.category == required }, required)
        }
        let s = ReferencePrompts.builtinSamples()
        XCTAssertEqual(s.harmful.count, harmful.count)
        XCTAssertTrue(s.benign.allSatisfy { $0.response.isEmpty && $0.harmful == false })
        XCTAssertThrowsError(try ReferencePrompts.parse("{\"kind\":\"maybe\",\"prompt\":\"x\"}", source: "t")) {
            XCTAssertTrue("\($0)".contains("t:1"), "\($0)")
        }
    }

    func testSubspaceFilterOfMergedMomentsEqualsThePublishedScores() throws {
        // The sharded fit's subspace (merged moments, exact) scores rows as SAFT.run with the exact path.
        let (e, _) = plantedEmbeddings(rows: 300, dim: 12, harmful: 30, offset: 8, seed: 16)
        var options = SAFT.Options()
        options.rank = 2
        options.subspace = .exact
        let r = try SAFT.run(e, policy: .automatic, options: options)
        let x = e.byBlock[5]!
        var shards = [CovarianceStats]()
        for range in [0 ..< 70, 70 ..< 71, 71 ..< 300] {
            var s = CovarianceStats(dimension: 12)
            let part = Array(x[range.lowerBound * 12 ..< range.upperBound * 12])
            part.withUnsafeBufferPointer { s.accumulate(MatrixRows($0.baseAddress!, rows: range.count, cols: 12)) }
            shards.append(s)
        }
        let pcs = CovarianceStats.merged(shards).principalComponents(2)
        let scores = SAFTFilter.projectionScores(x, rows: 300, mean: pcs.mean, basis: pcs.basis, rank: 2, weights: [1, 1])
        for i in 0 ..< 300 { XCTAssertEqual(scores[i], r.scores[i], accuracy: 1e-3 * max(1, r.scores[i])) }
        XCTAssertEqual(ScoreThreshold.automatic(scores).threshold, r.threshold, accuracy: 1e-3 * max(1, r.threshold))
    }
}
