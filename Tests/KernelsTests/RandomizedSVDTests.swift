import Foundation
import Kernels
import TestSupport
import XCTest

final class RandomizedSVDTests: XCTestCase {
    let n = isReleaseBuild ? 2000 : 240, d = isReleaseBuild ? 96 : 40

    /// The three planted spectra (12 directions each) of the issue.
    var spectra: [(name: String, sigma: [Double])] {
        [("fast decay", (0 ..< 12).map { 100 * pow(0.5, Double($0)) }),
         ("slow decay", (0 ..< 12).map { 100 / Double($0 + 1) }),
         ("clustered", [100, 99, 98, 97, 96, 50, 49.5, 49, 48.5, 48, 47.5, 47])]
    }

    private func run(_ x: [Float], rows: Int, cols: Int, k: Int, p: Int, q: Int, seed: UInt64 = 1, workers: Int? = nil,
                     centre: Bool = true, mean: [Float]? = nil) -> RandomizedSVD.Result {
        var o = RandomizedSVD.Options(rank: k)
        o.oversampling = p; o.powerIterations = q; o.seed = seed; o.centre = centre; o.mean = mean
        return x.withUnsafeBufferPointer { xp in
            RandomizedSVD.compute(MatrixRows(xp.baseAddress!, rows: rows, cols: cols), options: o, workers: workers)
        }
    }

    private func assertOrthonormalRows(_ b: [Float], k: Int, d: Int, tol: Double = 1e-5, _ what: String,
                                       file: StaticString = #filePath, line: UInt = #line) {
        var worst = 0.0
        for i in 0 ..< k {
            for j in 0 ..< k {
                var s = 0.0
                for t in 0 ..< d { s += Double(b[i * d + t]) * Double(b[j * d + t]) }
                worst = max(worst, abs(s - (i == j ? 1 : 0)))
            }
        }
        XCTAssertLessThanOrEqual(worst, tol, "\(what): |VᵀV - I|max = \(worst)", file: file, line: line)
    }

    /// Singular values within the gap- and q-dependent bounds, largest principal angle small,
    /// VᵀV = I, for every planted spectrum and q in {0, 1, 2}.
    func testPlantedSpectraWithinGapBounds() {
        let k = 5, p = 5, l = k + p
        for (si, spectrum) in spectra.enumerated() {
            let (x, _) = plantedSpectrum(rows: n, cols: d, sigma: spectrum.sigma, noise: 0.01, meanScale: 5, seed: UInt64(10 + si))
            let ref = SymmetricEigen.centredSVDReference(x, rows: n, cols: d)
            let s = ref.values
            let constant = 10 * Double(d * l)  // generous bound on ||Ω2 Ω1⁺||² (Gaussian Ω)
            for q in 0 ... 2 {
                let what = "\(spectrum.name) q=\(q)"
                let r = run(x, rows: n, cols: d, k: k, p: p, q: q)
                let got = r.components.singularValues
                for j in 0 ..< k {
                    let gamma = s[l] / s[j]
                    let lower = s[j] / (1 + constant * pow(gamma, Double(4 * q + 2))).squareRoot() - 2e-5 * s[0]
                    let upper = s[j] * (1 + 1e-5) + 2e-5 * s[0]
                    XCTAssert(got[j] >= lower && got[j] <= upper,
                              "\(what): sigma_\(j) = \(got[j]), exact \(s[j]), allowed [\(lower), \(upper)]")
                }
                // Largest principal angle to the exact top-k subspace: sin <= sqrt(C)·(σ_{l+1}/σ_k)^(2q+1).
                let cosTheta = cosLargestPrincipalAngle(r.components.basis.map(Double.init), Array(ref.vectors[0 ..< k * d]), k: k, d: d)
                let sinTheta = (1 - cosTheta * cosTheta).squareRoot()
                let bound = min(1, constant.squareRoot() * pow(s[l] / s[k - 1], Double(2 * q + 1))) + 2e-3
                XCTAssertLessThanOrEqual(sinTheta, bound, "\(what): sin(largest principal angle)")
                assertOrthonormalRows(r.components.basis, k: k, d: d, what)
                // The mean is the rows' mean.
                for t in 0 ..< d { XCTAssertEqual(Double(r.components.mean[t]), ref.mean[t], accuracy: 1e-5 * (1 + abs(ref.mean[t]))) }
            }
        }
    }

