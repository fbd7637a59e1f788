import Kernels
import Llama
import TestSupport
import XCTest

func randomSamples(_ c: LlamaConfig, count: Int, length: ClosedRange<Int>, seed: UInt64) -> [TrainingSample] {
    var rng = SeededRNG(seed: seed)
    return (0 ..< count).map { _ in
        let n = Int.random(in: length, using: &rng), prompt = Int.random(in: 1 ... 2, using: &rng)
        return TrainingSample(prompt: (0 ..< prompt).map { _ in Int32.random(in: 0 ..< Int32(c.vocabSize), using: &rng) },
                              response: (0 ..< n - prompt).map { _ in Int32.random(in: 0 ..< Int32(c.vocabSize), using: &rng) })
    }
}

final class TrainerTests: XCTestCase {
    func makeTrainer(_ options: TrainerOptions, train: [TrainingSample], eval: [TrainingSample] = [],
                     lora: LoRAConfig = LoRAConfig(rank: 4, alpha: 8, dropout: 0.1, targets: [.q, .v, .down]),
                     workers: Int? = nil) throws -> Trainer {
        let model = try tinyModel(seed: 3)
        let ad = try LoRAAdapter(base: model.weights, config: lora, seed: 17)
        let t = try Trainer(engine: TrainingEngine(model: model, adapter: ad, workers: workers), trainSet: train, evalSet: eval,
                            options: options)
        t.log = { _ in }
        return t
    }

