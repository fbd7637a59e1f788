import Foundation
import Kernels
import Llama

/// SEAL's selection phase (METHODS.md 4.6): per step a safe batch S and a fine-tuning batch J of
/// B rows each (or a safe batch of its own size Bs), drawn from independent seeded shuffles;
/// min(M/Bs, N/B) steps per epoch.
///   model:    theta ← Opt(grad [u·mean_i l_safe(i) + (1 − u)·mean_k w[J_k]·l(J_k)])
///   selector: omega ← Opt(grad_omega mean_k w[J_k]·stopgrad(l(J_k)))   (l at theta_k, before the step)
/// with w = N·softmax(omega) (or 2·sigmoid), u decaying per epoch. The selection model is
/// discarded; the result is the selector, whose rows are the rows of `fineTuneSet` in order.
public final class SEALSelection {
    public let engine: TrainingEngine
    public let adapter: LoRAAdapter
    public let options: SEALOptions
    public let safeSet: [TrainingSample]
    public let fineTuneSet: [TrainingSample]
    public private(set) var selector: DataSelector
    public let modelOptimizer: Optimizer
    public let selectorOptimizer: Optimizer
    /// Algorithm 1's auxiliary adapter and its engine (nil for Algorithm 2).
    public let auxiliaryEngine: TrainingEngine?
    let auxiliaryOptimizer: Optimizer?
    public private(set) var step = 0
    public private(set) var history: [SEALStepRecord] = []
    /// Selector statistics at the end of every epoch.
    public private(set) var epochStats: [[String: Double]] = []
    public var log: (String) -> Void = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }

    private let omega: ParameterBuffer
    private var started = Date()
    private var tokensSeen = 0

    /// `engine` carries the fresh selection-phase adapter (theta_0). With Algorithm 1,
    /// `auxiliaryAdapter` is a second fresh adapter on the same model.
    public init(engine: TrainingEngine, safeSet: [TrainingSample], fineTuneSet: [TrainingSample], options: SEALOptions,
                auxiliaryAdapter: LoRAAdapter? = nil) throws {
        try options.validate()
        guard let adapter = engine.adapter else { throw LlamaError.invalidInput("SEAL needs an engine with a LoRA adapter") }
        guard !safeSet.isEmpty else { throw LlamaError.invalidInput("empty safe (upper-level) set") }
        guard !fineTuneSet.isEmpty else { throw LlamaError.invalidInput("empty fine-tuning set") }
        for (name, set) in [("safe", safeSet), ("fine-tuning", fineTuneSet)] {
            if let i = set.firstIndex(where: { $0.targetCount == 0 }) { throw LlamaError.invalidInput("\(name) sample \(i) has no target token") }
        }
        if options.algorithm == .auxiliary && auxiliaryAdapter == nil {
            throw LlamaError.invalidInput("SEAL Algorithm 1 needs an auxiliary adapter")
        }
        self.engine = engine
        self.adapter = adapter
        self.options = options
        self.safeSet = safeSet
        self.fineTuneSet = fineTuneSet
        selector = DataSelector(count: fineTuneSet.count, kind: options.parameterisation)
        modelOptimizer = Optimizer(kind: options.modelOptimizer, count: adapter.parameterCount)
        let selectorKind: OptimizerKind = options.selectorOptimizer == .adam
            ? .adamW(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0) : .sgd(momentum: 0, weightDecay: 0)
        selectorOptimizer = Optimizer(kind: selectorKind, count: fineTuneSet.count)
        omega = ParameterBuffer(count: fineTuneSet.count)
        batchSize = min(options.batchSize, fineTuneSet.count, options.safeBatchSize == nil ? safeSet.count : .max)
        safeBatchSize = min(options.safeBatchSize ?? batchSize, safeSet.count)
        if options.algorithm == .auxiliary, let aux = auxiliaryAdapter {
            auxiliaryEngine = TrainingEngine(model: engine.model, adapter: aux, recompute: engine.recompute, workers: engine.workers)
            auxiliaryOptimizer = Optimizer(kind: options.modelOptimizer, count: aux.parameterCount)
        } else {
            auxiliaryEngine = nil
            auxiliaryOptimizer = nil
        }
    }

    /// Fine-tuning rows per batch (the batch size, capped by the smaller set when batches are pairs).
    public let batchSize: Int
    /// Safe rows per batch.
    public let safeBatchSize: Int
    /// min(M / Bs, N / B): the shorter loader ends the epoch.
    public var stepsPerEpoch: Int { min(safeSet.count / safeBatchSize, fineTuneSet.count / batchSize) }
    public var totalSteps: Int { min(options.maxSteps ?? Int.max, stepsPerEpoch * options.epochs) }

    /// One selection step.
    @discardableResult
    public func trainStep() throws -> SEALStepRecord {
        let t0 = Date()
        if history.isEmpty { started = t0 }
        let config = engine.model.config
        let epoch = step / stepsPerEpoch
        // Each epoch restarts both shuffles (the zipped loaders of the code: the shorter one ends the epoch).
        let safeIDs = batch(0, count: safeSet.count, size: safeBatchSize, stream: 11, epoch: epoch, index: step % stepsPerEpoch)
        let ids = batch(1, count: fineTuneSet.count, size: batchSize, stream: 12, epoch: epoch, index: step % stepsPerEpoch)
        let B = Double(ids.count)
        let u = options.upperWeight(epoch: epoch)
        let w = selector.weights()
        engine.training = true
        engine.zeroGradients()
        engine.dropoutSeed = SeededOrder.derive(options.seed, step, 21)
        let safeBatch = try TrainingBatch(safeIDs.map { safeSet[$0] }, config: config)
        let safeLosses = engine.forward(safeBatch, tokenWeights: safeBatch.tokenWeights(sampleWeights: [Float](repeating: Float(u / B), count: safeIDs.count)))
        engine.backward()
        let lSafe = safeBatch.sampleMeans(safeLosses)
        let fineBatch = try TrainingBatch(ids.map { fineTuneSet[$0] }, config: config)
        engine.dropoutSeed = SeededOrder.derive(options.seed, step, 22)
        let lFine: [Double]
        if u < 1 {
            let sw = ids.map { Float((1 - u) * Double(w[$0]) / B) }
            let losses = engine.forward(fineBatch, tokenWeights: fineBatch.tokenWeights(sampleWeights: sw))
            engine.backward()
            lFine = fineBatch.sampleMeans(losses)
        } else {
            // u = 1: the fine-tuning rows do not enter the model loss; their losses still feed the selector.
            lFine = fineBatch.sampleMeans(engine.forward(fineBatch, keepActivations: false))
        }
        let safeMean = lSafe.reduce(0, +) / Double(lSafe.count), fineMean = lFine.reduce(0, +) / B
        var weightedFine = 0.0
        for (k, id) in ids.enumerated() { weightedFine += Double(w[id]) * lFine[k] / B }
        let gradNorm = adapter.buffer.gradientNorm(workers: engine.workers)
        let clip = options.maxGradNorm.map { AdamW.clipScale(norm: gradNorm, maxNorm: $0) } ?? 1
        modelOptimizer.update(adapter.buffer, learningRate: options.learningRate, gradScale: clip, workers: engine.workers)

        // Algorithm 1: the auxiliary lower-level model, and the loss gap the selector sees.
        var selectorLosses = lFine
        var auxLoss: Double?
        if let aux = auxiliaryEngine, let auxOpt = auxiliaryOptimizer, let auxAdapter = aux.adapter {
            aux.training = true
            aux.zeroGradients()
            aux.dropoutSeed = SeededOrder.derive(options.seed, step, 23)
            let sw = ids.map { Float(Double(w[$0]) / B) }
            let lHat = fineBatch.sampleMeans(aux.forward(fineBatch, tokenWeights: fineBatch.tokenWeights(sampleWeights: sw)))
            aux.backward()
            let n = auxAdapter.buffer.gradientNorm(workers: aux.workers)
            auxOpt.update(auxAdapter.buffer, learningRate: options.learningRate,
                          gradScale: options.maxGradNorm.map { AdamW.clipScale(norm: n, maxNorm: $0) } ?? 1, workers: aux.workers)
            selectorLosses = zip(lFine, lHat).map { $0 - $1 }
            auxLoss = lHat.reduce(0, +) / B
        }

        let selectorLoss = selector.loss(ids: ids, losses: selectorLosses)
        let g = selector.gradient(ids: ids, losses: selectorLosses)
        omega.restore(selector.logits)
        g.withUnsafeBufferPointer { omega.gradientPointer.update(from: $0.baseAddress!, count: g.count) }
        let selectorGradNorm = omega.gradientNorm()
        let selectorClip = options.selectorMaxGradNorm.map { AdamW.clipScale(norm: selectorGradNorm, maxNorm: $0) } ?? 1
        selectorOptimizer.update(omega, learningRate: options.selectorLearningRate, gradScale: selectorClip)
        selector.logits = omega.snapshot()

        step += 1
        let tokens = safeBatch.tokenCount + fineBatch.tokenCount * (auxiliaryEngine == nil ? 1 : 2)
        tokensSeen += tokens
        let record = SEALStepRecord(step: step, epoch: epoch, upperWeight: u, safeLoss: safeMean, fineTuneLoss: fineMean,
                                    modelLoss: u * safeMean + (1 - u) * weightedFine, selectorLoss: selectorLoss,
                                    gradNorm: gradNorm, selectorGradNorm: selectorGradNorm, auxiliaryLoss: auxLoss,
                                    tokens: tokens, seconds: Date().timeIntervalSince(t0))
        history.append(record)
        if step % stepsPerEpoch == 0 || step == totalSteps { epochStats.append(selector.stats.merging(["step": Double(step)]) { a, _ in a }) }
        if options.logEvery > 0 && (step % options.logEvery == 0 || step == totalSteps) { log(progressLine(record)) }
        return record
    }

    /// Batch `index` of `epoch` in the seeded order of one set (orders cached per epoch).
    private func batch(_ set: Int, count: Int, size: Int, stream: UInt64, epoch: Int, index: Int) -> [Int] {
        if orderCache[set]?.epoch != epoch {
            orderCache[set] = (epoch, SeededOrder.permutation(count, seed: options.seed, stream: stream, epoch: epoch))
        }
        return Array(orderCache[set]!.order[index * size ..< (index + 1) * size])
    }
    private var orderCache: [Int: (epoch: Int, order: [Int])] = [:]

    /// Runs every step; returns the selector.
    @discardableResult
    public func run() throws -> DataSelector {
        while step < totalSteps { try trainStep() }
        return selector
    }

    func progressLine(_ r: SEALStepRecord) -> String {
        let elapsed = max(Date().timeIntervalSince(started), 1e-9)
        let eta = elapsed / Double(max(1, history.count)) * Double(max(0, totalSteps - step))
        let s = selector.stats
        return String(format: "step %d/%d  epoch %d  u %.2f  safe %.4f  ft %.4f  selector logits %.3f..%.3f  %.1f s/step  %.0f tok/s  ETA %@",
                      r.step, totalSteps, r.epoch, r.upperWeight, r.safeLoss, r.fineTuneLoss, s["min"]!, s["max"]!,
                      r.seconds, Double(tokensSeen) / elapsed, SAPMath.duration(eta))
    }
}
