import Foundation
import Llama

/// How long to train.
public enum TrainingLength: Equatable, Sendable {
    case steps(Int)
    /// Passes over the training set (fractions allowed), rounded up to whole optimiser steps.
    case epochs(Double)
}

/// Learning-rate schedule shape, resolved to an `LRSchedule` once the total steps are known.
public enum ScheduleShape: Equatable, Sendable {
    /// Linear warmup, then constant.
    case constant(warmupSteps: Int)
    /// Linear warmup, then linear decay to 0 (Hugging Face Trainer's default).
    case linear(warmupSteps: Int)
    /// Linear warmup, then cosine decay to `minRatio` of the peak.
    case cosine(warmupSteps: Int, minRatio: Double)

    public func resolved(totalSteps: Int) -> LRSchedule {
        switch self {
        case .constant(let w): return w > 0 ? .linearWarmup(warmupSteps: w) : .constant
        case .linear(let w): return .linearDecay(warmupSteps: w, totalSteps: totalSteps)
        case .cosine(let w, let r): return .cosine(warmupSteps: w, totalSteps: totalSteps, minRatio: r)
        }
    }

    public var warmupSteps: Int {
        switch self {
        case .constant(let w), .linear(let w), .cosine(let w, _): return w
        }
    }

    public var name: String {
        switch self {
        case .constant: return "constant"
        case .linear: return "linear"
        case .cosine: return "cosine"
        }
    }
}

/// Settings of a plain LoRA SFT run. Defaults: r = 8, alpha = 16, dropout 0.05 on q and v; AdamW
/// (lr 2e-4, weight decay 0.01), linear decay, batch 4, one epoch, 512 tokens per sample.
public struct FineTuneOptions: Sendable {
    public var lora = LoRAConfig(rank: 8, alpha: 16, dropout: 0.05, targets: [.q, .v])
    /// Optimiser, batch, accumulation, clipping, seed, evaluation and logging intervals. Its
    /// `maxSteps` and `schedule` are overwritten from `length` and `schedule` below.
    public var trainer = TrainerOptions()
    public var length = TrainingLength.epochs(1)
    public var schedule = ScheduleShape.linear(warmupSteps: 0)
    /// Samples are cut to this many tokens (and to the model's context length).
    public var maxTokens = 512
    /// Keep only the residual stream and recompute each block during backward (less memory).
    public var recompute = false
    /// Worker threads (nil: `Parallel.defaultWorkers`).
    public var workers: Int?

    public init() {}

    /// The adapter's initialisation seed, derived from the run's seed.
    public var adapterSeed: UInt64 { trainer.seed ^ 0x1_0BA5_EED5 }

    public func validate() throws {
        try lora.validate()
        try trainer.validate()
        switch length {
        case .steps(let n): guard n >= 1 else { throw LlamaError.invalidConfig("steps \(n) must be positive") }
        case .epochs(let e): guard e.isFinite && e > 0 else { throw LlamaError.invalidConfig("epochs \(e) must be positive") }
        }
        guard schedule.warmupSteps >= 0 else { throw LlamaError.invalidConfig("warmup steps must be >= 0") }
        if case .cosine(_, let r) = schedule, !(r >= 0 && r <= 1) { throw LlamaError.invalidConfig("cosine min ratio \(r) must be in [0, 1]") }
        guard maxTokens >= 2 else { throw LlamaError.invalidConfig("max tokens \(maxTokens) must be at least 2") }
    }
}

/// Training and held-out samples, encoded with the model's chat template, with the counts a report needs.
public struct FineTuneData: Sendable {
    public var train: SampleEncoding.EncodedSet
    public var eval: SampleEncoding.EncodedSet
    /// Input rows behind `train` (indices into the training file) and behind `eval` (into the
    /// evaluation file when `evalFromFile`, else into the training file).
    public var trainRows: [Int]
    public var evalRows: [Int]
    public var evalFromFile: Bool
    public var maxTokens: Int

