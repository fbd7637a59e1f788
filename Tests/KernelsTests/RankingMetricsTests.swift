import Kernels
import XCTest

final class RankingMetricsTests: XCTestCase {
    func testAUROCHandComputedWithTies() {
        XCTAssertEqual(RankingMetrics.auroc(scores: [0.1, 0.4, 0.35, 0.8], labels: [false, false, true, true])!, 0.75, accuracy: 1e-15)
        // Positives {1, 3}, negatives {1, 2}: pairs 0.5 (tie) + 0 + 1 + 1 = 2.5 of 4.
        XCTAssertEqual(RankingMetrics.auroc(scores: [1, 1, 2, 3], labels: [false, true, false, true])!, 0.625, accuracy: 1e-15)
        XCTAssertEqual(RankingMetrics.auroc(scores: [5, 5, 5, 5], labels: [true, false, true, false])!, 0.5, accuracy: 1e-15)
        XCTAssertEqual(RankingMetrics.auroc(scores: [3, 2, 1], labels: [false, true, true])!, 0.0, accuracy: 1e-15)
        XCTAssertEqual(RankingMetrics.auroc(scores: [1, 2, 3], labels: [false, true, true])!, 1.0, accuracy: 1e-15)
        // Positives {2, 2, 4}, negatives {2, 3}: (2v2 .5, 2v3 0) x2 + (4v2 1, 4v3 1) = 3 of 6.
        XCTAssertEqual(RankingMetrics.auroc(scores: [2, 2, 4, 2, 3], labels: [true, true, true, false, false])!, 0.5, accuracy: 1e-15)
        XCTAssertNil(RankingMetrics.auroc(scores: [1, 2], labels: [true, true]))
        XCTAssertNil(RankingMetrics.auroc(scores: [], labels: []))
    }

    func testConfusionPrecisionRecallF1AtThreshold() {
        let s: [Float] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
        let y = [true, false, true, true, false, false]
        let c = RankingMetrics.confusion(scores: s, labels: y, threshold: 0.55)
        XCTAssertEqual(c, RankingMetrics.Confusion(truePositives: 3, falsePositives: 1, trueNegatives: 2, falseNegatives: 0))
        XCTAssertEqual(c.precision, 0.75); XCTAssertEqual(c.recall, 1); XCTAssertEqual(c.f1, 6.0 / 7.0, accuracy: 1e-15)
        // A threshold equal to a score: strictly greater is positive.
        let e = RankingMetrics.confusion(scores: s, labels: y, threshold: 0.6)
        XCTAssertEqual(e.truePositives, 2); XCTAssertEqual(e.falsePositives, 1); XCTAssertEqual(e.falseNegatives, 1)
        XCTAssertEqual(e.f1, 2.0 / 3.0, accuracy: 1e-15)
        // Nothing predicted: precision and F1 are 0, not NaN.
        let none = RankingMetrics.confusion(scores: s, labels: y, threshold: 1)
        XCTAssertEqual(none.precision, 0); XCTAssertEqual(none.recall, 0); XCTAssertEqual(none.f1, 0)
    }

    func testBestF1ThresholdSearch() {
        let s: [Float] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
        let y = [true, false, true, true, false, false]
        let best = RankingMetrics.bestF1(scores: s, labels: y)!
        XCTAssertEqual(best.threshold, 0.5)
        XCTAssertEqual(best.confusion.f1, 6.0 / 7.0, accuracy: 1e-15)
        // Ties: predicting everything positive (threshold below the minimum) is best.
        let tied = RankingMetrics.bestF1(scores: [0.5, 0.5, 0.3, 0.3], labels: [true, false, true, false])!
        XCTAssertLessThan(tied.threshold, 0.3)
        XCTAssertEqual(tied.confusion.f1, 4.0 / 6.0, accuracy: 1e-15)
        // SAFT grid: tau_i = 0.4 + 0.5·i/100; the best grid point lies in [0.5, 0.6) (F1 = 6/7).
        let grid = RankingMetrics.bestF1(scores: s, labels: y, candidates: .evenlySpaced(count: 100))!
        XCTAssertEqual(grid.confusion.f1, 6.0 / 7.0, accuracy: 1e-15)
        XCTAssertGreaterThanOrEqual(grid.threshold, 0.5); XCTAssertLessThan(grid.threshold, 0.6)
        // The grid search agrees with a brute-force confusion at every candidate.
        for i in 0 ..< 100 {
            let tau = Float(0.4 + 0.5 * Double(i) / 100)
            XCTAssertLessThanOrEqual(RankingMetrics.confusion(scores: s, labels: y, threshold: tau).f1, grid.confusion.f1)
        }
        let listed = RankingMetrics.bestF1(scores: s, labels: y, candidates: .list([0.85, 0.65]))!
        XCTAssertEqual(listed.threshold, 0.65)
        XCTAssertNil(RankingMetrics.bestF1(scores: [], labels: []))
    }
}
