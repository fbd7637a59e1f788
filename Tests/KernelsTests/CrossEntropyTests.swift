import Foundation
import Kernels
import TestSupport
import XCTest

final class CrossEntropyTests: XCTestCase {
    struct Problem {
        var N: Int, V: Int, C: Int
        var hidden: [Float], weight: [Float], targets: [Int32], weights: [Float]?
    }

    private func problem(N: Int, V: Int, C: Int, ignored: Set<Int> = [], weighted: Bool, seed: UInt64) -> Problem {
        var rng = SeededRNG(seed: seed)
        let h = normalFloats(N * C, &rng), w = normalFloats(V * C, &rng, scale: 0.7)
        let targets = (0 ..< N).map { ignored.contains($0) ? CrossEntropy.defaultIgnoreIndex : Int32.random(in: 0 ..< Int32(V), using: &rng) }
        let weights = weighted ? uniformFloats(N, &rng, in: 0.1 ... 1) : nil
        return Problem(N: N, V: V, C: C, hidden: h, weight: w, targets: targets, weights: weights)
    }

    /// Runs the fused kernel; returns (losses, dhidden − dh0, dweight − dw0).
    private func run(_ p: Problem, dhidden: Bool, dweight: Bool, vocabChunk: Int, tokenBlock: Int, workers: Int? = nil,
                     seed: UInt64 = 5) -> ([Float], [Float], [Float]) {
        var rng = SeededRNG(seed: seed)
        var losses = [Float](repeating: .nan, count: p.N)
        let dw0 = uniformFloats(p.V * p.C, &rng), dh0 = uniformFloats(p.N * p.C, &rng)
        var dh = dh0, dw = dw0
        dh.withUnsafeMutableBufferPointer { dhp in
            dw.withUnsafeMutableBufferPointer { dwp in
                let tw = p.weights
                func call(_ twp: UnsafePointer<Float>?) {
                    CrossEntropy.forwardBackward(losses: &losses, dhidden: dhidden ? dhp.baseAddress! : nil,
                                                 dweight: dweight ? dwp.baseAddress! : nil, hidden: p.hidden, weight: p.weight,
                                                 targets: p.targets, tokenWeights: twp, tokens: p.N, vocab: p.V, channels: p.C,
                                                 ignoreIndex: CrossEntropy.defaultIgnoreIndex, vocabChunk: vocabChunk,
                                                 tokenBlock: tokenBlock, workers: workers)
                }
                if let tw { tw.withUnsafeBufferPointer { call($0.baseAddress!) } } else { call(nil) }
            }
        }
        return (losses, zip(dh, dh0).map { $0 - $1 }, zip(dw, dw0).map { $0 - $1 })
    }

    func testCrossEntropyLossesMatchReferenceAcrossChunkEdges() {
        let eps = Double(Float.ulpOfOne)
        for (N, V, C) in [(1, 1, 1), (3, 7, vLanes + 1), (7, 29, 2 * vLanes + 3), (5, 64, 13)] {
            let p = problem(N: N, V: V, C: C, ignored: N > 3 ? [1] : [], weighted: false, seed: UInt64(N * 100 + V))
            let ref = CrossEntropy.lossesReference(hidden: p.hidden.doubles, weight: p.weight.doubles, targets: p.targets,
                                                   tokens: N, vocab: V, channels: C)
            for (vc, tb) in [(1, 1), (5, 2), (V - 1, 3), (V, N), (4096, 512)] where vc >= 1 {
                let (losses, _, _) = run(p, dhidden: false, dweight: false, vocabChunk: vc, tokenBlock: tb)
                assertWithinBound(losses, ref, "ce losses N=\(N) V=\(V) C=\(C) chunk=\(vc) block=\(tb)", bound: { t in
                    // logit error 2·C·ε·Σ|h||w| (GEMM bound), exp error δ, sum (V+2)ε, log ε·|lse|.
                    var m = 0.0
                    for v in 0 ..< V { var s = 0.0; for c in 0 ..< C { s += abs(Double(p.hidden[t * C + c] * p.weight[v * C + c])) }; m = max(m, s) }
                    return 4 * Double(C + 2) * eps * m + FastMath.expMaxRelativeError + Double(V + 4) * eps * (1 + abs(ref[t]))
                })
                if N > 3 { XCTAssertEqual(losses[1], 0, "ignored token") }
            }
        }
    }