    /// Encodes `data` for training. The held-out set is `evalData` when given, else a seeded
    /// random `evalFraction` of `data`'s rows (at least one row when the fraction is positive, and
    /// never all of them). Rows cut to `maxTokens` are counted as truncated; rows whose prompt
    /// alone fills `maxTokens` are dropped and listed.
    public static func prepare(_ data: [Sample], evalData: [Sample]? = nil, evalFraction: Double = 0, seed: UInt64 = 0,
                               model: LoadedModel, maxTokens: Int) throws -> FineTuneData {
        guard !data.isEmpty else { throw DatasetError("the training data has no rows") }
        guard evalFraction >= 0 && evalFraction < 1 else { throw DatasetError("eval fraction \(evalFraction) must be in [0, 1)") }
        var trainRows = Array(data.indices), evalRows: [Int] = []
        let evalSamples: [Sample]
        if let evalData {
            guard !evalData.isEmpty else { throw DatasetError("the evaluation data has no rows") }
            evalRows = Array(evalData.indices)
            evalSamples = evalData
        } else {
            evalRows = heldOut(count: data.count, fraction: evalFraction, seed: seed)
            let held = Set(evalRows)
            trainRows = trainRows.filter { !held.contains($0) }
            evalSamples = evalRows.map { data[$0] }
        }
        var train = SampleEncoding.trainingSet(trainRows.map { data[$0] }, with: model, maxTokens: maxTokens)
        var eval = SampleEncoding.trainingSet(evalSamples, with: model, maxTokens: maxTokens)
        // Indices in the sets refer to input rows, not positions in the sub-lists.
        train.sourceIndex = train.sourceIndex.map { trainRows[$0] }
        train.dropped = train.dropped.map { trainRows[$0] }
        eval.sourceIndex = eval.sourceIndex.map { evalRows[$0] }
        eval.dropped = eval.dropped.map { evalRows[$0] }
        guard !train.samples.isEmpty else {
            throw DatasetError("all \(trainRows.count) training rows were dropped: their prompts alone reach the \(maxTokens)-token limit")
        }
        return FineTuneData(train: train, eval: eval, trainRows: trainRows, evalRows: evalRows,
                            evalFromFile: evalData != nil, maxTokens: maxTokens)
    }

    /// Sorted indices of a seeded random `fraction` of `count` rows (0 < k < count when fraction > 0 and count >= 2).
    public static func heldOut(count: Int, fraction: Double, seed: UInt64) -> [Int] {
        guard fraction > 0, count >= 2 else { return [] }
        let k = min(count - 1, max(1, Int((fraction * Double(count)).rounded())))
        return BatchPlan.permutation(count, seed: seed ^ 0xE7A1_5EED, epoch: 0).prefix(k).sorted()
    }

    public var json: [String: Any] {
        ["train_rows": trainRows.count, "train_samples": train.samples.count, "train_tokens": train.tokens,
         "train_truncated": train.truncated, "train_dropped": train.dropped,
         "eval_rows": evalRows.count, "eval_samples": eval.samples.count, "eval_tokens": eval.tokens,
         "eval_truncated": eval.truncated, "eval_dropped": eval.dropped,
         "eval_source": evalFromFile ? "file" : evalRows.isEmpty ? "none" : "held-out fraction", "max_tokens": maxTokens]
    }
}

/// What a fine-tuning run did.
public struct FineTuneResult {
    public struct EvalPoint: Codable, Equatable, Sendable {
        public var step: Int
        public var loss: Double
    }
    /// Every optimiser step's record (including steps restored from a checkpoint).
    public var steps: [StepRecord]
    /// Held-out loss of the base model (no adapter) and after the steps that evaluated.
    public var baseEvalLoss: Double?
    public var evalLosses: [EvalPoint]
    /// Step the run resumed from (nil: started fresh).
    public var resumedFromStep: Int?
    /// Training tokens and seconds of the steps this run took (evaluation excluded).
    public var trainTokens: Int
    public var trainSeconds: Double
    public var tokensPerSecond: Double { trainSeconds > 0 ? Double(trainTokens) / trainSeconds : 0 }
    public var peakResidentBytes: Int
    public var wallSeconds: Double

