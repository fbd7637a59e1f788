import Foundation
import Kernels

/// How a micro-batch's per-token losses become its loss.
public enum LossReduction: String, Codable, Sendable {
    /// Mean over the micro-batch's target tokens (Hugging Face Trainer's default).
    case tokenMean
    /// Mean over samples of each sample's mean response NLL.
    case sampleMean
    /// Plain sum over target tokens.
    case sum

    var crossEntropy: CrossEntropy.Reduction {
        switch self {
        case .tokenMean: return .meanPerBatch
        case .sampleMean: return .meanPerSequence
        case .sum: return .sum
        }
    }
}

/// Settings of a supervised fine-tuning run (plain LoRA SFT; the methods build on the same loop).
public struct TrainerOptions: Codable, Equatable, Sendable {
    public var learningRate: Float = 2e-4
    public var schedule: LRSchedule = .constant
    public var optimizer: OptimizerKind = .adamWDefault
    /// Samples per micro-batch (one forward/backward) when `batchTokens` is nil.
    public var batchSize = 4
    /// Dynamic batching by length: when set, micro-batches are groups of samples of similar length
    /// whose token total stays within this budget (`BatchPlan`), and `batchSize` is not used for training.
    public var batchTokens: Int?
    /// Micro-batches per optimiser step (their gradients are averaged).
    public var gradientAccumulation = 1
    /// Optimiser steps to take in total.
    public var maxSteps = 100
    /// Global-norm clipping of the adapter gradient (nil: none).
    public var maxGradNorm: Double? = 1.0
    public var reduction: LossReduction = .tokenMean
    public var seed: UInt64 = 0
    /// Evaluate the held-out loss every this many steps (0: never) and after the last step.
    public var evalEvery = 0
    public var evalBatchSize = 8
    /// Progress line on stderr every this many steps (0: silent).
    public var logEvery = 1

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw LlamaError.invalidConfig(what) } }
        try check(learningRate.isFinite && learningRate >= 0, "learning rate \(learningRate) must be >= 0")
        try check(batchSize >= 1, "batch size \(batchSize) must be positive")
        try check(batchTokens.map { $0 >= 1 } ?? true, "batch token budget must be positive")
        try check(gradientAccumulation >= 1, "gradient accumulation \(gradientAccumulation) must be positive")
        try check(maxSteps >= 0, "max steps \(maxSteps) must be >= 0")
        try check(maxGradNorm.map { $0 > 0 } ?? true, "max grad norm must be positive")
        try check(evalEvery >= 0 && evalBatchSize >= 1 && logEvery >= 0, "eval/log intervals must be >= 0 and eval batch >= 1")
    }
}

/// What one optimiser step did.
public struct StepRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    /// Mean of the micro-batch losses (each reduced as `TrainerOptions.reduction`).
    public var loss: Double
    /// Adapter gradient norm before clipping.
    public var gradNorm: Double
    public var learningRate: Double
    public var tokens: Int
    public var evalLoss: Double?
    public var seconds: Double
}

