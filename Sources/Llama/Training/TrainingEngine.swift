import Foundation
import Kernels

/// Seconds spent in the main kernel families during the passes of a `TrainingEngine`.
public final class TrainingProfile {
    /// Engine GEMMs (base projections and LoRA), excluding the cross-entropy's own GEMMs.
    public var gemm = 0.0
    public var attention = 0.0
    /// The fused output projection + cross-entropy (GEMM-dominated: 2–6·N·V·C FLOPs).
    public var crossEntropy = 0.0
    public init() {}
}

/// Forward and backward passes of a frozen base model with LoRA adapters and hidden-state probes.
///
/// Base weights are never written; gradients flow through them to the adapter (`adapter.buffer`)
/// and probe (`probes.buffer`) gradients, which `backward` ACCUMULATES (call `zeroGradients`
/// between steps; gradient accumulation is several backwards before one optimiser step).
///
/// The loss is L = Σ_t w[t]·nll[t] for caller-chosen token weights w (see `TrainingBatch.tokenWeights`):
/// token mean, per-sample means (SEAL), per-sample sums of sequence log-likelihoods (SAP).
/// Every kernel splits independent outputs, so losses and gradients are bitwise identical for any
/// `workers`.
public final class TrainingEngine: @unchecked Sendable {
    public let model: LlamaModel
    public let adapter: LoRAAdapter?
    /// Probe vectors added after chosen blocks (nil: none). May be swapped between passes.
    public var probes: ProbeSet?
    /// Keep only the residual stream and recompute each block's forward during backward.
    public var recompute: Bool
    public var workers: Int?
    /// Dropout active (training) or not (evaluation).
    public var training = true
    /// Seed of the dropout masks; the same seed reproduces the same masks (see `DropoutMask`).
    public var dropoutSeed: UInt64 = 0

    /// When set, time spent in GEMMs, attention and the fused cross-entropy accumulates here.
    public var profile: TrainingProfile?

    var arena: ActivationArena?
    var current: TrainingBatch?
    var keptActivations = false
    var dhiddenReady = false

    public init(model: LlamaModel, adapter: LoRAAdapter? = nil, probes: ProbeSet? = nil, recompute: Bool = false,
                workers: Int? = nil) {
        if let adapter { precondition(adapter.modelConfig == model.config, "TrainingEngine: adapter built for another model") }
        self.model = model
        self.adapter = adapter
        self.probes = probes
        self.recompute = recompute
        self.workers = workers
    }

    /// Bytes of the activation arena currently allocated.
    public var activationBytes: Int { arena?.bytes ?? 0 }

    /// Bytes of the activation arena a training forward over `tokens` rows allocates (all block
    /// activations kept, or only the residual stream with `recompute`). The frozen base weights,
    /// adapter and optimiser state come on top; the cross-entropy and attention scratch come from
    /// `Workspace` (tokenBlock·vocabChunk floats for the former).
    public static func plannedActivationBytes(config: LlamaConfig, tokens: Int, recompute: Bool, loraRank: Int) -> Int {
        ActivationArena.plannedBytes(config: config, tokens: tokens, keepsAll: !recompute, loraRank: loraRank)
    }

    public func zeroGradients() {
        adapter?.buffer.zeroGradients()
        probes?.buffer.zeroGradients()
    }

    // MARK: - Public passes

    /// Runs the forward pass and returns the per-token losses (N, 0 for rows without a target).
    ///
    /// With `keepActivations` the pass saves what `backward` needs (all of it, or only the
    /// residual stream when `recompute`). With `tokenWeights` the output-head gradient is formed
    /// in the same fused cross-entropy pass (cheaper than passing the weights to `backward`).
    @discardableResult
    public func forward(_ batch: TrainingBatch, tokenWeights: [Float]? = nil, keepActivations: Bool = true) -> [Float] {
        let c = model.config, N = batch.tokenCount, C = c.hiddenSize, L = c.layers
        if let w = tokenWeights { precondition(w.count == N, "TrainingEngine.forward: \(w.count) token weights for \(N) tokens") }
        let a = prepareArena(tokens: N, keepAll: keepActivations && !recompute)
        let w = workers
        batch.ids.withUnsafeBufferPointer { ids in
            Embedding.forward(out: a.residuals[0], ids: ids.baseAddress!, table: model.weights.embedding, tokens: N,
                              vocab: c.vocabSize, channels: C, workers: w)
        }
        addProbe(block: 0, a.residuals[0], tokens: N)
        batch.positions.withUnsafeBufferPointer { pos in
            for l in 0 ..< L {
                blockForward(l, a.block(l), out: a.residuals[l + 1], arena: a, batch: batch, positions: pos.baseAddress!)
                addProbe(block: l + 1, a.residuals[l + 1], tokens: N)
            }
        }
        RMSNorm.forward(out: a.xnF, rstd: a.rstdF, inp: a.residuals[L], weight: outputNormWeight, rows: N, channels: C,
                        eps: c.rmsEps, workers: w)
        crossEntropy(batch, arena: a, tokenWeights: tokenWeights)
        current = batch
        keptActivations = keepActivations
        dhiddenReady = tokenWeights != nil
        return Array(UnsafeBufferPointer(start: a.losses, count: N))
    }

