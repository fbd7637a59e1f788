import Foundation
import Llama

/// Settings of SAP (METHODS.md 3.6). Defaults are the official code's (S7) with its data bugs fixed.
public struct SAPOptions: Codable, Equatable, Sendable {
    /// Where the probe update sits in the step (METHODS.md 3.5, 3.6).
    public enum Order: String, Codable, Sendable, CaseIterable {
        /// Official code: contrastive and probe gradients at the previous step's probe v_t; the task
        /// step uses v_t; the probe computed on this batch acts on the next one.
        case code
        /// Algorithm 1 as quoted (S10): v = 0, probe gradients and update, then the task step on the
        /// same batch with the new probe (one extra probe-only pass).
        case paper
    }
    /// How the probe is set from h = grad_v L(theta) − grad_v L(theta + dW) (= −grad_v L_su).
    public enum ProbeUpdate: String, Codable, Sendable, CaseIterable {
        /// v = 0, then one AdamW step with persistent moments (code): magnitude ≈ probeLR per coordinate.
        case adam
        /// v = probeLR · grad_v L_su (the paper's plain ascent step; tiny, since grad_v L_su scales with eps).
        case plain
    }
    /// How a response's log-likelihood S enters the contrastive loss.
    public enum ContrastiveReduction: String, Codable, Sendable, CaseIterable {
        /// S = Σ_t log p (the code): long harmful completions make S_c − S_r large and saturate the
        /// sigmoid, so pairs of very unequal length give almost no gradient.
        case sum
        /// S = mean_t log p (length-normalised, as the paper's L(W, D_safe) − L(W, D_harmful) reads).
        case mean
    }
    /// Probe blocks by relative depth of a 32-block model (METHODS.md 5.4).
    public enum ProbePreset: String, Codable, Sendable, CaseIterable {
        /// Code: layers 3 and 9 of 32 (0-based).
        case code
        /// Paper*: layers 11...20 of 32.
        case paper

        public var layersOf32: [Int] { self == .code ? [3, 9] : Array(11 ... 20) }

        /// 0-based layer indices of an L-block model: round(l·L/32), clamped, deduplicated.
        public func layers(blocks L: Int) -> [Int] {
            Array(Set(layersOf32.map { max(0, min(L - 1, Int((Double($0) * Double(L) / 32).rounded()))) })).sorted()
        }
    }

    /// Learning rate of the LoRA weights (alpha in the paper); AdamW (0.9, 0.999), eps 1e-8, wd 0.01.
    public var learningRate: Float = 1e-4
    public var schedule: LRSchedule = .constant
    public var weightOptimizer: OptimizerKind = .adamWDefault
    /// beta: probe learning rate (AdamW from zero each step, same defaults).
    public var probeLearningRate: Float = 0.05
    public var probeOptimizer: OptimizerKind = .adamWDefault
    /// eps_t = gradRate · ‖theta_t‖.
    public var gradRate: Double = 2e-5
    /// Contrastive temperature T.
    public var temperature: Double = 1
    public var contrastiveReduction: ContrastiveReduction = .sum
    public var order: Order = .code
    public var probeUpdate: ProbeUpdate = .adam
    /// 0-based layers whose output receives a probe (ProbeSet block = layer + 1).
    public var probeLayers: [Int] = []
    /// Task samples per step (code 10).
    public var batchSize = 10
    /// Triples per contrastive batch (code 8), cycled through a seeded order.
    public var contrastiveBatchSize = 8
    public var maxSteps = 100
    /// Global-norm clipping of the task gradient (code: none).
    public var maxGradNorm: Double? = nil
    public var seed: UInt64 = 0
    /// Plain SFT with the same loop, data order and optimiser (the baseline arm): no contrastive
    /// pass, no perturbation, no probe.
    public var plainSFT = false
    /// Progress line every this many steps (0: silent).
    public var logEvery = 1

    public init() {}

    public func validate(layers L: Int) throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw LlamaError.invalidConfig(what) } }
        try check(learningRate.isFinite && learningRate >= 0, "learning rate \(learningRate) must be >= 0")
        try check(probeLearningRate.isFinite && probeLearningRate >= 0, "probe learning rate must be >= 0")
        try check(gradRate.isFinite && gradRate >= 0, "grad rate \(gradRate) must be >= 0")
        try check(temperature.isFinite && temperature > 0, "temperature \(temperature) must be positive")
        try check(batchSize >= 1 && contrastiveBatchSize >= 1, "batch sizes must be positive")
        try check(maxSteps >= 0, "steps must be >= 0")
        try check(maxGradNorm.map { $0 > 0 } ?? true, "max grad norm must be positive")
        if !plainSFT {
            try check(!probeLayers.isEmpty, "no probe layers")
            try check(probeLayers.allSatisfy { $0 >= 0 && $0 < L }, "probe layers \(probeLayers) must be within 0..<\(L)")
        }
    }
}

/// What one SAP step did (all norms global over the flattened tensors).
public struct SAPStepRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    /// Token-mean task NLL of the batch at theta_t with the probe in place (the loss the step descends).
    public var loss: Double
    /// Contrastive safety loss mean_i −log sigmoid((S_c − S_r)/T) at theta_t (nil in plain SFT).
    public var safetyLoss: Double?
    /// ‖grad_theta l_con‖, ‖theta_t‖ and the perturbation radius eps_t = gradRate·‖theta_t‖.
    public var safetyGradNorm: Double?
    public var thetaNorm: Double
    public var epsilon: Double?
    /// ‖h_clean − h_pert‖ (the probe's raw gradient) and ‖v‖ after the update.
    public var probeGradNorm: Double?
    public var probeNorm: Double?
    /// ‖v_b‖ / mean token ‖hidden_b‖ at each probe block (hidden norms measured once on the base model).
    public var relativeProbeSize: [Double]?
    /// ‖grad_theta L‖ of the task step before clipping.
    public var gradNorm: Double
    public var learningRate: Double
    /// Tokens through the engine this step (task, perturbed task, contrastive).
    public var tokens: Int
    public var seconds: Double
    /// Wall time of the step's parts: contrastive pass, perturbed probe pass, the task pass (what a
    /// plain SFT step does: forward + backward + optimiser) and the probe-only clean pass (paper order).
    public var phaseSeconds: [String: Double]
}

/// Internals of the last step, kept when `SAPTrainer.keepDetails` is set (tests compare them
/// with the Double reference).
public struct SAPStepDetails: Sendable {
    public var safetyGradient: [Float]
    public var epsilon: Float
    public var probeBefore: [Float]
    public var probeGradPerturbed: [Float]
    public var probeGradClean: [Float]
    public var taskGradient: [Float]
    public var probeAfter: [Float]
}
