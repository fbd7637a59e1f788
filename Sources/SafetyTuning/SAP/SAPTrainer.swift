import Foundation
import Kernels
import Llama

/// SAP — Safety-Aware Probing (METHODS.md 3.6): LoRA fine-tuning where every step
///   1. takes the contrastive safety gradient g on a batch of (prompt, safe, harmful) triples,
///   2. perturbs theta by eps·g/‖g‖ with eps = gradRate·‖theta‖ and takes the probe gradient of the
///      task loss there (probe-only backward), then restores theta by copy (bit-exact),
///   3. takes the task loss, its theta gradient and the probe gradient at the clean weights,
///   4. steps theta (AdamW) and sets the probe from zero by one AdamW step on h_clean − h_pert
///      with persistent moments (an ascent step on L_su = L(theta + dW) − L(theta)).
/// The probe is a training-time device: `removeProbes()` drops it before evaluation and export.
public final class SAPTrainer {
    public let engine: TrainingEngine
    public let adapter: LoRAAdapter
    /// The probes (nil in plain SFT); `engine.probes` points here while training.
    public let probes: ProbeSet?
    public let options: SAPOptions
    public let taskSet: [TrainingSample]
    public let pairs: [(chosen: TrainingSample, rejected: TrainingSample)]
    public let weightOptimizer: Optimizer
    public let probeOptimizer: Optimizer?
    public private(set) var step = 0
    public private(set) var history: [SAPStepRecord] = []
    /// Mean token ‖hidden‖ at each probe block on the base model (first task batch), for the relative probe size.
    public private(set) var hiddenNorms: [Double] = []
    /// Keep `lastDetails` (costs copies of every gradient; tests only).
    public var keepDetails = false
    public private(set) var lastDetails: SAPStepDetails?
    public var log: (String) -> Void = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }

    private var taskCursor: BatchCursor
    private var pairCursor: BatchCursor?
    private var started = Date()
    private var tokensSeen = 0

    /// `engine` must carry the adapter to train and no probes (the trainer installs its own).
    public init(engine: TrainingEngine, taskSet: [TrainingSample],
                pairs: [(chosen: TrainingSample, rejected: TrainingSample)], options: SAPOptions) throws {
        guard let adapter = engine.adapter else { throw LlamaError.invalidInput("SAP needs an engine with a LoRA adapter") }
        try options.validate(layers: engine.model.config.layers)
        guard !taskSet.isEmpty else { throw LlamaError.invalidInput("empty task set") }
        for (i, s) in taskSet.enumerated() where s.targetCount == 0 {
            throw LlamaError.invalidInput("task sample \(i) has no target token")
        }
        if !options.plainSFT && pairs.isEmpty { throw LlamaError.invalidInput("SAP needs at least one contrastive triple") }
        self.engine = engine
        self.adapter = adapter
        self.options = options
        self.taskSet = taskSet
        self.pairs = pairs
        weightOptimizer = Optimizer(kind: options.weightOptimizer, count: adapter.parameterCount)
        taskCursor = BatchCursor(count: taskSet.count, batchSize: options.batchSize, seed: options.seed, stream: 1)
        if options.plainSFT {
            probes = nil
            probeOptimizer = nil
        } else {
            let p = try ProbeSet(blocks: options.probeLayers.map { $0 + 1 }, config: engine.model.config)
            probes = p
            probeOptimizer = Optimizer(kind: options.probeOptimizer, count: p.buffer.count)
            pairCursor = BatchCursor(count: pairs.count, batchSize: options.contrastiveBatchSize, seed: options.seed, stream: 2)
        }
        engine.probes = probes
    }

    public var epoch: Int { taskCursor.epoch }

    /// Drops the probe (evaluation and export see theta alone).
    public func removeProbes() { engine.probes = nil }

    /// Mean ‖hidden‖ per token at the probe blocks on the base model (no adapter, no probe).
    func measureHiddenNorms(_ samples: [TrainingSample]) throws {
        guard let p = probes else { return }
        let out = try engine.model.forward(samples.map(\.tokens), options: ForwardOptions(logits: .none, captureBlocks: p.blocks))
        let C = engine.model.config.hiddenSize
        hiddenNorms = p.blocks.map { b in
            let h = out.hidden[b]!, n = h.count / C
            var s = 0.0
            for t in 0 ..< n {
                var q = 0.0
                for c in 0 ..< C { q += Double(h[t * C + c]) * Double(h[t * C + c]) }
                s += q.squareRoot()
            }
            return s / Double(max(n, 1))
        }
    }

    /// One SAP step (or one plain SFT step with `options.plainSFT`).
    @discardableResult
    public func trainStep() throws -> SAPStepRecord {
        let t0 = Date()
        if history.isEmpty { started = t0 }
        let config = engine.model.config
        let batchSamples = taskCursor.next().map { taskSet[$0] }
        let batch = try TrainingBatch(batchSamples, config: config)
        let taskWeights = batch.tokenWeights(.meanPerBatch)
        if step == 0 && probes != nil { try measureHiddenNorms(batchSamples) }
        engine.training = true
        // The perturbed and clean task passes share one dropout seed, so their LoRA dropout masks are
        // identical (METHODS.md 3.9.2): h_t is the finite difference of eps alone.
        let taskSeed = SeededOrder.derive(options.seed, step, 1)
        var phase: [String: Double] = [:]
        func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let s = Date()
            defer { phase[name, default: 0] += Date().timeIntervalSince(s) }
            return try body()
        }
        var tokens = batch.tokenCount
        let thetaNorm = adapter.buffer.norm(workers: engine.workers)
        var record = SAPStepRecord(step: step + 1, epoch: taskCursor.epoch, loss: 0, safetyLoss: nil, safetyGradNorm: nil,
                                   thetaNorm: thetaNorm, epsilon: nil, probeGradNorm: nil, probeNorm: nil, relativeProbeSize: nil,
                                   gradNorm: 0, learningRate: 0, tokens: 0, seconds: 0, phaseSeconds: [:])
        var details: SAPStepDetails?

        if let probes, let probeOptimizer, var cursor = pairCursor {
            // Paper order: the probe starts from zero, and the safety gradient is taken without it.
            if options.order == .paper { probes.buffer.values.update(repeating: 0) }
            let probeBefore = probes.buffer.snapshot()
            // 1. Contrastive safety gradient g and its normalised direction.
            let pairBatch = cursor.next().map { pairs[$0] }
            pairCursor = cursor
            let (safety, pairTokens) = try timed("contrastive") { try contrastiveGradient(pairBatch, seed: SeededOrder.derive(options.seed, step, 2)) }
            tokens += pairTokens
            let g = adapter.buffer.gradientVector()
            let gNorm = adapter.buffer.gradientNorm(workers: engine.workers)
            let inv = Float(1 / (gNorm + 1e-8))
            let gHat = g.map { $0 * inv }
            // 2. eps and the perturbed probe-only pass; restore by copy.
            let eps = Float(options.gradRate * thetaNorm)
            let hPert: [Float] = try timed("perturbed_probe_pass") {
                let saved = adapter.buffer.snapshot()
                adapter.buffer.addScaled(eps, direction: gHat)
                engine.zeroGradients()
                engine.dropoutSeed = taskSeed
                engine.forward(batch, tokenWeights: taskWeights)
                engine.backward(weightGradients: false)
                adapter.buffer.restore(saved)
                return probes.buffer.gradientVector()
            }
            tokens += batch.tokenCount
            var hClean: [Float]
            var loss: Double
            if options.order == .code {
                // 3. Clean pass: task loss, theta gradient and h_clean at (theta_t, v_t).
                engine.zeroGradients()
                engine.dropoutSeed = taskSeed
                loss = try timed("task_pass") { engine.lossAndGradients(batch, tokenWeights: taskWeights) }
                hClean = probes.buffer.gradientVector()
                try timed("task_pass") { (record.gradNorm, record.learningRate) = try stepWeights() }
                timed("probe_update") { updateProbe(probes, probeOptimizer, hClean: hClean, hPert: hPert) }
            } else {
                // Paper order: h_clean at v = 0 (probe-only pass), the probe update, then the task
                // step on the same batch with the new probe.
                engine.zeroGradients()
                engine.dropoutSeed = taskSeed
                hClean = timed("clean_probe_pass") {
                    engine.forward(batch, tokenWeights: taskWeights)
                    engine.backward(weightGradients: false)
                    return probes.buffer.gradientVector()
                }
                tokens += batch.tokenCount
                timed("probe_update") { updateProbe(probes, probeOptimizer, hClean: hClean, hPert: hPert) }
                engine.zeroGradients()
                engine.dropoutSeed = taskSeed
                loss = try timed("task_pass") { engine.lossAndGradients(batch, tokenWeights: taskWeights) }
                try timed("task_pass") { (record.gradNorm, record.learningRate) = try stepWeights() }
            }
            if keepDetails {
                details = SAPStepDetails(safetyGradient: g, epsilon: eps, probeBefore: probeBefore, probeGradPerturbed: hPert,
                                         probeGradClean: hClean, taskGradient: [], probeAfter: probes.buffer.snapshot())
            }
            record.loss = loss
            record.safetyLoss = safety
            record.safetyGradNorm = gNorm
            record.epsilon = Double(eps)
            var hn = 0.0
            for i in 0 ..< hClean.count { let d = Double(hClean[i]) - Double(hPert[i]); hn += d * d }
            record.probeGradNorm = hn.squareRoot()
            record.probeNorm = probes.buffer.norm()
            let C = probes.channels
            record.relativeProbeSize = probes.blocks.indices.map { i in
                var s = 0.0
                for c in 0 ..< C { s += Double(probes.vector(i)[c]) * Double(probes.vector(i)[c]) }
                return hiddenNorms.count > i && hiddenNorms[i] > 0 ? s.squareRoot() / hiddenNorms[i] : .nan
            }
        } else {
            engine.zeroGradients()
            engine.dropoutSeed = taskSeed
            record.loss = try timed("task_pass") { engine.lossAndGradients(batch, tokenWeights: taskWeights) }
            try timed("task_pass") { (record.gradNorm, record.learningRate) = try stepWeights() }
        }
        if keepDetails, details != nil { details!.taskGradient = lastTaskGradient }
        lastDetails = details
        step += 1
        tokensSeen += tokens
        record.tokens = tokens
        record.seconds = Date().timeIntervalSince(t0)
        record.phaseSeconds = phase
        history.append(record)
        if options.logEvery > 0 && (step % options.logEvery == 0 || step == options.maxSteps) { log(progressLine(record)) }
        return record
    }

    private var lastTaskGradient: [Float] = []

    /// Clips (optionally) and applies the optimiser to theta; returns the gradient norm before clipping and the LR.
    private func stepWeights() throws -> (Double, Double) {
        if keepDetails { lastTaskGradient = adapter.buffer.gradientVector() }
        let norm = adapter.buffer.gradientNorm(workers: engine.workers)
        let clip = options.maxGradNorm.map { AdamW.clipScale(norm: norm, maxNorm: $0) } ?? 1
        let lr = Double(options.learningRate) * options.schedule.factor(step: step)
        weightOptimizer.update(adapter.buffer, learningRate: Float(lr), gradScale: clip, workers: engine.workers)
        return (norm, lr)
    }

    /// v = 0, then v = OptimizerStep(grad = h_clean − h_pert) (moments persist), or the plain
    /// ascent v = beta·(h_pert − h_clean).
    private func updateProbe(_ probes: ProbeSet, _ opt: Optimizer, hClean: [Float], hPert: [Float]) {
        let n = probes.buffer.count
        let g = probes.buffer.gradientPointer, v = probes.buffer.valuePointer
        for i in 0 ..< n { g[i] = hClean[i] - hPert[i]; v[i] = 0 }
        switch options.probeUpdate {
        case .adam: opt.update(probes.buffer, learningRate: options.probeLearningRate)
        case .plain: for i in 0 ..< n { v[i] = -options.probeLearningRate * g[i] }
        }
        probes.buffer.zeroGradients()
    }

    /// l_con = mean_i −log sigmoid((S_c,i − S_r,i)/T) with S the summed (or mean) response log-likelihood
    /// (chosen and rejected packed into one batch, the probe in place); leaves grad_theta l_con in
    /// the adapter gradients (probe gradients zeroed). Returns the loss and the tokens processed.
    func contrastiveGradient(_ batchPairs: [(chosen: TrainingSample, rejected: TrainingSample)], seed: UInt64) throws -> (Double, Int) {
        let B = batchPairs.count
        let batch = try TrainingBatch(batchPairs.map(\.chosen) + batchPairs.map(\.rejected), config: engine.model.config)
        engine.zeroGradients()
        engine.dropoutSeed = seed
        let losses = engine.forward(batch)
        let mean = options.contrastiveReduction == .mean
        let sums = mean ? batch.sampleMeans(losses) : batch.sampleSums(losses)   // −S
        let T = options.temperature
        var loss = 0.0
        var weights = [Float](repeating: 0, count: 2 * B)
        for i in 0 ..< B {
            let d = (-sums[i] + sums[B + i]) / T
            loss += SAPMath.softplus(-d) / Double(B)
            // dl/dS_c = −sigmoid(−d)/(B·T), dl/dS_r = −dl/dS_c; token weights are −dl/dS.
            let w = SAPMath.sigmoid(-d) / (Double(B) * T)
            weights[i] = Float(w)
            weights[B + i] = Float(-w)
        }
        engine.backward(tokenWeights: mean ? batch.tokenWeights(sampleWeights: weights) : batch.tokenWeights(sumWeights: weights))
        probes?.buffer.zeroGradients()
        return (loss, batch.tokenCount)
    }

    /// Trains until `options.maxSteps` steps are done.
    @discardableResult
    public func run() throws -> [SAPStepRecord] {
        var out: [SAPStepRecord] = []
        while step < options.maxSteps { out.append(try trainStep()) }
        return out
    }

    /// Token-mean NLL over `samples` with the probe removed and dropout off (the paper's test loss).
    public func evaluate(_ samples: [TrainingSample], batchSize: Int = 8) throws -> Double {
        let savedProbes = engine.probes, wasTraining = engine.training
        engine.probes = nil
        engine.training = false
        defer { engine.probes = savedProbes; engine.training = wasTraining }
        var sum = 0.0, count = 0, i = 0
        while i < samples.count {
            let batch = try TrainingBatch(Array(samples[i ..< min(i + batchSize, samples.count)]), config: engine.model.config)
            let l = engine.losses(batch)
            for t in 0 ..< batch.tokenCount where batch.targets[t] != CrossEntropy.defaultIgnoreIndex { sum += Double(l[t]); count += 1 }
            i += batchSize
        }
        return count > 0 ? sum / Double(count) : .nan
    }

    func progressLine(_ r: SAPStepRecord) -> String {
        let elapsed = max(Date().timeIntervalSince(started), 1e-9)
        let eta = elapsed / Double(max(1, history.count)) * Double(max(0, options.maxSteps - step))
        var s = String(format: "step %d/%d  epoch %d  loss %.4f", r.step, options.maxSteps, r.epoch, r.loss)
        if let sl = r.safetyLoss { s += String(format: "  safety %.4f  eps %.2e  |h| %.2e  |v| %.3f", sl, r.epsilon ?? 0, r.probeGradNorm ?? 0, r.probeNorm ?? 0) }
        s += String(format: "  %.1f s/step  %.0f tok/s  ETA %@", r.seconds, Double(tokensSeen) / elapsed, SAPMath.duration(eta))
        return s
    }
}

enum SAPMath {
    /// log(1 + e^x), stable for any x.
    static func softplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }
    static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(t % 3600 / 60)m" : t >= 60 ? "\(t / 60)m\(t % 60)s" : "\(t)s"
    }
}