/// The training loop: seeded shuffling, micro-batches with gradient accumulation, clipping,
/// LR schedule, optimiser, periodic evaluation, progress on stderr, checkpoints with exact resume.
///
/// Data plugs in as `TrainingSample`s (token ids and loss mask): a data loader renders any
/// fine-tuning format to those. The order of epoch e is a permutation seeded by (seed, e) (with
/// `batchTokens`, the length-grouped plan `BatchPlan.lengthGrouped` of that permutation), and the
/// dropout masks of a micro-batch are seeded by (seed, step, micro-batch), so a run restored from a
/// checkpoint continues bit for bit as if uninterrupted.
public final class Trainer {
    public let engine: TrainingEngine
    public let adapter: LoRAAdapter
    public let options: TrainerOptions
    public let trainSet: [TrainingSample]
    public let evalSet: [TrainingSample]
    public let optimizer: Optimizer
    public private(set) var step = 0
    public private(set) var epoch = 0
    /// Samples of the current epoch's order already used (with `batchTokens`: micro-batches of its plan).
    public private(set) var cursor = 0
    /// Fingerprint of the training set's tokens and masks (a checkpoint must come from the same data).
    public let dataHash: UInt64
    public private(set) var history: [StepRecord] = []
    /// Where progress lines go (default: stderr).
    public var log: (String) -> Void = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }

    private var order: [Int] = []
    /// The current epoch's micro-batches (dynamic batching only).
    private var plan: [[Int]] = []
    private var started = Date()
    private var tokensSeen = 0

    public init(engine: TrainingEngine, trainSet: [TrainingSample], evalSet: [TrainingSample] = [], options: TrainerOptions) throws {
        try options.validate()
        guard let adapter = engine.adapter else { throw LlamaError.invalidInput("the trainer needs an engine with a LoRA adapter") }
        guard !trainSet.isEmpty else { throw LlamaError.invalidInput("empty training set") }
        for (i, s) in trainSet.enumerated() where s.targetCount == 0 || s.tokens.count != s.lossMask.count {
            throw LlamaError.invalidInput("training sample \(i) has no target token or a loss mask of the wrong length")
        }
        self.engine = engine
        self.adapter = adapter
        self.options = options
        self.trainSet = trainSet
        self.evalSet = evalSet
        optimizer = Optimizer(kind: options.optimizer, count: adapter.parameterCount)
        dataHash = Trainer.fingerprint(trainSet)
        startEpoch(0)
    }

    /// The sample order of `epoch`: Fisher–Yates with a generator seeded by (seed, epoch).
    static func permutation(_ n: Int, seed: UInt64, epoch: Int) -> [Int] {
        BatchPlan.permutation(n, seed: seed, epoch: epoch)
    }

    /// Micro-batches epoch `epoch` of `trainSet` yields under `options` (to turn epochs into steps).
    public static func microBatches(inEpoch epoch: Int, trainSet: [TrainingSample], options: TrainerOptions) -> Int {
        if let budget = options.batchTokens {
            return BatchPlan.lengthGrouped(lengths: trainSet.map(\.tokens.count), budget: budget, seed: options.seed, epoch: epoch).count
        }
        return trainSet.count / min(options.batchSize, max(1, trainSet.count))
    }

    /// FNV-1a over every sample's tokens and loss mask.
    static func fingerprint(_ samples: [TrainingSample]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func eat(_ x: UInt64) { h = (h ^ x) &* 0x100_0000_01B3 }
        for s in samples {
            eat(UInt64(s.tokens.count))
            for (t, m) in zip(s.tokens, s.lossMask) { eat(UInt64(UInt32(bitPattern: t)) << 1 | (m ? 1 : 0)) }
        }
        return h
    }

    private func startEpoch(_ e: Int) {
        epoch = e
        if let budget = options.batchTokens {
            plan = BatchPlan.lengthGrouped(lengths: trainSet.map(\.tokens.count), budget: budget, seed: options.seed, epoch: e)
        } else {
            order = Trainer.permutation(trainSet.count, seed: options.seed, epoch: e)
        }
    }

    /// The next micro-batch in the seeded order (fixed size: an incomplete tail of an epoch is
    /// skipped; by tokens: the next group of the epoch's plan).
    func nextMicroBatch() -> [TrainingSample] {
        if options.batchTokens != nil {
            if cursor >= plan.count {
                startEpoch(epoch + 1)
                cursor = 0
            }
            defer { cursor += 1 }
            return plan[cursor].map { trainSet[$0] }
        }
        let bs = min(options.batchSize, trainSet.count)
        if cursor + bs > trainSet.count {
            startEpoch(epoch + 1)
            cursor = 0
        }
        defer { cursor += bs }
        return order[cursor ..< cursor + bs].map { trainSet[$0] }
    }

    /// One optimiser step over `gradientAccumulation` micro-batches.
    @discardableResult
    public func trainStep() throws -> StepRecord {
        let t0 = Date()
        if step == 0 && history.isEmpty { started = t0 }
        let accum = options.gradientAccumulation
        engine.training = true
        engine.zeroGradients()
        var lossSum = 0.0, tokens = 0
        for micro in 0 ..< accum {
            let batch = try TrainingBatch(nextMicroBatch(), config: engine.model.config)
            engine.dropoutSeed = SplitMix.mix(options.seed ^ SplitMix.mix(UInt64(step) << 16 | UInt64(micro)))
            let w = batch.tokenWeights(options.reduction.crossEntropy).map { $0 / Float(accum) }
            lossSum += engine.lossAndGradients(batch, tokenWeights: w) * Double(accum)
            tokens += batch.tokenCount
        }
        let gradNorm = adapter.buffer.gradientNorm(workers: engine.workers)
        let clip = options.maxGradNorm.map { AdamW.clipScale(norm: gradNorm, maxNorm: $0) } ?? 1
        let lr = Double(options.learningRate) * options.schedule.factor(step: step)
        optimizer.update(adapter.buffer, learningRate: Float(lr), gradScale: clip, workers: engine.workers)
        step += 1
        tokensSeen += tokens
        var record = StepRecord(step: step, epoch: epoch, loss: lossSum / Double(accum), gradNorm: gradNorm, learningRate: lr,
                                tokens: tokens, evalLoss: nil, seconds: Date().timeIntervalSince(t0))
        if !evalSet.isEmpty && ((options.evalEvery > 0 && step % options.evalEvery == 0) || step == options.maxSteps) {
            record.evalLoss = try evaluate()
        }
        history.append(record)
        if options.logEvery > 0 && (step % options.logEvery == 0 || step == options.maxSteps) { log(progressLine(record)) }
        return record
    }

    /// Trains until `options.maxSteps` optimiser steps are done; returns this call's records.
    /// `afterStep` runs after every step (checkpoints, caller-side logging); its errors stop the run.
    @discardableResult
    public func run(afterStep: ((StepRecord) throws -> Void)? = nil) throws -> [StepRecord] {
        var out: [StepRecord] = []
        started = Date()
        tokensSeen = 0
        while step < options.maxSteps {
            let r = try trainStep()
            out.append(r)
            try afterStep?(r)
        }
        return out
    }

    /// Token-mean NLL over the held-out set (dropout off), Σ losses / Σ targets in Double.
    public func evaluate() throws -> Double {
        try Trainer.meanLoss(engine: engine, samples: evalSet, batchSize: options.evalBatchSize)
    }

    /// Token-mean NLL of `samples` under `engine` (dropout off; an engine without adapter gives the
    /// base model's loss), Σ losses / Σ targets in Double; NaN when there is no target.
    public static func meanLoss(engine: TrainingEngine, samples: [TrainingSample], batchSize: Int) throws -> Double {
        let wasTraining = engine.training
        engine.training = false
        defer { engine.training = wasTraining }
        var sum = 0.0, count = 0
        var i = 0
        while i < samples.count {
            let batch = try TrainingBatch(Array(samples[i ..< min(i + max(1, batchSize), samples.count)]), config: engine.model.config)
            let l = engine.losses(batch)
            for t in 0 ..< batch.tokenCount where batch.targets[t] != CrossEntropy.defaultIgnoreIndex {
                sum += Double(l[t]); count += 1
            }
            i += max(1, batchSize)
        }
        return count > 0 ? sum / Double(count) : .nan
    }

    func progressLine(_ r: StepRecord) -> String {
        let elapsed = max(Date().timeIntervalSince(started), 1e-9)
        let rate = Double(tokensSeen) / elapsed
        let done = max(1, history.count)
        let eta = elapsed / Double(done) * Double(max(0, options.maxSteps - step))
        var s = String(format: "step %d/%d  epoch %d  loss %.4f  grad %.3f  lr %.3g  %.0f tok/s  ETA %@",
                       r.step, options.maxSteps, r.epoch, r.loss, r.gradNorm, r.learningRate, rate, Trainer.duration(eta))
        if let e = r.evalLoss { s += String(format: "  eval %.4f", e) }
        return s
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }

    // MARK: - Checkpoints

    /// Everything needed to continue exactly: adapter values, optimiser state, position in the data.
    public func checkpoint() -> TrainerCheckpoint {
        TrainerCheckpoint(header: .init(options: options, loraConfig: adapter.config, modelConfig: adapter.modelConfig,
                                        step: step, epoch: epoch, cursor: cursor, optimizerStep: optimizer.step,
                                        trainSamples: trainSet.count, dataHash: dataHash, history: history),
                          parameters: adapter.buffer.snapshot(), m: optimizer.m, v: optimizer.v)
    }

    /// Continues from `c` (taken from a trainer with the same options, adapter shape and data size).
    public func restore(_ c: TrainerCheckpoint) throws {
        let h = c.header
        guard h.loraConfig == adapter.config, h.modelConfig == adapter.modelConfig else {
            throw LlamaError.invalidInput("checkpoint adapter or model configuration differs from this trainer's")
        }
        guard h.options == options else { throw LlamaError.invalidInput("checkpoint training options differ from this trainer's") }
        guard h.trainSamples == trainSet.count else {
            throw LlamaError.invalidInput("checkpoint was taken with \(h.trainSamples) training samples, this trainer has \(trainSet.count)")
        }
        guard h.dataHash == nil || h.dataHash == dataHash else {
            throw LlamaError.invalidInput("checkpoint was taken on other training data (same count, different tokens)")
        }
        guard c.parameters.count == adapter.parameterCount else {
            throw LlamaError.invalidInput("checkpoint has \(c.parameters.count) adapter floats, expected \(adapter.parameterCount)")
        }
        guard h.cursor >= 0 && h.cursor <= trainSet.count && h.epoch >= 0 && h.step >= 0 else {
            throw LlamaError.invalidInput("checkpoint position (step \(h.step), epoch \(h.epoch), cursor \(h.cursor)) is invalid")
        }
        if options.batchTokens != nil {
            let batches = Trainer.microBatches(inEpoch: h.epoch, trainSet: trainSet, options: options)
            guard h.cursor <= batches else {
                throw LlamaError.invalidInput("checkpoint cursor \(h.cursor) is past the \(batches) micro-batches of epoch \(h.epoch)")
            }
        }
        try optimizer.restore(m: c.m, v: c.v, step: h.optimizerStep)
        adapter.buffer.restore(c.parameters)
        step = h.step
        startEpoch(h.epoch)
        cursor = h.cursor
        history = h.history
    }
}
