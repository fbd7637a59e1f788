import Foundation
import Llama
import SafetyTuning
import TestSupport
import XCTest

final class SEALTests: XCTestCase {
    /// Selector loss mean_k w[ids[k]]·l_k in Double, straight from the definition.
    func selectorLoss(_ omega: [Double], ids: [Int], losses: [Double], kind: DataSelector.Parameterisation) -> Double {
        let N = Double(omega.count)
        let w: [Double]
        switch kind {
        case .softmax:
            let m = omega.max()!, e = omega.map { exp($0 - m) }, z = e.reduce(0, +)
            w = e.map { N * $0 / z }
        case .sigmoid:
            w = omega.map { 2 / (1 + exp(-$0)) }
        }
        return zip(ids, losses).reduce(0) { $0 + w[$1.0] * $1.1 } / Double(ids.count)
    }

    /// The dense gradient (every logit, out-of-batch ones too, a repeated id counted twice) equals
    /// finite differences of the selector loss and the closed form of METHODS.md 4.6.
    func testSelectorGradientMatchesTheDenseFormula() {
        var rng = SeededRNG(seed: 5)
        for kind in DataSelector.Parameterisation.allCases {
            var sel = DataSelector(count: 12, kind: kind)
            sel.logits = (0 ..< 12).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let ids = [3, 7, 3, 0, 11], losses = [2.5, 0.4, 1.1, 3.0, 0.9]
            let g = sel.gradient(ids: ids, losses: losses)
            let omega = sel.logits.map(Double.init)
            let num = numericalGradient(of: { self.selectorLoss($0, ids: ids, losses: losses, kind: kind) }, at: omega, h: 1e-6, precise: true)
            assertClose(g, num, rtol: 1e-4, atol: 1e-6, "\(kind) selector gradient vs finite differences")
            XCTAssertEqual(sel.loss(ids: ids, losses: losses), selectorLoss(omega, ids: ids, losses: losses, kind: kind), accuracy: 1e-5)
            if kind == .softmax {
                // (N/B)·s_m·(Σ_{k: id = m} l_k − Σ_k s_{id_k} l_k)
                let m = omega.max()!, e = omega.map { exp($0 - m) }, z = e.reduce(0, +), s = e.map { $0 / z }
                let mix = zip(ids, losses).reduce(0) { $0 + s[$1.0] * $1.1 }
                let closed = (0 ..< 12).map { r in 12.0 / 5 * s[r] * (zip(ids, losses).filter { $0.0 == r }.reduce(0) { $0 + $1.1 } - mix) }
                assertClose(g, closed, rtol: 1e-5, atol: 1e-7, "closed form")
                XCTAssertTrue(g.allSatisfy { $0 != 0 }, "softmax gradient must reach out-of-batch rows")
            } else {
                XCTAssertEqual(g.enumerated().filter { $0.element != 0 }.map(\.offset), [0, 3, 7, 11])
            }
        }
    }

    func testKeepFractionTakesTheTopRowsInInputOrder() throws {
        var sel = DataSelector(count: 6)
        sel.logits = [0.5, 2, -1, 2, 0.1, 3]
        XCTAssertEqual(sel.ranking(), [5, 1, 3, 0, 4, 2])
        XCTAssertEqual(try sel.keep(fraction: 0.5), [1, 3, 5])
        XCTAssertEqual(try sel.keep(fraction: 1), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try sel.keep(fraction: 0.34), [5, 1].sorted())
        XCTAssertThrowsError(try sel.keep(fraction: 0))
        XCTAssertThrowsError(try sel.keep(fraction: 1.5))
        XCTAssertThrowsError(try sel.keep(fraction: 0.1), "floor(0.6) = 0 rows")
    }

