import Foundation
import Kernels
import SafetyTuning
import TestSupport
import XCTest

/// Synthetic embeddings: benign rows scattered isotropically, a planted harmful cluster offset along one direction.
func plantedEmbeddings(rows: Int, dim: Int, harmful: Int, offset: Double, seed: UInt64) -> (Embeddings, [Bool]) {
    var rng = SeededRNG(seed: seed)
    var x = [Float](repeating: 0, count: rows * dim)
    let direction = (0 ..< dim).map { _ in rng.normal() }
    let norm = direction.map { $0 * $0 }.reduce(0, +).squareRoot()
    var labels = [Bool](repeating: false, count: rows)
    for i in 0 ..< rows {
        labels[i] = i % (rows / max(harmful, 1)) == 0 && labels.filter { $0 }.count < harmful
        for j in 0 ..< dim {
            x[i * dim + j] = Float(rng.normal() + (labels[i] ? offset * direction[j] / norm : 0))
        }
    }
    return (Embeddings(rows: rows, dim: dim, byBlock: [5: x], position: .lastPromptToken, truncated: 0, tokens: 0, seconds: 0), labels)
}

final class SAFTTests: XCTestCase {
    func testFilterRemovesPlantedClusterLabelFree() throws {
        let (e, labels) = plantedEmbeddings(rows: 400, dim: 24, harmful: 40, offset: 12, seed: 1)
        var options = SAFT.Options()
        options.rank = 1
        let r = try SAFT.run(e, policy: .automatic, options: options)
        let q = RemovalQuality(scores: r.scores, removed: r.removed, labels: labels)
        XCTAssertGreaterThan(q.auroc!, 0.99)
        XCTAssertGreaterThanOrEqual(q.recall, 0.95, r.thresholdRule)
        XCTAssertLessThanOrEqual(q.benignRemovedFraction, 0.03, r.thresholdRule)
        XCTAssertEqual(r.policy, "automatic")
    }

    func testAutomaticRuleRemovesAlmostNothingFromACleanPool() throws {
        let (e, _) = plantedEmbeddings(rows: 500, dim: 16, harmful: 0, offset: 0, seed: 2)
        let r = try SAFT.run(e, policy: .automatic)
        XCTAssertLessThanOrEqual(r.removedCount, 10, r.thresholdRule)
    }

    func testValidationPicksTheRankThatSeparates() throws {
        // A benign nuisance direction dominates; the harmful offset is second: k = 2 is needed.
        var rng = SeededRNG(seed: 3)
        let rows = 300, dim = 12
        func make(_ n: Int, harmfulEvery: Int) -> ([Float], [Bool]) {
            var x = [Float](), labels = [Bool]()
            for i in 0 ..< n {
                let h = i % harmfulEvery == 0
                labels.append(h)
                for j in 0 ..< dim {
                    var v = 0.3 * rng.normal()
                    if j == 0 { v += 4 * rng.normal() }
                    if j == 2 && h { v += 10 }
                    x.append(Float(v))
                }
            }
            return (x, labels)
        }
        let (pool, poolLabels) = make(rows, harmfulEvery: 8)
        let (val, valLabels) = make(100, harmfulEvery: 8)
        let e = Embeddings(rows: rows, dim: dim, byBlock: [7: pool], position: .lastPromptToken, truncated: 0, tokens: 0, seconds: 0)
        let r = try SAFT.run(e, policy: .validation(embeddings: [7: val], labels: valLabels))
        XCTAssertEqual(r.rank, 2)
        let q = RemovalQuality(scores: r.scores, removed: r.removed, labels: poolLabels)
        XCTAssertGreaterThan(q.f1, 0.6)
    }

    func testRemoveFractionAndFixedThreshold() throws {
        let (e, _) = plantedEmbeddings(rows: 200, dim: 8, harmful: 20, offset: 10, seed: 4)
        let r = try SAFT.run(e, policy: .removeFraction(0.1))
        XCTAssertEqual(r.removedCount, 20)
        let sorted = r.scores.sorted(by: >)
        let t = try SAFT.run(e, policy: .threshold(sorted[5]))
        XCTAssertEqual(t.removedCount, 5)
        XCTAssertThrowsError(try SAFT.run(e, policy: .removeFraction(1.5)))
    }

