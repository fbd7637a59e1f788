import Foundation
import Kernels
import TestSupport
import XCTest

final class AdamWTests: XCTestCase {
    func testAdamWMatchesReferenceOverSeveralSteps() {
        var rng = SeededRNG(seed: 71)
        for n in laneEdgeSizes + [1000] {
            let p0 = normalFloats(n, &rng)
            var p = p0, m = [Float](repeating: 0, count: n), v = m
            var pd = p0.doubles, md = [Double](repeating: 0, count: n), vd = md
            let opts = AdamW.Options(learningRate: 1e-2, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
            for step in 1 ... 5 {
                let g = normalFloats(n, &rng)
                AdamW.step(param: &p, grad: g, m: &m, v: &v, count: n, step: step, options: opts, gradScale: 0.5)
                AdamW.stepReference(param: &pd, grad: g.doubles, m: &md, v: &vd, step: step, lr: 1e-2, beta1: 0.9,
                                    beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradScale: 0.5)
            }
            // Each step moves a parameter by at most ~lr·(1/(1-β1))/sqrt(...)≈ lr·few; Float rounding of
            // m, v and the update is a few ulps of the step size per step: 5 steps · 16ε · (|p| + lr·10).
            let eps = Double(Float.ulpOfOne)
            assertWithinBound(p, pd, "adamw params n=\(n)", bound: { 5 * 16 * eps * (abs(pd[$0]) + 0.1) })
            assertWithinBound(m, md, "adamw m n=\(n)", bound: { 5 * 8 * eps * (abs(md[$0]) + 1) })
            assertWithinBound(v, vd, "adamw v n=\(n)", bound: { 5 * 8 * eps * vd[$0] + 1e-30 })
        }
    }

    func testAdamWDecoupledDecayWithZeroGradient() {
        // With g = 0 and fresh moments, the update is exactly the decay p·(1 − lr·wd).
        var p: [Float] = [1, -2, 3], m: [Float] = [0, 0, 0], v: [Float] = [0, 0, 0]
        AdamW.step(param: &p, grad: [0, 0, 0], m: &m, v: &v, count: 3, step: 1,
                   options: AdamW.Options(learningRate: 0.5, weightDecay: 0.1))
        XCTAssertEqual(p, [0.95, -1.9, 2.85].map { Float($0) })
        // First step of Adam with bias correction moves by lr·sign(g) (up to eps).
        var q: [Float] = [0, 0], mq: [Float] = [0, 0], vq: [Float] = [0, 0]
        AdamW.step(param: &q, grad: [3, -0.25], m: &mq, v: &vq, count: 2, step: 1,
                   options: AdamW.Options(learningRate: 0.01, eps: 0, weightDecay: 0))
        XCTAssertEqual(q[0], -0.01, accuracy: 1e-8); XCTAssertEqual(q[1], 0.01, accuracy: 1e-8)
    }

    func testGlobalNormIsBitIdenticalForAnyWorkerCountAndMatchesReference() {
        var rng = SeededRNG(seed: 72)
        let a = normalFloats(3 * AdamW.normChunk + 17, &rng), b = normalFloats(vLanes + 1, &rng)
        var norms: [Double] = []
        for workers in [1, 2, 3] {
            let n = a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    AdamW.globalNorm([(pa.baseAddress!, a.count), (pb.baseAddress!, b.count)], workers: workers)
                }
            }
            norms.append(n)
        }
        XCTAssertEqual(norms[0].bitPattern, norms[1].bitPattern); XCTAssertEqual(norms[0].bitPattern, norms[2].bitPattern)
        let ref = (a + b).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        // Float partial sums of normChunk terms: relative error <= normChunk·ε.
        XCTAssertEqual(norms[0], ref, accuracy: ref * Double(AdamW.normChunk) * Double(Float.ulpOfOne))
        XCTAssertEqual(AdamW.clipScale(norm: 10, maxNorm: 1), Float(1 / (10 + 1e-6)))
        XCTAssertEqual(AdamW.clipScale(norm: 0.5, maxNorm: 1), 1)
    }

    func testAdamWBitIdenticalForAnyWorkerCount() {
        var rng = SeededRNG(seed: 73)
        let n = 100_003
        let p0 = normalFloats(n, &rng), g = normalFloats(n, &rng)
        var outs: [[UInt32]] = []
        for workers in [1, 2, 3] {
            var p = p0, m = [Float](repeating: 0.1, count: n), v = [Float](repeating: 0.2, count: n)
            AdamW.step(param: &p, grad: g, m: &m, v: &v, count: n, step: 3, options: AdamW.Options(learningRate: 1e-3), workers: workers)
            outs.append(p.bits + m.bits + v.bits)
        }
        XCTAssertEqual(outs[0], outs[1]); XCTAssertEqual(outs[0], outs[2])
    }
}
