import Foundation
import Kernels

/// Trainable floats and their gradients as two flat arenas of equal length (llm.c style).
///
/// This is the "one flat vector" view the methods need: global norms, `theta += eps·direction`
/// in place, exact snapshot/restore, and the gradient as one vector. All reductions are
/// deterministic for any worker count (`AdamW.sumOfSquares`).
public final class ParameterBuffer: @unchecked Sendable {
    public let count: Int
    public let values: UnsafeMutableBufferPointer<Float>
    public let gradients: UnsafeMutableBufferPointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "ParameterBuffer: negative count")
        self.count = count
        values = .allocate(capacity: max(count, 1))
        gradients = .allocate(capacity: max(count, 1))
        values.initialize(repeating: 0)
        gradients.initialize(repeating: 0)
    }

    deinit { values.deallocate(); gradients.deallocate() }

    public var valuePointer: UnsafeMutablePointer<Float> { values.baseAddress! }
    public var gradientPointer: UnsafeMutablePointer<Float> { gradients.baseAddress! }

    /// ‖θ‖₂ over every value.
    public func norm(workers: Int? = nil) -> Double {
        AdamW.sumOfSquares(valuePointer, count: count, workers: workers).squareRoot()
    }

    /// ‖g‖₂ over every gradient.
    public func gradientNorm(workers: Int? = nil) -> Double {
        AdamW.sumOfSquares(gradientPointer, count: count, workers: workers).squareRoot()
    }

    /// θ[i] += scale·direction[i] (in place; `direction` has `count` floats).
    public func addScaled(_ scale: Float, direction: UnsafePointer<Float>) {
        let p = valuePointer
        for i in 0 ..< count { p[i] += scale * direction[i] }
    }

    public func addScaled(_ scale: Float, direction: [Float]) {
        precondition(direction.count == count, "ParameterBuffer.addScaled: direction has \(direction.count) floats, expected \(count)")
        direction.withUnsafeBufferPointer { addScaled(scale, direction: $0.baseAddress!) }
    }

    /// A copy of the values, for an exact `restore`.
    public func snapshot() -> [Float] { Array(values) }

    /// Puts back values taken by `snapshot` (a copy, bit for bit; never a subtraction).
    public func restore(_ saved: [Float]) {
        precondition(saved.count == count, "ParameterBuffer.restore: snapshot has \(saved.count) floats, expected \(count)")
        saved.withUnsafeBufferPointer { valuePointer.update(from: $0.baseAddress!, count: count) }
    }

    /// A copy of the gradients.
    public func gradientVector() -> [Float] { Array(gradients) }

    public func zeroGradients() { gradients.update(repeating: 0) }
}
