import Foundation
import Kernels
import TestSupport
import XCTest

final class TallQRTests: XCTestCase {
    /// l rows of length m with singular values spread geometrically from 1 to 1/kappa
    /// (times a rank deficiency: the last `zeroRows` singular values are exactly 0).
    private func matrix(l: Int, m: Int, kappa: Double, zeroRows: Int = 0, seed: UInt64) -> [Float] {
        let sigma = (0 ..< l).map { $0 >= l - zeroRows ? 0 : pow(kappa, -Double($0) / Double(max(1, l - zeroRows - 1))) }
        let (x, _) = plantedSpectrum(rows: m, cols: l, sigma: sigma, noise: 0, meanScale: 0, seed: seed)
        // x is m x l row-major: transpose into l x m rows.
        var t = [Float](repeating: 0, count: l * m)
        for i in 0 ..< m { for j in 0 ..< l { t[j * m + i] = x[i * l + j] } }
        return t
    }

    private func check(_ x0: [Float], l: Int, m: Int, expect: TallQR.Method, spanTol: Double, precise: Bool = true,
                       orthTol: Double? = nil, file: StaticString = #filePath, line: UInt = #line) {
        var x = x0
        var scratch = [Float](repeating: .nan, count: l * m)
        let method = x.withUnsafeMutableBufferPointer { xp in
            scratch.withUnsafeMutableBufferPointer { sp in
                TallQR.orthonormalizeRows(xp.baseAddress!, rows: l, length: m, scratch: sp.baseAddress!, precise: precise)
            }
        }
        XCTAssertEqual(method, expect, file: file, line: line)
        var worst = 0.0
        for i in 0 ..< l { for j in 0 ..< l {
            var s = 0.0
            for t in 0 ..< m { s += Double(x[i * m + t]) * Double(x[j * m + t]) }
            worst = max(worst, abs(s - (i == j ? 1 : 0)))
        } }
        XCTAssertLessThanOrEqual(worst, orthTol ?? 2e-5 * Double(l), "orthonormality (\(method))", file: file, line: line)
        // Span: each input row is reproduced by its projection onto the rows of Q.
        var resid = 0.0, norm = 0.0
        for i in 0 ..< l {
            var coef = [Double](repeating: 0, count: l)
            for j in 0 ..< l { for t in 0 ..< m { coef[j] += Double(x0[i * m + t]) * Double(x[j * m + t]) } }
            for t in 0 ..< m {
                var p = 0.0
                for j in 0 ..< l { p += coef[j] * Double(x[j * m + t]) }
                resid = max(resid, abs(p - Double(x0[i * m + t]))); norm = max(norm, abs(Double(x0[i * m + t])))
            }
        }
        XCTAssertLessThanOrEqual(resid, spanTol * norm, "span preserved (\(method))", file: file, line: line)
    }

    func testWellConditionedUsesCholeskyQR2() {
        check(matrix(l: 8, m: 300, kappa: 10, seed: 1), l: 8, m: 300, expect: .choleskyQR2, spanTol: 1e-5)
    }

    /// Between power iterations one CholeskyQR round suffices: orthogonal to about kappa²·eps.
    func testImpreciseModeUsesOneCholeskyQRRound() {
        check(matrix(l: 8, m: 300, kappa: 10, seed: 6), l: 8, m: 300, expect: .choleskyQR, spanTol: 1e-5, precise: false,
              orthTol: 100 * 1e-4)
        var zero = matrix(l: 8, m: 300, kappa: 10, seed: 7)
        for t in 0 ..< 300 { zero[2 * 300 + t] = 0 }
        check(zero, l: 8, m: 300, expect: .householder, spanTol: 1e-5, precise: false)
    }

    func testIllConditionedUsesShiftedCholeskyQR3() {
        check(matrix(l: 8, m: 300, kappa: 1e5, seed: 2), l: 8, m: 300, expect: .shiftedCholeskyQR3, spanTol: 1e-4)
    }

    func testNumericallyRankDeficientUsesShiftedCholeskyQR3() {
        check(matrix(l: 8, m: 300, kappa: 10, zeroRows: 3, seed: 3), l: 8, m: 300, expect: .shiftedCholeskyQR3, spanTol: 1e-4)
    }

    func testExactlyZeroVectorsFallBackToHouseholder() {
        var x = matrix(l: 8, m: 300, kappa: 10, seed: 5)
        for t in 0 ..< 300 { x[5 * 300 + t] = 0; x[7 * 300 + t] = 0 }
        check(x, l: 8, m: 300, expect: .householder, spanTol: 1e-5)
    }

    func testJacobiSVDRecoversKnownSingularValues() {
        let sigma: [Double] = [5, 3, 3, 1e-3, 1e-9, 0]
        let m = 20, c = sigma.count
        let (x, _) = plantedSpectrum(rows: m, cols: c, sigma: sigma, noise: 0, meanScale: 0, seed: 4)
        // Rebuild exactly in Double from the Float matrix: compare with the reference eigen of AᵀA.
        var a = [Double](repeating: 0, count: m * c)  // column-major
        for i in 0 ..< m { for j in 0 ..< c { a[j * m + i] = Double(x[i * c + j]) } }
        let svd = JacobiSVD.thin(a, rows: m, cols: c)
        let ref = SymmetricEigen.centredSVDReference(x, rows: m, cols: c, centre: false)
        for j in 0 ..< 3 { XCTAssertEqual(svd.s[j], ref.values[j], accuracy: 1e-12 * 5) }
        // U·S·Vᵀ = A and UᵀU = I.
        for i in 0 ..< m { for j in 0 ..< c {
            var s = 0.0
            for t in 0 ..< c { s += svd.u[t * m + i] * svd.s[t] * svd.v[t * c + j] }
            XCTAssertEqual(s, a[j * m + i], accuracy: 1e-13 * 5)
        } }
        for p in 0 ..< c { for q in 0 ..< c {
            var s = 0.0
            for i in 0 ..< m { s += svd.u[p * m + i] * svd.u[q * m + i] }
            XCTAssertEqual(s, p == q ? 1 : 0, accuracy: 1e-12)
        } }
    }
}