    /// A toy mixture: the safe set and half of the fine-tuning rows answer with one fixed pattern,
    /// the other half with random tokens. The model learns the pattern from the safe set, the noise
    /// rows keep a high loss, and the selector ranks every noise row below every pattern row.
    func toyRun(_ optimizer: SEALOptions.SelectorOptimizer, algorithm: SEALOptions.Algorithm = .penalty,
                safeBatchSize: Int? = nil) throws -> (DataSelector, [Bool], SEALSelection) {
        let random = try methodTinyModel(seed: 9)
        let V = Int32(random.config.vocabSize)
        var rng = SeededRNG(seed: 17)
        let pattern: [Int32] = [5, 9, 2, 30, 11, 7]
        func row(noise: Bool) -> TrainingSample {
            let prompt = (0 ..< 3).map { _ in Int32.random(in: 0 ..< V, using: &rng) }
            return TrainingSample(prompt: prompt, response: noise ? (0 ..< 6).map { _ in Int32.random(in: 0 ..< V, using: &rng) } : pattern)
        }
        let safe = (0 ..< 32).map { _ in row(noise: false) }
        let isNoise = (0 ..< 32).map { $0 % 2 == 1 }
        let fine = isNoise.map { row(noise: $0) }
        let lora = LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .o, .down])
        // The "aligned" starting model: the random model fine-tuned on safe-style rows and merged
        // (SEAL starts from a model that already fits its safe set).
        let align = try LoRAAdapter(base: random.weights, config: lora, seed: 2)
        var t = TrainerOptions()
        t.learningRate = 3e-2
        t.batchSize = 8
        t.maxSteps = 40
        t.logEvery = 0
        try Trainer(engine: TrainingEngine(model: random, adapter: align), trainSet: (0 ..< 32).map { _ in row(noise: false) }, options: t).run()
        let model = LlamaModel(weights: try align.merged(into: random.weights))
        let adapter = try LoRAAdapter(base: model.weights, config: lora, seed: 1)
        var o = SEALOptions()
        o.batchSize = 8
        o.safeBatchSize = safeBatchSize
        o.epochs = 3
        o.learningRate = 1e-2
        o.selectorOptimizer = optimizer
        o.selectorLearningRate = optimizer == .sgd ? 0.5 : 5e-3
        o.selectorMaxGradNorm = optimizer == .adam ? 10 : nil
        o.algorithm = algorithm
        o.logEvery = 0
        let aux = algorithm == .auxiliary ? try LoRAAdapter(base: model.weights, config: lora, seed: 1) : nil
        let s = try SEALSelection(engine: TrainingEngine(model: model, adapter: adapter), safeSet: safe, fineTuneSet: fine, options: o,
                                  auxiliaryAdapter: aux)
        return (try s.run(), isNoise, s)
    }

    func testSelectorRanksNoiseRowsLast() throws {
        let (sel, isNoise, s) = try toyRun(.sgd)
        XCTAssertEqual(s.history.count, 12)
        XCTAssertEqual(s.history.map(\.upperWeight).first, 1)
        XCTAssertEqual(s.history.last!.upperWeight, 0.94, accuracy: 1e-12)

        let bottom = Set(sel.ranking().suffix(16))
        XCTAssertEqual(bottom, Set(isNoise.indices.filter { isNoise[$0] }), "logits \(sel.logits)")
        XCTAssertEqual(try sel.keep(fraction: 0.5), isNoise.indices.filter { !isNoise[$0] })
    }

    /// Algorithm 1 (auxiliary adapter) runs, trains its own adapter and reports its loss.
    func testAuxiliaryAlgorithmRuns() throws {
        let (sel, _, s) = try toyRun(.sgd, algorithm: .auxiliary)
        XCTAssertNotNil(s.history.last!.auxiliaryLoss)
        XCTAssertTrue(sel.logits.contains { $0 != sel.logits[0] })
        XCTAssertNotEqual(s.auxiliaryEngine!.adapter!.buffer.snapshot(), s.adapter.buffer.snapshot())
    }
}

extension SEALTests {
    /// The code's Adam selector on the same toy: its ranking carries visit-timing noise
    /// (METHODS.md 4.9.1), but noise rows still sit below pattern rows on average.
    func testAdamSelectorPushesNoiseRowsDown() throws {
        let (sel, isNoise, _) = try toyRun(.adam)
        let noise = isNoise.indices.filter { isNoise[$0] }.map { Double(sel.logits[$0]) }
        let clean = isNoise.indices.filter { !isNoise[$0] }.map { Double(sel.logits[$0]) }
        var wins = 0.0
        for c in clean { for n in noise { wins += c > n ? 1 : c == n ? 0.5 : 0 } }
        XCTAssertGreaterThan(wins / Double(clean.count * noise.count), 0.9, "AUROC of pattern over noise rows, logits \(sel.logits)")
    }
}

extension SEALTests {
    /// A safe batch smaller than the fine-tuning batch: an epoch still visits every fine-tuning row
    /// (N/B steps when the safe set is long enough), each step draws the smaller safe batch, and
    /// the noise rows still rank last.
    func testSmallerSafeBatchVisitsEveryRow() throws {
        let (sel, isNoise, s) = try toyRun(.sgd, safeBatchSize: 2)
        XCTAssertEqual(s.batchSize, 8)
        XCTAssertEqual(s.safeBatchSize, 2)
        XCTAssertEqual(s.stepsPerEpoch, 4)
        XCTAssertEqual(s.history.count, 12)
        XCTAssertEqual(s.history.first!.tokens, (2 + 8) * 9, "2 safe + 8 fine-tuning rows of 9 tokens")
        let bottom = Set(sel.ranking().suffix(16))
        XCTAssertEqual(bottom, Set(isNoise.indices.filter { isNoise[$0] }), "logits \(sel.logits)")
    }
}