    public var json: [String: Any] {
        func num(_ x: Double?) -> Any { x.map { $0.isFinite ? $0 as Any : NSNull() } ?? NSNull() }
        return [
            "steps": steps.map { r -> [String: Any] in
                ["step": r.step, "epoch": r.epoch, "loss": num(r.loss), "grad_norm": num(r.gradNorm), "learning_rate": r.learningRate,
                 "tokens": r.tokens, "seconds": r.seconds, "eval_loss": num(r.evalLoss)]
            },
            "base_eval_loss": num(baseEvalLoss),
            "eval_losses": evalLosses.map { ["step": $0.step, "loss": num($0.loss)] },
            "final_train_loss": num(steps.last?.loss), "final_eval_loss": num(evalLosses.last?.loss),
            "resumed_from_step": resumedFromStep.map { $0 as Any } ?? NSNull(),
            "train_tokens": trainTokens, "train_seconds": trainSeconds, "tokens_per_second": tokensPerSecond,
            "peak_rss_bytes": peakResidentBytes, "peak_rss_mib": Double(peakResidentBytes) / 1_048_576, "wall_seconds": wallSeconds,
        ]
    }
}

/// Plain LoRA supervised fine-tuning of a loaded model (the baseline every method is compared with,
/// and the "then SFT" arm of SAFT, SEAL and SAP): a fresh PEFT-initialised adapter on the frozen F32
/// base, the `Trainer` loop, held-out losses, and the figures of a report.
///
///     let data = try FineTuneData.prepare(rows, evalFraction: 0.1, model: m, maxTokens: 512)
///     let run = try FineTune(model: m, data: data, options: FineTuneOptions())
///     let result = try run.run()                       // run.adapter is the trained adapter
public final class FineTune {
    public let model: LoadedModel
    public let data: FineTuneData
    /// The options with `trainer.maxSteps` and `trainer.schedule` resolved.
    public let options: FineTuneOptions
    public let trainer: Trainer
    public var adapter: LoRAAdapter { trainer.adapter }
    public private(set) var resumedFromStep: Int?

    public init(model: LoadedModel, data: FineTuneData, options: FineTuneOptions) throws {
        try options.validate()
        var o = options
        let steps = FineTune.totalSteps(o.length, trainSet: data.train.samples, options: o.trainer)
        o.trainer.maxSteps = steps
        o.trainer.schedule = o.schedule.resolved(totalSteps: steps)
        self.model = model
        self.data = data
        self.options = o
        let adapter = try LoRAAdapter(base: model.model.weights, config: o.lora, seed: o.adapterSeed)
        let engine = TrainingEngine(model: model.model, adapter: adapter, recompute: o.recompute, workers: o.workers)
        trainer = try Trainer(engine: engine, trainSet: data.train.samples, evalSet: data.eval.samples, options: o.trainer)
        trainer.log = { _ in }
    }

    /// Optimiser steps of `length`: epochs count micro-batches (each epoch's own plan when batching
    /// by tokens) and round up to whole steps of `gradientAccumulation` micro-batches.
    public static func totalSteps(_ length: TrainingLength, trainSet: [TrainingSample], options: TrainerOptions) -> Int {
        switch length {
        case .steps(let n): return n
        case .epochs(let e):
            let whole = Int(e.rounded(.down))
            var micro = 0.0
            for epoch in 0 ..< whole { micro += Double(Trainer.microBatches(inEpoch: epoch, trainSet: trainSet, options: options)) }
            if e > Double(whole) {
                micro += (e - Double(whole)) * Double(Trainer.microBatches(inEpoch: whole, trainSet: trainSet, options: options))
            }
            return max(1, Int((micro / Double(options.gradientAccumulation)).rounded(.up)))
        }
    }

    /// Continues a run from a checkpoint of the same options and data.
    public func resume(from checkpoint: TrainerCheckpoint) throws {
        try trainer.restore(checkpoint)
        resumedFromStep = checkpoint.header.step
    }

