import Foundation
import Kernels
import TestSupport
import XCTest

final class ProjectionScoreTests: XCTestCase {
    private struct Outputs: Equatable { var squared, signedMean, normalized, projections: [Float] }

    private func score(_ x: [Float], n: Int, d: Int, ldx: Int, mean: [Float]?, basis: [Float], k: Int, weights: [Float]?,
                       workers: Int? = nil) -> Outputs {
        var o = Outputs(squared: .init(repeating: .nan, count: n), signedMean: .init(repeating: .nan, count: n),
                        normalized: .init(repeating: .nan, count: n), projections: .init(repeating: .nan, count: n * k))
        x.withUnsafeBufferPointer { xp in basis.withUnsafeBufferPointer { bp in
            o.squared.withUnsafeMutableBufferPointer { sq in o.signedMean.withUnsafeMutableBufferPointer { sm in
                o.normalized.withUnsafeMutableBufferPointer { nz in o.projections.withUnsafeMutableBufferPointer { pj in
                    let m = mean ?? [], w = weights ?? []
                    m.withUnsafeBufferPointer { mp in w.withUnsafeBufferPointer { wp in
                        ProjectionScore.score(x: xp.baseAddress!, rows: n, cols: d, ldx: ldx, mean: mean == nil ? nil : mp.baseAddress,
                                              basis: bp.baseAddress!, rank: k, weights: weights == nil ? nil : wp.baseAddress,
                                              squared: sq.baseAddress, signedMean: sm.baseAddress,
                                              normalized: nz.baseAddress, projections: pj.baseAddress, workers: workers)
                    } }
                } }
            } }
        } }
        return o
    }

    /// Every output against the Double reference over edge shapes (rows not a multiple of 4,
    /// d not a multiple of the vector width, k not a multiple of 4), padded ldx.
    func testMatchesDoubleReferenceOnEdgeShapes() {
        var rng = SeededRNG(seed: 9)
        let eps = Double(Float.ulpOfOne)
        for n in [1, 3, 4, 5, 13, 25] {
            for d in [1, 7, vLanes, 2 * vLanes + 3, 37] {
                for k in [1, 3, 4, 5, 10, 12, 13, 17, 33] {
                    for centred in [false, true] {
                        let ldx = d + 2
                        let x = uniformFloats(n * ldx, &rng, in: -2 ... 2)
                        let mean: [Float]? = centred ? uniformFloats(d, &rng, in: -1 ... 1) : nil
                        let basis = uniformFloats(k * d, &rng)
                        let weights: [Float]? = k % 2 == 0 ? uniformFloats(k, &rng, in: 0.5 ... 2) : nil
                        let got = score(x, n: n, d: d, ldx: ldx, mean: mean, basis: basis, k: k, weights: weights)
                        let ref = ProjectionScore.reference(x: x, rows: n, cols: d, ldx: ldx, mean: mean, basis: basis, rank: k, weights: weights)
                        let what = "n=\(n) d=\(d) k=\(k) centred=\(centred)"
                        // Sequential dot product bound δ_ij = (d + 2)·eps·Σ|x - μ||v| (+ the rounding of x - μ).
                        let delta = ref.magnitude.map { 2 * Double(d + 2) * eps * $0 }
                        assertWithinBound(got.projections, ref.projections, "\(what) projections", bound: { delta[$0] + 1e-30 })
                        assertWithinBound(got.squared, ref.squared, "\(what) squared", bound: { i in
                            var b = 0.0
                            for j in 0 ..< k {
                                let w = Double(weights?[j] ?? 1), p = abs(ref.projections[i * k + j]), e = delta[i * k + j]
                                b += w * (2 * p * e + e * e)
                            }
                            return b / Double(k) + 4 * eps * ref.squared[i] + 1e-30
                        })
                        assertWithinBound(got.signedMean, ref.signedMean, "\(what) signedMean", bound: { i in
                            var b = 0.0
                            for j in 0 ..< k { b += Double(weights?[j] ?? 1) * (delta[i * k + j] + eps * abs(ref.projections[i * k + j])) }
                            return b / Double(k) + 4 * eps * abs(ref.signedMean[i]) + 1e-30
                        })
                        // normalized = e / ||x - μ||²: relative error bounded by both parts' relative errors.
                        assertWithinBound(got.normalized, ref.normalized, "\(what) normalized", bound: { i in
                            var num = 0.0, numErr = 0.0
                            for j in 0 ..< k { let p = abs(ref.projections[i * k + j]), e = delta[i * k + j]; num += p * p; numErr += 2 * p * e + e * e }
                            let rel = (numErr / max(num, 1e-300)) + 4 * Double(d + 2) * eps
                            return ref.normalized[i] * rel + 1e-6
                        })
                    }
                }
            }
        }
    }

    func testWorkerCountsBitIdentical() {
        var rng = SeededRNG(seed: 10)
        let n = 203, d = 45, k = 10
        let x = uniformFloats(n * d, &rng), mean = uniformFloats(d, &rng), basis = uniformFloats(k * d, &rng)
        let w = uniformFloats(k, &rng, in: 0 ... 1)
        let one = score(x, n: n, d: d, ldx: d, mean: mean, basis: basis, k: k, weights: w, workers: 1)
        XCTAssertEqual(one, score(x, n: n, d: d, ldx: d, mean: mean, basis: basis, k: k, weights: w, workers: 2))
        XCTAssertEqual(one, score(x, n: n, d: d, ldx: d, mean: mean, basis: basis, k: k, weights: w, workers: 3))
        // The array convenience gives the same squared scores.
        XCTAssertEqual(one.squared, ProjectionScore.squaredScores(x, rows: n, cols: d, mean: mean, basis: basis, rank: k, weights: w))
    }

    /// Known answer: with the standard basis, projections are coordinates of x - μ.
    func testStandardBasisKnownAnswer() {
        let d = 5, k = 2
        let x: [Float] = [3, 4, 0, 0, 0,  1, 1, 1, 1, 1]
        let mean: [Float] = [1, 1, 1, 1, 1]
        let basis: [Float] = [1, 0, 0, 0, 0,  0, 1, 0, 0, 0]
        let o = score(x, n: 2, d: d, ldx: d, mean: mean, basis: basis, k: k, weights: [2, 1])
        // Row 0: x - μ = (2, 3, -1, -1, -1): p = (2, 3); squared = (2·4 + 9)/2 = 8.5; signed = (4 + 3)/2 = 3.5;
        // normalized = 13 / 16. Row 1 is the mean: everything 0.
        XCTAssertEqual(o.projections, [2, 3, 0, 0])
        XCTAssertEqual(o.squared, [8.5, 0])
        XCTAssertEqual(o.signedMean, [3.5, 0])
        XCTAssertEqual(o.normalized, [13.0 / 16.0, 0])
    }
}
