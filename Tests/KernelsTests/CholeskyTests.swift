import Kernels
import TestSupport
import XCTest

final class CholeskyTests: XCTestCase {
    /// A = MᵀM/m + δI for random M: solves match a plain Double elimination, and the result does not
    /// depend on the worker count; sizes cover the SIMD tail and the parallel threshold.
    func testSolveMatchesGaussianEliminationForAnyWorkerCount() {
        var rng = SeededRNG(seed: 41)
        for n in [1, 2, 7, 16, 17, 33, 130] {
            let m = n + 5
            let x = (0 ..< m * n).map { _ in rng.normal() }
            var a = [Double](repeating: 0, count: n * n)
            for r in 0 ..< m { for i in 0 ..< n { for j in 0 ..< n { a[i * n + j] += x[r * n + i] * x[r * n + j] / Double(m) } } }
            for i in 0 ..< n { a[i * n + i] += 0.1 }
            let b = (0 ..< n).map { _ in rng.normal() }
            let one = Cholesky.solve(a, b, n: n, workers: 1)!
            XCTAssertEqual(Cholesky.solve(a, b, n: n, workers: 2)!, one, "n \(n): worker count changed the result")
            let reference = gaussianSolve(a, b, n: n)
            for i in 0 ..< n { XCTAssertEqual(one[i], reference[i], accuracy: 1e-9 * max(1, abs(reference[i])), "n \(n) [\(i)]") }
        }
        // Large enough for the parallel split of a column: residual check.
        let n = 600
        var a = [Double](repeating: 0, count: n * n)
        for i in 0 ..< n { for j in 0 ..< n { a[i * n + j] = 1 / Double(1 + abs(i - j)) + (i == j ? Double(n) : 0) } }
        let b = (0 ..< n).map { Double($0 % 7) - 3 }
        let s = Cholesky.solve(a, b, n: n, workers: 2)!
        XCTAssertEqual(s, Cholesky.solve(a, b, n: n, workers: 1)!)
        for i in 0 ..< n { XCTAssertEqual((0 ..< n).map { a[i * n + $0] * s[$0] }.reduce(0, +), b[i], accuracy: 1e-9) }
    }

    func testIndefiniteMatrixIsRefused() {
        XCTAssertNil(Cholesky.solve([1, 2, 2, 1], [1, 1], n: 2))
        XCTAssertNil(Cholesky.solve([0], [1], n: 1))
        XCTAssertEqual(Cholesky.solve([4], [2], n: 1), [0.5])
    }

    /// Gaussian elimination with partial pivoting, the independent reference.
    func gaussianSolve(_ a0: [Double], _ b0: [Double], n: Int) -> [Double] {
        var a = a0, b = b0
        for c in 0 ..< n {
            let p = (c ..< n).max { abs(a[$0 * n + c]) < abs(a[$1 * n + c]) }!
            if p != c { for k in 0 ..< n { a.swapAt(c * n + k, p * n + k) }; b.swapAt(c, p) }
            for r in c + 1 ..< n {
                let f = a[r * n + c] / a[c * n + c]
                for k in c ..< n { a[r * n + k] -= f * a[c * n + k] }
                b[r] -= f * b[c]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for i in stride(from: n - 1, through: 0, by: -1) {
            var v = b[i]
            for k in i + 1 ..< n { v -= a[i * n + k] * x[k] }
            x[i] = v / a[i * n + i]
        }
        return x
    }
}