    /// Backpropagates L = Σ_t w[t]·nll[t] of the last `forward` (which must have kept activations).
    ///
    /// `tokenWeights`: the weights, or nil to reuse those given to `forward`. May be called several
    /// times after one forward (e.g. SAP: weights that depend on the losses).
    /// `weightGradients == false` skips every weight-gradient GEMM (LoRA A/B, norm weights) and stops
    /// at the lowest probe: only probe gradients are accumulated (SAP's probe pass).
    /// ACCUMULATES into `adapter.buffer.gradients` and `probes.buffer.gradients`.
    public func backward(tokenWeights: [Float]? = nil, weightGradients: Bool = true) {
        guard let batch = current, let a = arena, keptActivations else {
            preconditionFailure("TrainingEngine.backward: no forward pass with kept activations")
        }
        let c = model.config, N = batch.tokenCount, C = c.hiddenSize, L = c.layers, w = workers
        if let tw = tokenWeights {
            precondition(tw.count == N, "TrainingEngine.backward: \(tw.count) token weights for \(N) tokens")
            crossEntropy(batch, arena: a, tokenWeights: tw)
        } else {
            precondition(dhiddenReady, "TrainingEngine.backward: token weights were given to neither forward nor backward")
        }
        let wantNorms = weightGradients && adapter?.config.trainNorms == true
        let lowest = weightGradients ? 0 : (probes?.blocks.first ?? L + 1)
        if lowest > L { return }
        // final: xnF = rmsnorm(x_L) -> dx_L
        a.dx.update(repeating: 0, count: N * C)
        RMSNorm.backward(dinp: a.dx, dweight: wantNorms ? adapter!.buffer.gradientPointer + adapter!.outputNormOffset! : nil,
                         dout: a.dhidden, inp: a.residuals[L], weight: outputNormWeight, rstd: a.rstdF, rows: N,
                         channels: C, workers: w)
        batch.positions.withUnsafeBufferPointer { pos in
            var b = L
            while b >= lowest {
                accumulateProbeGradient(block: b, a.dx, tokens: N)
                if b == lowest { break }
                let l = b - 1
                let acts: BlockActivations
                if a.keepsAll {
                    acts = a.block(l)
                } else {
                    acts = a.block(l)
                    blockForward(l, acts, out: a.recomputeOut, arena: a, batch: batch, positions: pos.baseAddress!)
                }
                blockBackward(l, acts, arena: a, batch: batch, positions: pos.baseAddress!, weightGradients: weightGradients)
                b -= 1
            }
        }
    }

    /// Forward + backward of L = Σ_t w[t]·nll[t]; returns L (summed in Double in token order).
    @discardableResult
    public func lossAndGradients(_ batch: TrainingBatch, tokenWeights: [Float], weightGradients: Bool = true) -> Double {
        let losses = forward(batch, tokenWeights: tokenWeights)
        backward(weightGradients: weightGradients)
        return weightedSum(losses, tokenWeights)
    }

    /// Per-token losses without keeping activations (evaluation; dropout follows `training`).
    public func losses(_ batch: TrainingBatch) -> [Float] {
        forward(batch, keepActivations: false)
    }

    /// Mean response NLL of every sample of the batch (0 for a sample without targets).
    public func sampleMeanNLL(_ batch: TrainingBatch) -> [Double] {
        let l = losses(batch)
        return TrainingEngine.sampleMeans(l, batch)
    }

    /// Log-likelihood log p(response | prompt) = −Σ nll over each sample's target tokens.
    public func sequenceLogLikelihoods(_ batch: TrainingBatch) -> [Double] {
        TrainingEngine.sampleSums(losses(batch), batch).map { -$0 }
    }

