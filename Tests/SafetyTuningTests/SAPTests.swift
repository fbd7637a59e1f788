import Foundation
import Kernels
import Llama
import SafetyTuning
import TestSupport
import XCTest

/// A tiny random Llama (2 blocks, GQA) for method tests; the Double reference runs it in milliseconds.
func methodTinyModel(seed: UInt64 = 3) throws -> LlamaModel {
    let w = try LlamaWeights(config: LlamaConfig(vocabSize: 37, hiddenSize: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 4,
                                                 ffnSize: 24, rmsEps: 1e-5, ropeBase: 10_000, contextLength: 64, tiedEmbeddings: true))
    w.randomize(seed: seed)
    return LlamaModel(weights: w)
}

/// A random sample: `prompt` untrained tokens then `response` trained ones.
func randomSample(_ rng: inout SeededRNG, vocab: Int, prompt: Int, response: Int) -> TrainingSample {
    TrainingSample(prompt: (0 ..< prompt).map { _ in Int32.random(in: 0 ..< Int32(vocab), using: &rng) },
                   response: (0 ..< response).map { _ in Int32.random(in: 0 ..< Int32(vocab), using: &rng) })
}

final class SAPTests: XCTestCase {
    struct Fixture {
        var model: LlamaModel
        var adapter: LoRAAdapter
        var engine: TrainingEngine
        var tasks: [TrainingSample]
        var pairs: [(chosen: TrainingSample, rejected: TrainingSample)]
    }