    /// Held-out loss of the base model without the adapter (NaN without held-out samples).
    public func baseEvalLoss() throws -> Double {
        guard !data.eval.samples.isEmpty else { return .nan }
        return try Trainer.meanLoss(engine: TrainingEngine(model: model.model, workers: options.workers),
                                    samples: data.eval.samples, batchSize: options.trainer.evalBatchSize)
    }

    /// Trains to the end. With `checkpoint`, the full trainer state is written there (atomically)
    /// every `checkpointEvery` steps (0: only at the end). Progress lines go to `log`.
    public func run(checkpoint: URL? = nil, checkpointEvery: Int = 0, log: ((String) -> Void)? = nil) throws -> FineTuneResult {
        let started = Date()
        trainer.log = log ?? { _ in }
        let base = data.eval.samples.isEmpty ? nil : try baseEvalLoss()
        if let base { log?(String(format: "base model held-out loss %.4f on %d samples", base, data.eval.samples.count)) }
        let records = try trainer.run { r in
            if let checkpoint, checkpointEvery > 0, r.step % checkpointEvery == 0 { try self.trainer.checkpoint().write(to: checkpoint) }
        }
        if let checkpoint, checkpointEvery == 0 || trainer.step % checkpointEvery != 0 { try trainer.checkpoint().write(to: checkpoint) }
        let history = trainer.history
        return FineTuneResult(
            steps: history, baseEvalLoss: base,
            evalLosses: history.compactMap { r in r.evalLoss.map { FineTuneResult.EvalPoint(step: r.step, loss: $0) } },
            resumedFromStep: resumedFromStep, trainTokens: records.reduce(0) { $0 + $1.tokens },
            trainSeconds: records.reduce(0) { $0 + $1.seconds }, peakResidentBytes: ProcessMemory.peakResidentBytes(),
            wallSeconds: Date().timeIntervalSince(started))
    }

    /// The configuration part of a report.
    public var configJSON: [String: Any] {
        let t = options.trainer
        var optimizer: [String: Any]
        switch t.optimizer {
        case let .adamW(b1, b2, eps, wd):
            optimizer = ["kind": "adamw", "beta1": Double(b1), "beta2": Double(b2), "eps": Double(eps), "weight_decay": Double(wd)]
        case let .sgd(m, wd):
            optimizer = ["kind": "sgd", "momentum": Double(m), "weight_decay": Double(wd)]
        }
        optimizer["learning_rate"] = Double(t.learningRate)
        var length: [String: Any] = ["steps": t.maxSteps]
        if case .epochs(let e) = options.length { length["epochs"] = e }
        return [
            "lora": ["rank": options.lora.rank, "alpha": Double(options.lora.alpha), "dropout": Double(options.lora.dropout),
                     "targets": options.lora.targets.map(\.rawValue), "train_norms": options.lora.trainNorms,
                     "trainable_parameters": adapter.parameterCount],
            "optimizer": optimizer,
            "schedule": ["kind": options.schedule.name, "warmup_steps": options.schedule.warmupSteps],
            "length": length,
            "batch": ["samples": t.batchTokens == nil ? t.batchSize as Any : NSNull(),
                      "tokens": t.batchTokens.map { $0 as Any } ?? NSNull(),
                      "gradient_accumulation": t.gradientAccumulation],
            "max_grad_norm": t.maxGradNorm.map { $0 as Any } ?? NSNull(),
            "loss_reduction": t.reduction.rawValue, "eval_every": t.evalEvery, "eval_batch": t.evalBatchSize,
            "max_tokens": options.maxTokens, "recompute": options.recompute, "seed": t.seed, "adapter_seed": options.adapterSeed,
        ]
    }

    /// The base model with `adapter` merged in (W += (alpha/r)·B·A), written as a GGUF of `type`
    /// with the model's tokenizer and chat template (atomically).
    public static func exportMerged(_ adapter: LoRAAdapter, model: LoadedModel, type: GGUFExport.MatrixType, name: String,
                                    to path: String, workers: Int? = nil) throws {
        let merged = try adapter.merged(into: model.model.weights, workers: workers)
        try GGUFExport.write(merged, tokenizer: model.tokenizer, template: model.template, name: name, matrixType: type, to: path)
    }
}