    func testRandomizedAgreesWithExactPath() {
        let k = 4
        let (x, _) = plantedSpectrum(rows: n, cols: d, sigma: spectra[0].sigma, noise: 0.01, meanScale: 3, seed: 21)
        let rand = run(x, rows: n, cols: d, k: k, p: 6, q: 2).components
        let exact = x.withUnsafeBufferPointer { PrincipalSubspace.compute(MatrixRows($0.baseAddress!, rows: n, cols: d), rank: k, choice: .exact) }
        XCTAssertEqual(exact.method, .exact)
        for j in 0 ..< k {
            XCTAssertEqual(rand.singularValues[j], exact.singularValues[j], accuracy: 1e-4 * exact.singularValues[0], "sigma_\(j)")
        }
        let c = cosLargestPrincipalAngle(rand.basis.map(Double.init), exact.basis.map(Double.init), k: k, d: d)
        XCTAssertLessThanOrEqual((1 - c * c).squareRoot(), 1e-3, "randomized vs exact subspace")
        assertOrthonormalRows(exact.basis, k: k, d: d, "exact basis")
    }

    /// Centring inside the products equals decomposing the explicitly centred matrix.
    func testImplicitCentringEqualsExplicit() {
        let k = 5
        let (x, _) = plantedSpectrum(rows: n, cols: d, sigma: spectra[2].sigma, noise: 0.05, meanScale: 20, seed: 31)
        let implicit = run(x, rows: n, cols: d, k: k, p: 5, q: 2).components
        var xc = x
        for t in 0 ..< d {
            var m = 0.0
            for i in 0 ..< n { m += Double(x[i * d + t]) }
            m /= Double(n)
            for i in 0 ..< n { xc[i * d + t] = Float(Double(x[i * d + t]) - m) }
        }
        let explicit = run(xc, rows: n, cols: d, k: k, p: 5, q: 2, centre: false).components
        for j in 0 ..< k {
            XCTAssertEqual(implicit.singularValues[j], explicit.singularValues[j], accuracy: 1e-4 * explicit.singularValues[0])
        }
        let c = cosLargestPrincipalAngle(implicit.basis.map(Double.init), explicit.basis.map(Double.init), k: k, d: d)
        XCTAssertLessThanOrEqual((1 - c * c).squareRoot(), 1e-3)
        // A given mean is used as is: centring on the true mean reproduces the implicit result.
        let given = run(x, rows: n, cols: d, k: k, p: 5, q: 2, mean: implicit.mean).components
        XCTAssertEqual(given.singularValues, implicit.singularValues)
    }

    func testSameSeedSameResultAndWorkerCountsBitIdentical() {
        let (x, _) = plantedSpectrum(rows: n, cols: d, sigma: spectra[1].sigma, noise: 0.01, meanScale: 1, seed: 41)
        let a = run(x, rows: n, cols: d, k: 6, p: 4, q: 2, seed: 7, workers: 1).components
        let b = run(x, rows: n, cols: d, k: 6, p: 4, q: 2, seed: 7, workers: 1).components
        let c = run(x, rows: n, cols: d, k: 6, p: 4, q: 2, seed: 7, workers: 2).components
        let e = run(x, rows: n, cols: d, k: 6, p: 4, q: 2, seed: 7, workers: 3).components
        let other = run(x, rows: n, cols: d, k: 6, p: 4, q: 2, seed: 8, workers: 1).components
        XCTAssertEqual(a, b, "same seed")
        XCTAssertEqual(a, c, "1 vs 2 workers")
        XCTAssertEqual(a, e, "1 vs 3 workers")
        XCTAssertNotEqual(a.basis, other.basis, "a different seed draws a different test matrix")
    }