    /// Task set = one batch and triples = one contrastive batch, so every step sees all of them.
    func fixture(seed: UInt64 = 1) throws -> Fixture {
        let model = try methodTinyModel()
        let V = model.config.vocabSize
        let adapter = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), seed: 7)
        var rng = SeededRNG(seed: seed)
        // B != 0 so that A has a gradient from the first step.
        for s in adapter.slots { for i in 0 ..< 2 * s.outDim { adapter.b(s)[i] = Float.random(in: -0.3 ... 0.3, using: &rng) } }
        let tasks = (0 ..< 3).map { i in randomSample(&rng, vocab: V, prompt: 3 + i, response: 4 + i) }
        let pairs = (0 ..< 2).map { i -> (chosen: TrainingSample, rejected: TrainingSample) in
            let prompt = (0 ..< 3 + i).map { _ in Int32.random(in: 0 ..< Int32(V), using: &rng) }
            let c = (0 ..< 4).map { _ in Int32.random(in: 0 ..< Int32(V), using: &rng) }
            let r = (0 ..< 5 - i).map { _ in Int32.random(in: 0 ..< Int32(V), using: &rng) }
            return (TrainingSample(prompt: prompt, response: c), TrainingSample(prompt: prompt, response: r))
        }
        return Fixture(model: model, adapter: adapter, engine: TrainingEngine(model: model, adapter: adapter), tasks: tasks, pairs: pairs)
    }

    func options(order: SAPOptions.Order = .code) -> SAPOptions {
        var o = SAPOptions()
        o.probeLayers = [0, 1]
        o.batchSize = 3
        o.contrastiveBatchSize = 2
        o.learningRate = 1e-2
        o.probeLearningRate = 0.05
        // A radius far above float32 noise, so that h_clean − h_pert is a clean finite difference here.
        o.gradRate = 0.2
        o.temperature = 0.7
        o.maxSteps = 3
        o.order = order
        o.logEvery = 0
        return o
    }

    /// Central differences of f in Double over every coordinate of x.
    func fd(_ x: [Double], h: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
        numericalGradient(of: f, at: x, h: h)
    }

    func norm(_ x: [Double]) -> Double { x.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    /// Step 2 of the fast path (nonzero probe v_1, Adam moments after one step) against the same
    /// step computed from the Double reference with finite-difference gradients.
    func testOneStepMatchesTheDoubleReference() throws {
        let f = try fixture()
        let opts = options()
        let trainer = try SAPTrainer(engine: f.engine, taskSet: f.tasks, pairs: f.pairs, options: opts)
        try trainer.trainStep()
        let probes = try XCTUnwrap(trainer.probes)
        XCTAssertTrue(probes.buffer.values.contains { $0 != 0 }, "step 1 left a zero probe")
        // State before step 2, in Double.
        let theta1 = f.adapter.buffer.snapshot().map(Double.init), v1 = probes.buffer.snapshot().map(Double.init)
        var mW = trainer.weightOptimizer.m.map(Double.init), nW = trainer.weightOptimizer.v.map(Double.init)
        var mV = trainer.probeOptimizer!.m.map(Double.init), nV = trainer.probeOptimizer!.v.map(Double.init)
        trainer.keepDetails = true
        let record = try trainer.trainStep()
        let d = try XCTUnwrap(trainer.lastDetails)

        let w = f.model.weights
        let taskBatch = try TrainingBatch(f.tasks, config: f.model.config)
        let pairBatch = try TrainingBatch(f.pairs.map(\.chosen) + f.pairs.map(\.rejected), config: f.model.config)
        func trainables(_ theta: [Double], _ v: [Double]) -> LlamaReference.Trainables {
            var tr = LlamaReference.Trainables(adapter: f.adapter, probes: probes)
            tr.lora = theta
            tr.probeValues = v
            return tr
        }
        func taskLoss(_ theta: [Double], _ v: [Double]) -> Double {
            let l = LlamaReference.losses(w, batch: taskBatch, trainables: trainables(theta, v))
            return l.reduce(0, +) / Double(taskBatch.targetCount)
        }
        func safetyLoss(_ theta: [Double]) -> Double {
            let sums = taskSums(LlamaReference.losses(w, batch: pairBatch, trainables: trainables(theta, v1)), pairBatch)
            let B = f.pairs.count
            return (0 ..< B).reduce(0.0) { acc, i in
                let dlt = (-sums[i] + sums[B + i]) / opts.temperature
                return acc + log(1 + exp(-dlt)) / Double(B)
            }
        }
        // 1. contrastive gradient, 2. radius, 3. probe gradients at perturbed and clean weights.
        let g = fd(theta1, safetyLoss)
        assertClose(d.safetyGradient, g, rtol: 2e-3, atol: 2e-4 * g.map(abs).max()!, "contrastive gradient")
        XCTAssertEqual(record.safetyLoss!, safetyLoss(theta1), accuracy: 1e-5)
        let eps = opts.gradRate * norm(theta1)
        XCTAssertEqual(Double(d.epsilon), eps, accuracy: 1e-6 * eps)
        let gn = norm(g)
        let thetaPert = zip(theta1, g).map { $0 + eps * $1 / (gn + 1e-8) }
        let hPert = fd(v1) { taskLoss(thetaPert, $0) }, hClean = fd(v1) { taskLoss(theta1, $0) }
        let hScale = hClean.map(abs).max()!
        assertClose(d.probeGradPerturbed, hPert, rtol: 1e-3, atol: 1e-4 * hScale, "probe gradient at theta + eps g_hat")
        assertClose(d.probeGradClean, hClean, rtol: 1e-3, atol: 1e-4 * hScale, "probe gradient at theta")
        let h = zip(hClean, hPert).map { $0 - $1 }
        let fastH = zip(d.probeGradClean, d.probeGradPerturbed).map { Double($0) - Double($1) }
        XCTAssertGreaterThan(norm(h), 1e-3 * hScale, "the perturbation must move the probe gradient for this check to bite")
        assertClose(fastH.map(Float.init), h, rtol: 1e-2, atol: 2e-3 * h.map(abs).max()!, "h = h_clean − h_pert")
        // 4. probe update: v = 0, then AdamW step 2 with the moments of step 1.
        var vExpected = [Double](repeating: 0, count: v1.count)
        AdamW.stepReference(param: &vExpected, grad: h, m: &mV, v: &nV, step: 2, lr: Double(opts.probeLearningRate),
                            beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01)
        assertClose(d.probeAfter, vExpected, rtol: 2e-3, atol: 1e-3 * Double(opts.probeLearningRate), "probe after the update")
        // 5. weight update from the task gradient at (theta_1, v_1).
        let G = fd(theta1) { taskLoss($0, v1) }
        assertClose(d.taskGradient, G, rtol: 2e-3, atol: 2e-4 * G.map(abs).max()!, "task gradient")
        var thetaExpected = theta1
        AdamW.stepReference(param: &thetaExpected, grad: G, m: &mW, v: &nW, step: 2, lr: Double(opts.learningRate),
                            beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01)
        assertClose(f.adapter.buffer.snapshot(), thetaExpected, rtol: 1e-4, atol: 2e-4 * Double(opts.learningRate), "theta after the step")
        XCTAssertEqual(record.loss, taskLoss(theta1, v1), accuracy: 1e-5)
    }

    /// The length-normalised contrastive loss: its gradient against finite differences of the reference.
    func testMeanContrastiveGradientMatchesTheReference() throws {
        let f = try fixture(seed: 5)
        var opts = options()
        opts.contrastiveReduction = .mean
        let trainer = try SAPTrainer(engine: f.engine, taskSet: f.tasks, pairs: f.pairs, options: opts)
        let theta = f.adapter.buffer.snapshot().map(Double.init)
        trainer.keepDetails = true
        let r = try trainer.trainStep()
        let pairBatch = try TrainingBatch(f.pairs.map(\.chosen) + f.pairs.map(\.rejected), config: f.model.config)
        func safetyLoss(_ th: [Double]) -> Double {
            var tr = LlamaReference.Trainables(adapter: f.adapter, probes: trainer.probes)
            tr.lora = th
            tr.probeValues = [Double](repeating: 0, count: trainer.probes!.buffer.count)
            let l = LlamaReference.losses(f.model.weights, batch: pairBatch, trainables: tr)
            let means = (0 ..< pairBatch.sampleCount).map { s -> Double in
                let rows = (pairBatch.sequenceStarts[s] ..< pairBatch.sequenceStarts[s + 1]).filter { pairBatch.targets[$0] != CrossEntropy.defaultIgnoreIndex }
                return rows.reduce(0) { $0 + l[$1] } / Double(rows.count)
            }
            let B = f.pairs.count
            return (0 ..< B).reduce(0.0) { $0 + log(1 + exp(-(-means[$1] + means[B + $1]) / opts.temperature)) / Double(B) }
        }
        let g = fd(theta, safetyLoss)
        assertClose(trainer.lastDetails!.safetyGradient, g, rtol: 2e-3, atol: 2e-4 * g.map(abs).max()!, "mean contrastive gradient")
        XCTAssertEqual(r.safetyLoss!, safetyLoss(theta), accuracy: 1e-5)
    }

    func taskSums(_ losses: [Double], _ batch: TrainingBatch) -> [Double] {
        (0 ..< batch.sampleCount).map { s in (batch.sequenceStarts[s] ..< batch.sequenceStarts[s + 1]).reduce(0) { $0 + losses[$1] } }
    }

    /// Paper order: v = 0, both probe gradients at v = 0, the probe update, then the task gradient with the new probe.
    func testPaperOrderTakesTheTaskStepWithTheNewProbe() throws {
        let f = try fixture(seed: 2)
        let opts = options(order: .paper)
        let trainer = try SAPTrainer(engine: f.engine, taskSet: f.tasks, pairs: f.pairs, options: opts)
        try trainer.trainStep()
        let probes = trainer.probes!
        let theta1 = f.adapter.buffer.snapshot().map(Double.init)
        trainer.keepDetails = true
        try trainer.trainStep()
        let d = trainer.lastDetails!
        XCTAssertTrue(d.probeBefore.allSatisfy { $0 == 0 }, "paper order starts the probe at zero")
        let taskBatch = try TrainingBatch(f.tasks, config: f.model.config)
        func taskLoss(_ theta: [Double], _ v: [Double]) -> Double {
            var tr = LlamaReference.Trainables(adapter: f.adapter, probes: probes)
            tr.lora = theta
            tr.probeValues = v
            return LlamaReference.losses(f.model.weights, batch: taskBatch, trainables: tr).reduce(0, +) / Double(taskBatch.targetCount)
        }
        let zero = [Double](repeating: 0, count: probes.buffer.count)
        let hClean = fd(zero) { taskLoss(theta1, $0) }
        assertClose(d.probeGradClean, hClean, rtol: 1e-3, atol: 1e-4 * hClean.map(abs).max()!, "h_clean at v = 0")
        let vNew = d.probeAfter.map(Double.init)
        let G = fd(theta1) { taskLoss($0, vNew) }
        assertClose(d.taskGradient, G, rtol: 2e-3, atol: 2e-4 * G.map(abs).max()!, "task gradient with the new probe")
    }

    /// A step with learning rate 0 leaves theta bit-identical (perturbation undone by copy), and the
    /// plain probe update is beta·(h_pert − h_clean).
    func testRestoreIsExactAndPlainProbeUpdate() throws {
        let f = try fixture(seed: 3)
        var opts = options()
        opts.learningRate = 0
        opts.probeUpdate = .plain
        opts.probeLearningRate = 3
        let trainer = try SAPTrainer(engine: f.engine, taskSet: f.tasks, pairs: f.pairs, options: opts)
        trainer.keepDetails = true
        let before = f.adapter.buffer.snapshot()
        let r = try trainer.trainStep()
        XCTAssertGreaterThan(r.epsilon!, 0)
        XCTAssertEqual(f.adapter.buffer.snapshot(), before, "theta changed although the learning rate is 0")
        let d = trainer.lastDetails!
        for i in d.probeAfter.indices {
            XCTAssertEqual(d.probeAfter[i], 3 * (d.probeGradPerturbed[i] - d.probeGradClean[i]), accuracy: 1e-6)
        }
    }

    /// After training the probe is nonzero and changes the outputs; removing it gives exactly the
    /// adapter-only model.
    func testRemovingTheProbeRestoresTheOutputs() throws {
        let f = try fixture(seed: 4)
        let trainer = try SAPTrainer(engine: f.engine, taskSet: f.tasks, pairs: f.pairs, options: options())
        try trainer.run()
        XCTAssertEqual(trainer.history.count, 3)
        let batch = try TrainingBatch(f.tasks, config: f.model.config)
        f.engine.training = false
        let withProbe = f.engine.losses(batch)
        trainer.removeProbes()
        let without = f.engine.losses(batch)
        XCTAssertNotEqual(withProbe, without, "the probe had no effect")
        XCTAssertEqual(without, TrainingEngine(model: f.model, adapter: f.adapter).losses(batch))
        let eval = try trainer.evaluate(f.tasks)
        let plain = TrainingEngine(model: f.model, adapter: f.adapter).losses(batch)
        XCTAssertEqual(eval, plain.reduce(0.0) { $0 + Double($1) } / Double(batch.targetCount), accuracy: 1e-6)
    }

    func testPresetsMapByRelativeDepth() {
        XCTAssertEqual(SAPOptions.ProbePreset.code.layers(blocks: 30), [3, 8])
        XCTAssertEqual(SAPOptions.ProbePreset.paper.layers(blocks: 30), Array(10 ... 19))
        XCTAssertEqual(SAPOptions.ProbePreset.code.layers(blocks: 32), [3, 9])
        XCTAssertEqual(SAPOptions.ProbePreset.code.layers(blocks: 2), [0, 1])
    }

    func testTriplesFileErrorsNameTheLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sap-triples-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = dir.appendingPathComponent("empty.jsonl").path
        try Data().write(to: URL(fileURLWithPath: empty))
        XCTAssertThrowsError(try ContrastiveTriples.load(empty)) { XCTAssertTrue("\($0)".contains("no triples"), "\($0)") }
        let bad = dir.appendingPathComponent("bad.jsonl").path
        try Data("{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\", \"chosen\": \"b\"}\n".utf8)
            .write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try ContrastiveTriples.load(bad)) { XCTAssertTrue("\($0)".contains("bad.jsonl:2") && "\($0)".contains("rejected"), "\($0)") }
        let legacy = dir.appendingPathComponent("legacy.jsonl").path
        try Data("{\"prompt\": \"a\", \"llama3_output\": \"no\", \"response\": \"yes\"}\n".utf8).write(to: URL(fileURLWithPath: legacy))
        let ok = try ContrastiveTriples.load(legacy)
        XCTAssertEqual(ok, [Triple(prompt: "a", chosen: "no", rejected: "yes")])
    }
}