    func testCrossEntropyGradientsMatchFiniteDifferences() {
        let (N, V, C) = (5, 13, vLanes + 3)
        let p = problem(N: N, V: V, C: C, ignored: [2], weighted: true, seed: 61)
        let hd = p.hidden.doubles, wd = p.weight.doubles, twd = p.weights!.map(Double.init)
        let ndh = numericalGradient(of: {
            CrossEntropy.lossReference(hidden: $0, weight: wd, targets: p.targets, tokenWeights: twd, tokens: N, vocab: V, channels: C)
        }, at: hd)
        let ndw = numericalGradient(of: {
            CrossEntropy.lossReference(hidden: hd, weight: $0, targets: p.targets, tokenWeights: twd, tokens: N, vocab: V, channels: C)
        }, at: wd)
        for (vc, tb) in [(4, 2), (V, N), (1, 1)] {
            // One-pass online-softmax dH.
            let (_, dh1, dw1) = run(p, dhidden: true, dweight: false, vocabChunk: vc, tokenBlock: tb)
            assertGradientsMatch(analytic: dh1, numeric: ndh, "ce dhidden one-pass chunk=\(vc)", floor: 1e-3)
            XCTAssertEqual(dw1, [Float](repeating: 0, count: V * C), "dweight untouched when nil")
            // Two-pass dH and dW.
            let (_, dh2, dw2) = run(p, dhidden: true, dweight: true, vocabChunk: vc, tokenBlock: tb)
            assertGradientsMatch(analytic: dh2, numeric: ndh, "ce dhidden two-pass chunk=\(vc)", floor: 1e-3)
            assertGradientsMatch(analytic: dw2, numeric: ndw, "ce dweight chunk=\(vc)", floor: 1e-3)
            let (_, dh3, dw3) = run(p, dhidden: false, dweight: true, vocabChunk: vc, tokenBlock: tb)
            XCTAssertEqual(dh3, [Float](repeating: 0, count: N * C), "dhidden untouched when nil")
            assertGradientsMatch(analytic: dw3, numeric: ndw, "ce dweight only chunk=\(vc)", floor: 1e-3)
        }
    }

    func testCrossEntropyMaskedTokensContributeNothing() {
        let (N, V, C) = (6, 17, vLanes + 2)
        var p = problem(N: N, V: V, C: C, ignored: [0, 3], weighted: false, seed: 62)
        let (l1, dh1, dw1) = run(p, dhidden: true, dweight: true, vocabChunk: 5, tokenBlock: 2)
        XCTAssertEqual(l1[0], 0); XCTAssertEqual(l1[3], 0)
        for t in [0, 3] { XCTAssertEqual(Array(dh1[t * C ..< (t + 1) * C]), [Float](repeating: 0, count: C)) }
        // Garbage (even NaN) in the hidden rows of ignored tokens changes nothing.
        for c in 0 ..< C { p.hidden[0 * C + c] = .nan; p.hidden[3 * C + c] = 1e30 }
        let (l2, dh2, dw2) = run(p, dhidden: true, dweight: true, vocabChunk: 5, tokenBlock: 2)
        XCTAssertEqual(l1.bits, l2.bits); XCTAssertEqual(dh1.bits, dh2.bits); XCTAssertEqual(dw1.bits, dw2.bits)
        // And the losses of counted tokens equal those computed with the ignored tokens removed.
        let keep = [1, 2, 4, 5]
        let q = Problem(N: 4, V: V, C: C, hidden: keep.flatMap { Array(p.hidden[$0 * C ..< ($0 + 1) * C]) }, weight: p.weight,
                        targets: keep.map { p.targets[$0] }, weights: nil)
        let (l3, _, dw3) = run(q, dhidden: true, dweight: true, vocabChunk: 5, tokenBlock: 2)
        XCTAssertEqual(keep.map { l1[$0] }.bits, l3.bits)
        XCTAssertEqual(dw1.bits, dw3.bits)
    }