    /// Streaming: arbitrary row blocks (closure), a memory-mapped file, and one block agree.
    func testRowBlockSourcesAgree() throws {
        let k = 4, n = self.n, d = self.d
        let (x, _) = plantedSpectrum(rows: n, cols: d, sigma: spectra[0].sigma, noise: 0.01, meanScale: 2, seed: 51)
        var o = RandomizedSVD.Options(rank: k)
        o.oversampling = 6
        let whole = x.withUnsafeBufferPointer { RandomizedSVD.compute(MatrixRows($0.baseAddress!, rows: n, cols: d), options: o) }
        let sizes = [7, 64, 1, 100, 33]
        let closure = x.withUnsafeBufferPointer { xp -> RandomizedSVD.Result in
            let base = xp.baseAddress!
            let src = ClosureRows(rows: n, cols: d) { emit in
                var r = 0, i = 0
                while r < n {
                    let nb = min(sizes[i % sizes.count], n - r)
                    emit(RowBlock(base: base + r * d, firstRow: r, rows: nb, ld: d))
                    r += nb; i += 1
                }
            }
            return RandomizedSVD.compute(src, options: o)
        }
        for j in 0 ..< k {
            XCTAssertEqual(closure.components.singularValues[j], whole.components.singularValues[j],
                           accuracy: 1e-5 * whole.components.singularValues[0])
        }
        let c = cosLargestPrincipalAngle(closure.components.basis.map(Double.init), whole.components.basis.map(Double.init), k: k, d: d)
        XCTAssertLessThanOrEqual((1 - c * c).squareRoot(), 1e-3)

        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rsvd-\(ProcessInfo.processInfo.processIdentifier).f32")
        defer { try? FileManager.default.removeItem(at: url) }
        try x.withUnsafeBytes { try Data($0).write(to: url) }
        let mapped = try MappedRows(url: url, cols: d, blockRows: 50)
        XCTAssertEqual(mapped.rowCount, n)
        let blocked = x.withUnsafeBufferPointer { RandomizedSVD.compute(MatrixRows($0.baseAddress!, rows: n, cols: d, blockRows: 50), options: o) }
        XCTAssertEqual(RandomizedSVD.compute(mapped, options: o).components, blocked.components, "mapped file == same blocks in memory")
        XCTAssertThrowsError(try MappedRows(url: url, cols: d, rows: n + 1))
    }

    func testLeftSingularVectorsReconstructTheCentredMatrix() {
        let k = 12  // the full planted rank: A ≈ U Σ Vᵀ up to the noise
        let (x, _) = plantedSpectrum(rows: n, cols: d, sigma: spectra[1].sigma, noise: 0.001, meanScale: 1, seed: 61)
        var o = RandomizedSVD.Options(rank: k)
        o.computeLeft = true; o.oversampling = 8
        let r = x.withUnsafeBufferPointer { RandomizedSVD.compute(MatrixRows($0.baseAddress!, rows: n, cols: d), options: o) }
        let pc = r.components
        var worst = 0.0
        for i in 0 ..< n {
            for t in 0 ..< d {
                var s = Double(pc.mean[t])
                for j in 0 ..< k { s += Double(r.left[j * n + i]) * pc.singularValues[j] * Double(pc.basis[j * d + t]) }
                worst = max(worst, abs(s - Double(x[i * d + t])))
            }
        }
        // Residual: the noise (0.001 per entry, up to ~5 sigma) plus Float rounding.
        XCTAssertLessThanOrEqual(worst, 0.006 + 1e-5 * pc.singularValues[0])
    }

    func testAutomaticChoiceFollowsCostModel() {
        XCTAssertEqual(PrincipalSubspace.choose(rows: 50_000, cols: 576, rank: 10), .randomized)
        XCTAssertEqual(PrincipalSubspace.choose(rows: 10_000, cols: 4096, rank: 10), .randomized)
        XCTAssertEqual(PrincipalSubspace.choose(rows: 1000, cols: 30, rank: 10), .exact, "l >= d/2")
        let c = PrincipalSubspace.modelledCost(rows: 1_000_000, cols: 64, rank: 10, oversampling: 10, powerIterations: 4)
        XCTAssertEqual(PrincipalSubspace.choose(rows: 1_000_000, cols: 64, rank: 10, powerIterations: 4),
                       c.exact <= c.randomized ? .exact : .randomized)
    }
}
