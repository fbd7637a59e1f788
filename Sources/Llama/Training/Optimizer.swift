import Foundation
import Kernels

/// Learning-rate multiplier per optimiser step (0-based `step`), as the Hugging Face schedulers
/// (`get_constant_schedule_with_warmup`, `get_cosine_schedule_with_warmup`, ...) define them.
public enum LRSchedule: Codable, Equatable, Sendable {
    case constant
    /// step / warmup during warmup, then 1.
    case linearWarmup(warmupSteps: Int)
    /// Warmup, then linear decay to 0 at `totalSteps`.
    case linearDecay(warmupSteps: Int, totalSteps: Int)
    /// Warmup, then minRatio + (1 − minRatio)·½(1 + cos(π·progress)) down to minRatio at `totalSteps`.
    case cosine(warmupSteps: Int, totalSteps: Int, minRatio: Double)

    public func factor(step: Int) -> Double {
        func warm(_ w: Int) -> Double? { step < w ? Double(step) / Double(max(1, w)) : nil }
        switch self {
        case .constant: return 1
        case .linearWarmup(let w): return warm(w) ?? 1
        case .linearDecay(let w, let total):
            if let f = warm(w) { return f }
            return max(0, Double(total - step) / Double(max(1, total - w)))
        case .cosine(let w, let total, let minRatio):
            if let f = warm(w) { return f }
            let progress = min(1, Double(step - w) / Double(max(1, total - w)))
            return minRatio + (1 - minRatio) * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}

/// Which update rule and its hyperparameters (the learning rate comes per step from the trainer).
public enum OptimizerKind: Codable, Equatable, Sendable {
    case adamW(beta1: Float, beta2: Float, eps: Float, weightDecay: Float)
    /// PyTorch SGD: g += wd·θ; buf = momentum·buf + g (buf = g on the first step); θ −= lr·buf.
    case sgd(momentum: Float, weightDecay: Float)

    public static let adamWDefault = OptimizerKind.adamW(beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01)
}

/// Optimiser state over one flat `ParameterBuffer` (moments in two arrays of the same length).
public final class Optimizer {
    public let kind: OptimizerKind
    public let count: Int
    /// AdamW: first and second moments; SGD: momentum buffer in `m`.
    public internal(set) var m: [Float], v: [Float]
    /// Steps taken so far.
    public internal(set) var step = 0

    public init(kind: OptimizerKind, count: Int) {
        self.kind = kind
        self.count = count
        m = [Float](repeating: 0, count: count)
        v = [Float](repeating: 0, count: kind.usesSecondMoment ? count : 0)
    }

    /// One update of `params` from its gradients times `gradScale` (the clipping factor).
    public func update(_ params: ParameterBuffer, learningRate: Float, gradScale: Float = 1, workers: Int? = nil) {
        precondition(params.count == count, "Optimizer.update: \(params.count) parameters, state for \(count)")
        step += 1
        switch kind {
        case let .adamW(b1, b2, eps, wd):
            m.withUnsafeMutableBufferPointer { mp in
                v.withUnsafeMutableBufferPointer { vp in
                    AdamW.step(param: params.valuePointer, grad: params.gradientPointer, m: mp.baseAddress!, v: vp.baseAddress!,
                               count: count, step: step,
                               options: AdamW.Options(learningRate: learningRate, beta1: b1, beta2: b2, eps: eps, weightDecay: wd),
                               gradScale: gradScale, workers: workers)
                }
            }
        case let .sgd(momentum, wd):
            let p = params.valuePointer, g = params.gradientPointer, first = step == 1
            m.withUnsafeMutableBufferPointer { buf in
                for i in 0 ..< count {
                    var d = gradScale * g[i]
                    if wd != 0 { d += wd * p[i] }
                    if momentum != 0 {
                        buf[i] = first ? d : momentum * buf[i] + d
                        d = buf[i]
                    }
                    p[i] -= learningRate * d
                }
            }
        }
    }

    /// Restores state saved from `m`, `v` and `step`.
    func restore(m: [Float], v: [Float], step: Int) throws {
        guard m.count == self.m.count, v.count == self.v.count, step >= 0 else {
            throw LlamaError.invalidInput("optimizer state has \(m.count)/\(v.count) floats, expected \(self.m.count)/\(self.v.count)")
        }
        self.m = m
        self.v = v
        self.step = step
    }
}

extension OptimizerKind {
    var usesSecondMoment: Bool { if case .adamW = self { return true } else { return false } }
}
