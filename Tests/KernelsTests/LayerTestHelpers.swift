import Kernels
import TestSupport
import XCTest

/// Sizes around the vector width: 1, lanes − 1, lanes, lanes + 1, 2·lanes + 3 and primes.
let laneEdgeSizes: [Int] = Array(Set([1, 2, vLanes - 1, vLanes, vLanes + 1, 2 * vLanes + 3, 13, 31])).filter { $0 >= 1 }.sorted()

/// Random-projection loss L = Σ g ⊙ out, the scalar whose gradient backward kernels receive as dout = g.
func projection(_ out: [Double], _ g: [Double]) -> Double {
    zip(out, g).reduce(0) { $0 + $1.0 * $1.1 }
}

extension Array where Element == Float {
    var doubles: [Double] { map(Double.init) }
    /// Bit patterns, for bitwise comparisons.
    var bits: [UInt32] { map(\.bitPattern) }
}

/// Runs `body` with mutable pointers to the arrays (for calling pointer kernels from tests).
func withPointers<R>(_ a: inout [Float], _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
    a.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
}