    func testScoresMatchTheDefinitionWithTheExactSubspace() throws {
        let (e, _) = plantedEmbeddings(rows: 60, dim: 6, harmful: 6, offset: 5, seed: 5)
        var options = SAFT.Options()
        options.rank = 2
        options.subspace = .exact
        let r = try SAFT.run(e, policy: .threshold(.infinity), options: options)
        // Reference: covariance eigenvectors in Double, s_i = (1/k) Σ_j <x_i - μ, v_j>².
        let x = e.byBlock[5]!.map(Double.init), n = e.rows, d = e.dim
        var mu = [Double](repeating: 0, count: d)
        for i in 0 ..< n { for j in 0 ..< d { mu[j] += x[i * d + j] / Double(n) } }
        var cov = [Double](repeating: 0, count: d * d)
        for i in 0 ..< n { for a in 0 ..< d { for b in 0 ..< d { cov[a * d + b] += (x[i * d + a] - mu[a]) * (x[i * d + b] - mu[b]) } } }
        let (_, vectors) = SymmetricEigen.top(2, of: cov, dimension: d)
        for i in 0 ..< n {
            var s = 0.0
            for j in 0 ..< 2 {
                var p = 0.0
                for t in 0 ..< d { p += (x[i * d + t] - mu[t]) * vectors[j * d + t] }
                s += p * p / 2
            }
            XCTAssertEqual(Double(r.scores[i]), s, accuracy: 1e-4 * max(1, s), "row \(i)")
        }
    }
}

final class DatasetTests: XCTestCase {
    func tmp(_ name: String, _ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "safetune-\(ProcessInfo.processInfo.processIdentifier)-\(name)"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testReadsEveryShapeAndKeepsRecordsVerbatim() throws {
        let lines = [
            #"{"instruction":"Add 2 and 3.","input":"","output":"5","label":"benign"}"#,
            #"{"prompt":"Say hi","response":"hi","label":"harmful"}"#,
            #"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Q"},{"role":"assistant","content":"A"}],"is_safe":true}"#,
        ]
        let d = try Dataset.load(try tmp("a.jsonl", lines.joined(separator: "\n") + "\n\n"))
        XCTAssertEqual(d.count, 3)
        XCTAssertEqual(d.samples.map(\.prompt), ["Add 2 and 3.", "Say hi", "Q"])
        XCTAssertEqual(d.samples.map(\.response), ["5", "hi", "A"])
        XCTAssertEqual(d.samples.map(\.harmful), [false, true, false])
        XCTAssertEqual(d.samples[2].system, "S")
        XCTAssertEqual(String(decoding: d.serialize([2, 0]), as: UTF8.self), lines[2] + "\n" + lines[0] + "\n")
        let arr = try Dataset.load(try tmp("b.json", "[{\"prompt\":\"p\",\"response\":\"r\"}]"))
        XCTAssertEqual(arr.layout, .jsonArray)
        XCTAssertEqual(try JSONSerialization.jsonObject(with: arr.serialize([0])) as? [[String: String]], [["prompt": "p", "response": "r"]])
    }

    func testBadInputsNameTheProblem() throws {
        func message(_ text: String) -> String {
            do { _ = try Dataset.load(try tmp("bad.jsonl", text)); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message("{\"prompt\":\"p\"}\n").contains(":1: no response"))
        XCTAssertTrue(message("{\"prompt\":\"p\",\"response\":\"r\"}\nnot json\n").contains(":2: not a JSON object"))
        XCTAssertTrue(message("{\"prompt\":\"p\",\"response\":\"r\",\"label\":\"maybe\"}").contains("label 'maybe'"))
        XCTAssertTrue(message("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}").contains("last message"))
        let path = NSTemporaryDirectory() + "safetune-badutf8.jsonl"
        try Data([0x7B, 0x22, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Dataset.load(path)) { XCTAssertTrue("\($0)".contains("UTF-8 (first bad byte at offset 2)"), "\($0)") }
        XCTAssertThrowsError(try Dataset.load("/nonexistent/file.jsonl"))
        XCTAssertEqual(try Dataset.load(try tmp("empty.jsonl", "")).count, 0)
    }

    func testDemoDataIsDeterministicAndLabeled() {
        let a = DemoData.generate(rows: 50, harmfulFraction: 0.3, seed: 9)
        XCTAssertEqual(a, DemoData.generate(rows: 50, harmfulFraction: 0.3, seed: 9))
        XCTAssertEqual(a.filter { $0["label"] == "harmful" }.count, 15)
        XCTAssertNotEqual(a, DemoData.generate(rows: 50, harmfulFraction: 0.3, seed: 10))
    }
}
