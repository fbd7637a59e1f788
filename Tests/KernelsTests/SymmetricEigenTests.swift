import Foundation
import Kernels
import TestSupport
import XCTest

final class SymmetricEigenTests: XCTestCase {
    /// Random symmetric matrices with planted eigenvalues (incl. a tight cluster and a negative
    /// one): top-k values against the Jacobi reference, residual ||Av - λv|| and orthonormality.
    func testTopEigenpairsMatchJacobiReference() {
        var rng = SeededRNG(seed: 3)
        for d in [1, 2, 3, 7, 30] {
            let lambdas = (0 ..< d).map { i -> Double in
                i < 3 ? 10 - 1e-7 * Double(i) : (i == d - 1 ? -4 : Double(d - i) / Double(d)) }
            // A = Q diag(λ) Qᵀ with a random orthogonal Q (Gram-Schmidt).
            var q = [[Double]]()
            for _ in 0 ..< d {
                var v = (0 ..< d).map { _ in rng.normal() }
                for _ in 0 ..< 2 { for b in q { let dot = zip(b, v).reduce(0) { $0 + $1.0 * $1.1 }; for t in 0 ..< d { v[t] -= dot * b[t] } } }
                let nv = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                q.append(v.map { $0 / nv })
            }
            var a = [Double](repeating: 0, count: d * d)
            for i in 0 ..< d { for j in 0 ..< d { for t in 0 ..< d { a[i * d + j] += q[t][i] * lambdas[t] * q[t][j] } } }
            let k = min(d, 5)
            let (values, vectors) = SymmetricEigen.top(k, of: a, dimension: d)
            let ref = SymmetricEigen.jacobiReference(a, dimension: d)
            let norm = lambdas.map(abs).max()!
            let tol = 50 * Double(d) * Double.ulpOfOne * norm
            for j in 0 ..< k {
                XCTAssertEqual(values[j], ref.values[j], accuracy: tol, "d=\(d) lambda_\(j)")
                var resid = 0.0
                for i in 0 ..< d {
                    var s = 0.0
                    for t in 0 ..< d { s += a[i * d + t] * vectors[j * d + t] }
                    resid = max(resid, abs(s - values[j] * vectors[j * d + i]))
                }
                XCTAssertLessThanOrEqual(resid, tol, "d=\(d) residual \(j)")
                for jj in 0 ... j {
                    var s = 0.0
                    for t in 0 ..< d { s += vectors[j * d + t] * vectors[jj * d + t] }
                    XCTAssertEqual(s, j == jj ? 1 : 0, accuracy: 1e-9, "d=\(d) orthonormality \(j),\(jj)")
                }
            }
        }
    }
}
