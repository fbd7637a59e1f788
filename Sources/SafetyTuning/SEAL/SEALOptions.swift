import Foundation
import Llama

/// Settings of SEAL's selection phase (METHODS.md 4.6). Defaults follow the Llama-3 scripts except
/// where the CPU preset of METHODS.md 5.5 says otherwise (model LR 1e-4 and batch 16).
public struct SEALOptions: Codable, Equatable, Sendable {
    public enum SelectorOptimizer: String, Codable, Sendable, CaseIterable {
        /// Code: Adam (0.9, 0.95), eps 1e-8, no weight decay, gradient clipped at 10.
        case adam
        /// Algorithm 2 of the paper: plain SGD on the same gradient.
        case sgd
    }
    public enum Algorithm: String, Codable, Sendable, CaseIterable {
        /// Algorithm 2 / the code: the selector sees l(theta_k; z_j).
        case penalty
        /// Algorithm 1: an auxiliary adapter theta^ trains on the weighted fine-tuning loss alone
        /// and the selector sees l(theta_k; z_j) − l(theta^_k; z_j).
        case auxiliary
    }

    public var parameterisation: DataSelector.Parameterisation = .softmax
    public var selectorOptimizer: SelectorOptimizer = .adam
    public var selectorLearningRate: Float = 5e-3
    /// Global-norm clip of the selector gradient (code 10 for Adam; nil: none).
    public var selectorMaxGradNorm: Double? = 10
    public var algorithm: Algorithm = .penalty
    /// Model (LoRA) optimiser: Adam (0.9, 0.95), eps 1e-8, wd 0 (code), LR 1e-4 (CPU preset; code 1e-5).
    public var learningRate: Float = 1e-4
    public var modelOptimizer: OptimizerKind = .adamW(beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0)
    public var maxGradNorm: Double? = 1
    /// Pairs (safe, fine-tuning) per step (code 64; CPU preset 16).
    public var batchSize = 16
    /// Safe rows per step when it differs from `batchSize` (nil: pairs, as in the code). A smaller
    /// safe batch makes a step cheaper while every fine-tuning row still gets its selector update.
    public var safeBatchSize: Int? = nil
    public var epochs = 3
    /// u at epoch 0 and its decrease at the start of each later epoch (u = 1, 0.97, 0.94).
    public var upperWeight: Double = 1
    public var upperWeightDecay: Double = 0.03
    /// Stop after this many steps in total (nil: all epochs).
    public var maxSteps: Int? = nil
    public var seed: UInt64 = 0
    public var logEvery = 1

    public init() {}

    public func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw LlamaError.invalidConfig(what) } }
        try check(selectorLearningRate.isFinite && selectorLearningRate >= 0, "selector learning rate must be >= 0")
        try check(learningRate.isFinite && learningRate >= 0, "learning rate must be >= 0")
        try check(batchSize >= 1 && epochs >= 1, "batch size and epochs must be positive")
        try check(safeBatchSize.map { $0 >= 1 } ?? true, "safe batch size must be positive")
        try check(upperWeight.isFinite && upperWeightDecay.isFinite, "upper-level weight and decay must be finite")
        try check(maxGradNorm.map { $0 > 0 } ?? true, "max grad norm must be positive")
        try check(selectorMaxGradNorm.map { $0 > 0 } ?? true, "selector max grad norm must be positive")
        try check(maxSteps.map { $0 >= 0 } ?? true, "max steps must be >= 0")
    }

    /// u during `epoch` (0-based).
    public func upperWeight(epoch: Int) -> Double { upperWeight - Double(epoch) * upperWeightDecay }
}

/// What one SEAL selection step did.
public struct SEALStepRecord: Codable, Equatable, Sendable {
    public var step: Int
    public var epoch: Int
    public var upperWeight: Double
    /// mean_i l_safe[i] and mean_k l_j[k] at theta_k (before the step).
    public var safeLoss: Double
    public var fineTuneLoss: Double
    /// The model loss u·mean l_safe + (1 − u)·mean w·l_j.
    public var modelLoss: Double
    public var selectorLoss: Double
    public var gradNorm: Double
    public var selectorGradNorm: Double
    /// Auxiliary model's mean loss on the fine-tuning batch (Algorithm 1 only).
    public var auxiliaryLoss: Double?
    public var tokens: Int
    public var seconds: Double
}