    func testTinyModelOverfitsSixteenSamples() throws {
        let c = tinyConfig()
        // Distinct first tokens, so that no two samples share a prefix (the loss can reach zero).
        let train = randomSamples(c, count: 16, length: 4 ... 7, seed: 1).enumerated().map { i, s in
            var s = s
            s.tokens[0] = Int32(i)
            return s
        }
        var o = TrainerOptions()
        o.learningRate = 3e-2
        o.batchSize = 16
        o.maxSteps = 60
        o.maxGradNorm = nil
        o.schedule = .cosine(warmupSteps: 3, totalSteps: 60, minRatio: 0)
        o.optimizer = .adamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0)
        let t = try makeTrainer(o, train: train, eval: train,
                                lora: LoRAConfig(rank: 8, alpha: 16, targets: LoRATarget.allCases, trainNorms: true))
        let records = try t.run()
        let first = records.first!.loss, evalLoss = records.last!.evalLoss!
        XCTAssertGreaterThan(first, 3, "a random model should start near log V = \(log(Double(c.vocabSize)))")
        XCTAssertLessThan(evalLoss, 0.05, "did not overfit: first loss \(first), final eval \(evalLoss)")
    }

    /// Fixed-size and length-grouped (`batchTokens`) micro-batches alike: a run restored from a
    /// checkpoint taken mid-epoch continues bit for bit.
    func testResumeFromCheckpointReproducesLossesBitForBit() throws {
        for budget in [nil, 24] as [Int?] { try checkResume(batchTokens: budget) }
    }

    func checkResume(batchTokens: Int?) throws {
        let c = tinyConfig()
        let train = randomSamples(c, count: 10, length: 4 ... 12, seed: 2)
        let eval = randomSamples(c, count: 3, length: 4 ... 8, seed: 3)
        var o = TrainerOptions()
        o.learningRate = 1e-2
        o.batchSize = 3
        o.batchTokens = batchTokens
        o.gradientAccumulation = 2
        o.maxSteps = 7
        o.evalEvery = 2
        o.schedule = .linearDecay(warmupSteps: 2, totalSteps: 7)
        let straight = try makeTrainer(o, train: train, eval: eval)
        let all = try straight.run()
        XCTAssertGreaterThan(all.last!.epoch, 0, "the run should cross an epoch boundary")
        if let budget = batchTokens {
            XCTAssertTrue(all.allSatisfy { $0.tokens <= 2 * budget }, "two micro-batches of at most \(budget) tokens per step")
        }

        let first = try makeTrainer(o, train: train, eval: eval)
        for _ in 0 ..< 3 { try first.trainStep() }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString).stck")
        defer { try? FileManager.default.removeItem(at: url) }
        try first.checkpoint().write(to: url)
        let loaded = try TrainerCheckpoint.read(from: url)
        XCTAssertEqual(loaded, first.checkpoint())
        let resumed = try makeTrainer(o, train: train, eval: eval)
        try resumed.restore(loaded)
        let rest = try resumed.run()
        let strip: ([StepRecord]) -> [[Double?]] = { $0.map { [Double($0.step), $0.loss, $0.gradNorm, $0.learningRate, $0.evalLoss] } }
        XCTAssertEqual(strip(Array(all.dropFirst(3))), strip(rest))
        XCTAssertEqual(resumed.adapter.buffer.snapshot(), straight.adapter.buffer.snapshot())
        XCTAssertEqual(resumed.history.count, 7)
    }

    /// The length-grouped plan: every sample once per epoch, micro-batches within the budget (a longer
    /// sample alone), each window packed greedily from sorted lengths, seeded and different per epoch.
    func testLengthGroupedBatchPlan() {
        var rng = SeededRNG(seed: 11)
        let lengths = (0 ..< 200).map { _ in Int.random(in: 3 ... 90, using: &rng) }
        let budget = 100
        for epoch in 0 ..< 3 {
            let plan = BatchPlan.lengthGrouped(lengths: lengths, budget: budget, seed: 5, epoch: epoch)
            XCTAssertEqual(plan.flatMap { $0 }.sorted(), Array(0 ..< 200), "every sample exactly once")
            XCTAssertEqual(plan, BatchPlan.lengthGrouped(lengths: lengths, budget: budget, seed: 5, epoch: epoch), "deterministic")
            for b in plan { XCTAssertTrue(b.count == 1 || b.map { lengths[$0] }.reduce(0, +) <= budget, "\(b) over budget") }
            XCTAssertNotEqual(plan, BatchPlan.lengthGrouped(lengths: lengths, budget: budget, seed: 6, epoch: epoch))
            XCTAssertNotEqual(plan, BatchPlan.lengthGrouped(lengths: lengths, budget: budget, seed: 5, epoch: epoch + 1))
        }
        // One window (total tokens <= 32 budgets): micro-batches are runs of the sorted lengths, so any two
        // do not interleave, and each was closed only because the next (shorter or equal) sample did not fit.
        let small = Array(lengths.prefix(40)), plan = BatchPlan.lengthGrouped(lengths: small, budget: budget, seed: 2, epoch: 0)
        XCTAssertLessThanOrEqual(small.reduce(0, +), BatchPlan.windowBatches * budget)
        let runs = plan.map { $0.map { small[$0] } }.sorted { $0.max()! > $1.max()! }
        for (x, y) in zip(runs, runs.dropFirst()) {
            XCTAssertGreaterThanOrEqual(x.min()!, y.max()!, "micro-batches interleave in length")
            XCTAssertGreaterThan(x.reduce(0, +) + y.max()!, budget, "greedy packing would have taken the next sample")
        }
        let meanSpread = Double(runs.map { $0.max()! - $0.min()! }.reduce(0, +)) / Double(runs.count)
        XCTAssertLessThan(meanSpread, 20, "similar lengths grouped (random grouping spreads ~60)")
        // Micro-batches per epoch (epochs -> steps), by tokens and by samples (40 / 6: the tail is skipped).
        var o = TrainerOptions()
        o.batchTokens = budget
        let samples = small.map { TrainingSample(tokens: [Int32](repeating: 1, count: $0), lossMask: [Bool](repeating: true, count: $0)) }
        XCTAssertEqual(Trainer.microBatches(inEpoch: 1, trainSet: samples, options: o),
                       BatchPlan.lengthGrouped(lengths: small, budget: budget, seed: o.seed, epoch: 1).count)
        o.batchTokens = nil
        o.batchSize = 6
        XCTAssertEqual(Trainer.microBatches(inEpoch: 0, trainSet: samples, options: o), 6)
    }

    func testTrainingIsBitwiseIdenticalForOneAndTwoWorkers() throws {
        let c = tinyConfig()
        let train = randomSamples(c, count: 6, length: 20 ... 40, seed: 4)
        var o = TrainerOptions()
        o.batchSize = 3
        o.maxSteps = 3
        o.learningRate = 1e-2
        let one = try makeTrainer(o, train: train, workers: 1), two = try makeTrainer(o, train: train, workers: 2)
        XCTAssertEqual(try one.run().map(\.loss), try two.run().map(\.loss))
        XCTAssertEqual(one.adapter.buffer.snapshot(), two.adapter.buffer.snapshot())
    }

    func testCheckpointRejectsCorruptFiles() throws {
        let c = tinyConfig()
        var o = TrainerOptions()
        o.maxSteps = 1
        let t = try makeTrainer(o, train: randomSamples(c, count: 4, length: 3 ... 5, seed: 5))
        try t.trainStep()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("corrupt-\(UUID().uuidString).stck")
        defer { try? FileManager.default.removeItem(at: url) }
        try t.checkpoint().write(to: url)
        let good = try Data(contentsOf: url)
        func expectFailure(_ d: Data, _ what: String) throws {
            try d.write(to: url)
            XCTAssertThrowsError(try TrainerCheckpoint.read(from: url), what)
        }
        var badMagic = good; badMagic[0] = 0x41
        try expectFailure(badMagic, "bad magic")
        try expectFailure(good.prefix(good.count - 3), "truncated floats")
        try expectFailure(good + Data([0]), "trailing byte")
        var hugeHeader = good
        hugeHeader.replaceSubrange(8 ..< 16, with: withUnsafeBytes(of: UInt64.max.littleEndian) { Data($0) })
        try expectFailure(hugeHeader, "header length past the end")
        // A checkpoint of another adapter shape is refused by the trainer.
        let other = try makeTrainer(o, train: randomSamples(c, count: 4, length: 3 ... 5, seed: 5),
                                    lora: LoRAConfig(rank: 2, alpha: 8, targets: [.q]))
        XCTAssertThrowsError(try other.restore(t.checkpoint()))
    }

    func testSchedulesAndSGDKnownAnswers() {
        XCTAssertEqual(LRSchedule.constant.factor(step: 9), 1)
        XCTAssertEqual(LRSchedule.linearWarmup(warmupSteps: 4).factor(step: 1), 0.25)
        XCTAssertEqual(LRSchedule.linearWarmup(warmupSteps: 4).factor(step: 4), 1)
        XCTAssertEqual(LRSchedule.linearDecay(warmupSteps: 2, totalSteps: 10).factor(step: 6), 0.5)
        let cosine = LRSchedule.cosine(warmupSteps: 2, totalSteps: 12, minRatio: 0.2)
        XCTAssertEqual(cosine.factor(step: 0), 0)
        XCTAssertEqual(cosine.factor(step: 2), 1, accuracy: 1e-15)
        XCTAssertEqual(cosine.factor(step: 7), 0.6, accuracy: 1e-12)
        XCTAssertEqual(cosine.factor(step: 12), 0.2, accuracy: 1e-12)
        // SGD with momentum 0.5 and weight decay 0.1, lr 0.1: two steps by hand.
        let p = ParameterBuffer(count: 1)
        p.values[0] = 1; p.gradients[0] = 2
        let sgd = Optimizer(kind: .sgd(momentum: 0.5, weightDecay: 0.1), count: 1)
        sgd.update(p, learningRate: 0.1)           // d = 2.1, buf = 2.1, p = 0.79
        XCTAssertEqual(p.values[0], 0.79, accuracy: 1e-7)
        sgd.update(p, learningRate: 0.1)           // d = 2.079, buf = 1.05 + 2.079 = 3.129, p = 0.4771
        XCTAssertEqual(p.values[0], 0.4771, accuracy: 1e-6)
    }

    func testActivationPlanFitsSmolLM2WithinSixGiBAndMatchesAllocation() throws {
        let smol = LlamaConfig(vocabSize: 49152, hiddenSize: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64, ffnSize: 1536,
                               ropeBase: 100_000, contextLength: 2048)
        let tokens = 8 * 256
        let full = TrainingEngine.plannedActivationBytes(config: smol, tokens: tokens, recompute: false, loraRank: 8)
        let re = TrainingEngine.plannedActivationBytes(config: smol, tokens: tokens, recompute: true, loraRank: 8)
        let weights = smol.parameterCount * 4
        let crossEntropyScratch = CrossEntropy.tokenBlock * CrossEntropy.vocabChunk * 4
        XCTAssertLessThan(full + weights + crossEntropyScratch, 6 << 30, "B=8, T=256 must train within 6 GiB")
        XCTAssertLessThan(re * 4, full, "recomputation should keep far less")
        // The plan is what the engine allocates.
        let model = try tinyModel()
        let ad = try LoRAAdapter(base: model.weights, config: LoRAConfig(rank: 3), seed: 1)
        for recompute in [false, true] {
            let engine = TrainingEngine(model: model, adapter: ad, recompute: recompute)
            let batch = try tinyBatch(model.config)
            engine.forward(batch)
            XCTAssertEqual(engine.activationBytes, TrainingEngine.plannedActivationBytes(
                config: model.config, tokens: batch.tokenCount, recompute: recompute, loraRank: 3))
        }
    }

    func testTrainerRejectsBadInput() throws {
        let c = tinyConfig()
        var o = TrainerOptions()
        o.batchSize = 0
        XCTAssertThrowsError(try makeTrainer(o, train: randomSamples(c, count: 2, length: 3 ... 4, seed: 1)))
        XCTAssertThrowsError(try makeTrainer(TrainerOptions(), train: []))
        XCTAssertThrowsError(try makeTrainer(TrainerOptions(), train: [TrainingSample(tokens: [1, 2], lossMask: [true, false])]))
        XCTAssertThrowsError(try TrainingBatch([TrainingSample(tokens: [1, 99], lossMask: [false, true])], config: c))
        XCTAssertThrowsError(try TrainingBatch([TrainingSample(tokens: [1, 2], lossMask: [true])], config: c))
        XCTAssertThrowsError(try LoRAAdapter(base: tinyModel().weights, config: LoRAConfig(rank: 0), seed: 1))
        XCTAssertThrowsError(try ProbeSet(blocks: [3], config: c))
    }
}
