import Kernels
import TestSupport
import XCTest

final class RMSNormTests: XCTestCase {
    private func run(_ x: [Float], _ w: [Float], rows: Int, C: Int, eps: Float, workers: Int? = nil) -> ([Float], [Float]) {
        var out = [Float](repeating: .nan, count: rows * C), rstd = [Float](repeating: .nan, count: rows)
        RMSNorm.forward(out: &out, rstd: &rstd, inp: x, weight: w, rows: rows, channels: C, eps: eps, workers: workers)
        return (out, rstd)
    }

    func testRMSNormForwardMatchesReferenceAcrossLaneEdges() {
        var rng = SeededRNG(seed: 11)
        let eps = Double(Float.ulpOfOne)
        for C in laneEdgeSizes + [576] {
            for rows in [1, 3] {
                let x = normalFloats(rows * C, &rng), w = uniformFloats(C, &rng, in: 0.5 ... 1.5)
                let (out, rstd) = run(x, w, rows: rows, C: C, eps: 1e-5)
                let ref = RMSNorm.forwardReference(x.doubles, w.doubles, rows: rows, channels: C, eps: 1e-5)
                let rref = RMSNorm.rstdReference(x.doubles, rows: rows, channels: C, eps: 1e-5)
                // Sum of C squares: relative error <= (C + 4)·ε in the mean, half of it in rstd, then 3 products.
                assertWithinBound(out, ref, "rmsnorm out C=\(C) rows=\(rows)", bound: { Double(C + 8) * eps * abs(ref[$0]) + 1e-30 })
                assertWithinBound(rstd, rref, "rmsnorm rstd C=\(C)", bound: { Double(C + 8) * eps * rref[$0] })
            }
        }
    }

    func testRMSNormInPlaceEqualsOutOfPlace() {
        var rng = SeededRNG(seed: 12)
        let rows = 3, C = 2 * vLanes + 3
        let x = normalFloats(rows * C, &rng), w = uniformFloats(C, &rng, in: 0.5 ... 1.5)
        let (out, _) = run(x, w, rows: rows, C: C, eps: 1e-5)
        var inplace = x, rstd = [Float](repeating: 0, count: rows)
        inplace.withUnsafeMutableBufferPointer { p in
            RMSNorm.forward(out: p.baseAddress!, rstd: &rstd, inp: p.baseAddress!, weight: w, rows: rows, channels: C, eps: 1e-5)
        }
        XCTAssertEqual(inplace.bits, out.bits)
    }

    func testRMSNormBackwardMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 7)
        for C in [1, vLanes - 1, vLanes + 1, 2 * vLanes + 3, 19].filter({ $0 >= 1 }) {
            let rows = 3, eps: Float = 1e-5
            let x = uniformFloats(rows * C, &rng), w = uniformFloats(C, &rng, in: 0.5 ... 1.5)
            let dout = uniformFloats(rows * C, &rng)
            let (_, rstd) = run(x, w, rows: rows, C: C, eps: eps)
            // Accumulation: start from a known non-zero gradient and subtract it afterwards.
            let dx0 = uniformFloats(rows * C, &rng), dw0 = uniformFloats(C, &rng)
            var dx = dx0, dw = dw0
            RMSNorm.backward(dinp: &dx, dweight: &dw, dout: dout, inp: x, weight: w, rstd: rstd, rows: rows, channels: C)
            let gx = zip(dx, dx0).map { $0 - $1 }, gw = zip(dw, dw0).map { $0 - $1 }
            let xd = x.doubles, wd = w.doubles, gd = dout.doubles
            let ndx = numericalGradient(of: { projection(RMSNorm.forwardReference($0, wd, rows: rows, channels: C, eps: Double(eps)), gd) }, at: xd)
            let ndw = numericalGradient(of: { projection(RMSNorm.forwardReference(xd, $0, rows: rows, channels: C, eps: Double(eps)), gd) }, at: wd)
            // floor 1e-2: dinp is a difference of O(1) terms, so its Float error is absolute (~1e-7).
            assertGradientsMatch(analytic: gx, numeric: ndx, "rmsnorm dinp C=\(C)", floor: 1e-2)
            assertGradientsMatch(analytic: gw, numeric: ndw, "rmsnorm dweight C=\(C)", floor: 1e-3)
        }
    }

    func testRMSNormBitIdenticalForAnyWorkerCount() {
        var rng = SeededRNG(seed: 9)
        let rows = 61, C = 5 * vLanes + 3
        let x = normalFloats(rows * C * 8, &rng), w = uniformFloats(C * 8, &rng)
        let dout = normalFloats(rows * C * 8, &rng)
        var results: [[UInt32]] = []
        for workers in [1, 2, 3] {
            let (out, rstd) = run(x, w, rows: rows * 8, C: C, eps: 1e-6, workers: workers)
            var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: C)
            // Wide rows make the worker split real (the kernel hands ~4096 elements per worker).
            RMSNorm.backward(dinp: &dx, dweight: &dw, dout: dout, inp: x, weight: w, rstd: rstd, rows: rows * 8, channels: C, workers: workers)
            results.append(out.bits + rstd.bits + dx.bits + dw.bits)
        }
        XCTAssertEqual(results[0], results[1]); XCTAssertEqual(results[0], results[2])
    }
}