    func testCrossEntropyBitIdenticalForAnyWorkerCount() {
        let p = problem(N: 37, V: 700, C: 40, ignored: [5, 6], weighted: true, seed: 63)
        for (dh, dw) in [(true, false), (true, true)] {
            var outs: [[UInt32]] = []
            for workers in [1, 2, 3] {
                let (l, a, b) = run(p, dhidden: dh, dweight: dw, vocabChunk: 256, tokenBlock: 16, workers: workers)
                outs.append(l.bits + a.bits + b.bits)
            }
            XCTAssertEqual(outs[0], outs[1], "dweight \(dw)"); XCTAssertEqual(outs[0], outs[2], "dweight \(dw)")
        }
    }

    /// Later vocabulary chunks whose logits jump far above the running shift (by 30: summed with the
    /// old shift; by 75 and 200: past `shiftSlack`, and 200 past exp's range) and a row whose logits fall.
    func testCrossEntropyLossesStableAcrossLargeLogitJumps() {
        let (N, V, C) = (3, 20, 4)
        var h = [Float](repeating: 0, count: N * C), w = [Float](repeating: 0, count: V * C)
        for t in 0 ..< N { h[t * C] = 1; h[t * C + 1] = Float(t) }
        let offsets: [Float] = [0, 30, 75, 200]
        for v in 0 ..< V {
            w[v * C] = offsets[v / 5] + Float(v % 5) * 0.25
            w[v * C + 1] = -offsets[v / 5] * 0.75   // row t = 2 sees falling logits
        }
        let p = Problem(N: N, V: V, C: C, hidden: h, weight: w, targets: [3, 17, 9], weights: nil)
        let ref = CrossEntropy.lossesReference(hidden: h.doubles, weight: w.doubles, targets: p.targets, tokens: N, vocab: V, channels: C)
        let eps = Double(Float.ulpOfOne)
        for (dh, dw) in [(false, false), (true, false), (true, true)] {
            let (losses, _, _) = run(p, dhidden: dh, dweight: dw, vocabChunk: 5, tokenBlock: 2)
            assertWithinBound(losses, ref, "ce jumps dhidden=\(dh) dweight=\(dw)", bound: { t in
                FastMath.expMaxRelativeError * 2 + Double(V + 8) * eps * (1 + 400)
            })
            XCTAssertTrue(losses.allSatisfy(\.isFinite))
        }
    }

    func testCrossEntropyReductionWeights() {
        // Two sequences: lengths 3 and 4; the first has 2 counted tokens, the second 1.
        let ig = CrossEntropy.defaultIgnoreIndex
        let targets: [Int32] = [ig, 5, 6, ig, ig, 7, ig]
        let batch = CrossEntropy.tokenWeights(targets: targets, sequenceLengths: [3, 4], reduction: .meanPerBatch)
        XCTAssertEqual(batch, [0, 1.0 / 3, 1.0 / 3, 0, 0, 1.0 / 3, 0].map { Float($0) })
        let seq = CrossEntropy.tokenWeights(targets: targets, sequenceLengths: [3, 4], reduction: .meanPerSequence)
        XCTAssertEqual(seq, [0, 0.25, 0.25, 0, 0, 0.5, 0].map { Float($0) })
        let sum = CrossEntropy.tokenWeights(targets: targets, sequenceLengths: [3, 4], reduction: .sum)
        XCTAssertEqual(sum, [0, 1, 1, 0, 0, 1, 0])
        let losses: [Float] = [0, 2, 4, 0, 0, 9, 0]
        XCTAssertEqual(CrossEntropy.sequenceMeans(losses: losses, targets: targets, sequenceLengths: [3, 4]), [3, 9])
        XCTAssertEqual(CrossEntropy.weightedSum(losses: losses, weights: seq, count: 7), 6, accuracy: 1e-6)
        XCTAssertEqual(CrossEntropy.weightedSum(losses: losses, weights: batch, count: 7), 5, accuracy: 1e-6)
        // A batch with no counted tokens gives zero weights, not NaN.
        XCTAssertEqual(CrossEntropy.tokenWeights(targets: [ig, ig], sequenceLengths: [2], reduction: .meanPerBatch), [0, 0])
    }
}