    package static func sampleMeans(_ losses: [Float], _ batch: TrainingBatch) -> [Double] {
        losses.withUnsafeBufferPointer { l in
            batch.targets.withUnsafeBufferPointer { t in
                CrossEntropy.sequenceMeans(losses: l.baseAddress!, targets: t.baseAddress!, sequenceLengths: batch.sequenceLengths)
            }
        }
    }

    package static func sampleSums(_ losses: [Float], _ batch: TrainingBatch) -> [Double] {
        (0 ..< batch.sampleCount).map { s in
            var sum = 0.0
            for t in batch.sequenceStarts[s] ..< batch.sequenceStarts[s + 1] where batch.targets[t] != CrossEntropy.defaultIgnoreIndex {
                sum += Double(losses[t])
            }
            return sum
        }
    }

    func weightedSum(_ losses: [Float], _ weights: [Float]) -> Double {
        var s = 0.0
        for t in 0 ..< losses.count { s += Double(weights[t]) * Double(losses[t]) }
        return s
    }

    // MARK: - Pieces

    func prepareArena(tokens N: Int, keepAll: Bool) -> ActivationArena {
        if let a = arena, a.tokens >= N, a.keepsAll || !keepAll { return a }
        let rank = adapter?.config.targets.isEmpty == false ? adapter!.config.rank : 0
        let previous = arena?.tokens ?? 0
        arena = nil
        let a = ActivationArena(config: model.config, tokens: max(N, previous), keepsAll: keepAll, loraRank: rank)
        arena = a
        return a
    }

    var outputNormWeight: UnsafeMutablePointer<Float> {
        if let ad = adapter, let o = ad.outputNormOffset { return ad.buffer.valuePointer + o }
        return model.weights.outputNorm
    }
    func attnNormWeight(_ l: Int) -> UnsafeMutablePointer<Float> {
        if let ad = adapter, let o = ad.attnNormOffsets { return ad.buffer.valuePointer + o[l] }
        return model.weights.attnNorm(l)
    }
    func ffnNormWeight(_ l: Int) -> UnsafeMutablePointer<Float> {
        if let ad = adapter, let o = ad.ffnNormOffsets { return ad.buffer.valuePointer + o[l] }
        return model.weights.ffnNorm(l)
    }

    func crossEntropy(_ batch: TrainingBatch, arena a: ActivationArena, tokenWeights: [Float]?) {
        let c = model.config, N = batch.tokenCount
        batch.targets.withUnsafeBufferPointer { tg in
            if let tw = tokenWeights {
                tw.withUnsafeBufferPointer { a.weights.update(from: $0.baseAddress!, count: N) }
                a.dhidden.update(repeating: 0, count: N * c.hiddenSize)
            }
            let t0 = profileStart()
            defer { profileEnd(t0, \.crossEntropy) }
            CrossEntropy.forwardBackward(losses: a.losses, dhidden: tokenWeights == nil ? nil : a.dhidden, dweight: nil,
                                         hidden: a.xnF, weight: model.weights.output, targets: tg.baseAddress!,
                                         tokenWeights: tokenWeights == nil ? nil : UnsafePointer(a.weights),
                                         tokens: N, vocab: c.vocabSize, channels: c.hiddenSize, workers: workers)
        }
    }

    /// x[t, :] += p_b for every token, when a probe sits after `block`.
    func addProbe(block: Int, _ x: UnsafeMutablePointer<Float>, tokens N: Int) {
        guard let pr = probes, let i = pr.index(ofBlock: block) else { return }
        let p = pr.vector(i), C = pr.channels
        Parallel.forEach(N, workers: N * C >= 1 << 15 ? workers : 1) { t in
            let row = x + t * C
            for c in 0 ..< C { row[c] += p[c] }
        }
    }

    /// dp_b += Σ_t dx[t, :] (each channel summed in token order in Double: deterministic).
    func accumulateProbeGradient(block: Int, _ dx: UnsafeMutablePointer<Float>, tokens N: Int) {
        guard let pr = probes, let i = pr.index(ofBlock: block) else { return }
        let g = pr.gradient(i), C = pr.channels
        var sums = [Double](repeating: 0, count: C)
        sums.withUnsafeMutableBufferPointer { s in
            for t in 0 ..< N {
                let row = dx + t * C
                for c in 0 ..< C { s[c] += Double(row[c]) }
            }
            for c in 0 ..< C { g[c] += Float(s[c]) }
        }
    }
}
