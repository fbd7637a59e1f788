import Foundation
import Kernels
import TestSupport
import XCTest

/// One attention problem in the layout the kernels take: q, k, v are views into a fused qkv
/// buffer with a padded row stride, sequences packed back to back.
private struct Problem {
    var lengths: [Int]
    var heads: Int, kvHeads: Int, headDim: Int
    var causal = true
    var scale: Float? = nil
    var qkv: [Float] = []
    var starts: [Int] = []
    /// Row stride of the fused buffer: [q | k | v | 3 spare floats].
    var ld: Int { (heads + 2 * kvHeads) * headDim + 3 }
    var tokens: Int { starts.last ?? 0 }
    var qOffset: Int { 0 }
    var kOffset: Int { heads * headDim }
    var vOffset: Int { (heads + kvHeads) * headDim }

    init(lengths: [Int], heads: Int, kvHeads: Int, headDim: Int, causal: Bool = true, lead: Int = 0, seed: UInt64 = 1) {
        self.lengths = lengths
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim; self.causal = causal
        starts = [lead]
        for n in lengths { starts.append(starts.last! + n) }
        var rng = SeededRNG(seed: seed)
        qkv = uniformFloats(max(1, starts.last! * ld), &rng)
    }

    func column(_ offset: Int, _ width: Int) -> [Double] {
        var x = [Double]()
        for t in 0 ..< tokens { for c in 0 ..< width { x.append(Double(qkv[t * ld + offset + c])) } }
        return x
    }

    /// (out dense (tokens, H·D), lse (H, tokens)) from the fast kernel; rows outside sequences are NaN-filled.
    func forward(workers: Int? = nil) -> (out: [Float], lse: [Float]) {
        let hd = heads * headDim
        var out = [Float](repeating: .nan, count: max(1, tokens * hd))
        var lse = [Float](repeating: .nan, count: max(1, heads * tokens))
        qkv.withUnsafeBufferPointer { b in
            let p = b.baseAddress!
            Attention.forward(out: &out, ldo: hd, lse: &lse, q: p + qOffset, ldq: ld, k: p + kOffset, ldk: ld,
                              v: p + vOffset, ldv: ld, sequenceStarts: starts, heads: heads, kvHeads: kvHeads,
                              headDim: headDim, causal: causal, scale: scale, workers: workers)
        }
        return (out, lse)
    }

    func reference() -> (out: [Double], lse: [Double]) {
        let x = qkv.map(Double.init)
        return Attention.forwardReference(q: Array(x), ldq: ld, k: Array(x[kOffset...]), ldk: ld, v: Array(x[vOffset...]), ldv: ld,
                                          sequenceStarts: starts, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                          causal: causal, scale: scale.map(Double.init))
    }

    /// Fast backward into dqkv (same fused layout), pre-filled with `initial`.
    func backward(dout: [Float], out: [Float], lse: [Float], initial: [Float]? = nil, workers: Int? = nil) -> [Float] {
        var dqkv = initial ?? [Float](repeating: 0, count: qkv.count)
        let hd = heads * headDim
        qkv.withUnsafeBufferPointer { b in
            dqkv.withUnsafeMutableBufferPointer { g in
                let p = b.baseAddress!, d = g.baseAddress!
                Attention.backward(dq: d + qOffset, lddq: ld, dk: d + kOffset, lddk: ld, dv: d + vOffset, lddv: ld,
                                   dout: dout, lddout: hd, out: out, ldo: hd, lse: lse,
                                   q: p + qOffset, ldq: ld, k: p + kOffset, ldk: ld, v: p + vOffset, ldv: ld,
                                   sequenceStarts: starts, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                   causal: causal, scale: scale, workers: workers)
            }
        }
        return dqkv
    }

    /// Rows of sequence tokens only (indices into a (tokens, width) buffer).
    func sequenceRows(width: Int, stride: Int? = nil, offset: Int = 0) -> [Int] {
        var idx = [Int]()
        for s in 0 ..< lengths.count {
            for t in starts[s] ..< starts[s + 1] { for c in 0 ..< width { idx.append(t * (stride ?? width) + offset + c) } }
        }
        return idx
    }
}

final class AttentionTests: XCTestCase {
    private let eps = Double(Float.ulpOfOne)

    /// Runs `body` with the backward forced fused (one pass) and forced into two passes.
    private func withBothBackwardModes(_ body: (String) -> Void) {
        let saved = Attention.fusedBackwardMinimumKVHeads
        defer { Attention.fusedBackwardMinimumKVHeads = saved }
        for (minimum, mode) in [(1, "fused"), (Int.max, "two-pass")] {
            Attention.fusedBackwardMinimumKVHeads = minimum
            body(mode)
        }
    }

    /// Checks the fast forward against the Double reference within a bound derived from the
    /// rounding of the dot products (D·eps·scale·Σ|q||k| per score, doubled for the softmax
    /// shift), the vexp2 error (4e-7) and the T-term sums, times max|v|.
    private func checkForward(_ pr: Problem, workers: Int? = nil, file: StaticString = #filePath, line: UInt = #line) {
        let (out, lse) = pr.forward(workers: workers)
        let (ref, refLse) = pr.reference()
        let D = pr.headDim, hd = pr.heads * D, scale = Double(pr.scale ?? 1 / Float(D).squareRoot())
        var maxAbsDot = 0.0, maxV = 0.0
        for t in 0 ..< pr.tokens {
            for c in 0 ..< pr.kvHeads * D { maxV = max(maxV, abs(Double(pr.qkv[t * pr.ld + pr.vOffset + c]))) }
        }
        for h in 0 ..< pr.heads {
            for d in 0 ..< D {
                var mq = 0.0, mk = 0.0
                for t in 0 ..< pr.tokens {
                    mq = max(mq, abs(Double(pr.qkv[t * pr.ld + h * D + d])))
                    mk = max(mk, abs(Double(pr.qkv[t * pr.ld + pr.kOffset + (h / (pr.heads / pr.kvHeads)) * D + d])))
                }
                maxAbsDot = max(maxAbsDot, mq * mk)
            }
        }
        let maxLen = Double(pr.lengths.max() ?? 1)
        let scoreErr = Double(D + 2) * eps * scale * maxAbsDot * Double(D)
        let outBound = (4 * scoreErr + 1e-6 + 4 * (maxLen + Double(D)) * eps) * maxV + 1e-30
        let rows = pr.sequenceRows(width: hd)
        assertWithinBound(rows.map { out[$0] }, rows.map { ref[$0] }, "forward out \(pr.lengths) H=\(pr.heads)/\(pr.kvHeads) D=\(D) causal=\(pr.causal)",
                          bound: { _ in outBound }, file: file, line: line)
        var lseIdx = [Int]()
        for h in 0 ..< pr.heads { for s in 0 ..< pr.lengths.count { for t in pr.starts[s] ..< pr.starts[s + 1] { lseIdx.append(h * pr.tokens + t) } } }
        assertWithinBound(lseIdx.map { lse[$0] }, lseIdx.map { refLse[$0] }, "forward lse \(pr.lengths) D=\(D)",
                          bound: { i in 2 * scoreErr + 1e-6 + 4 * eps * (abs(refLse[lseIdx[i]]) + log(maxLen + 1)) }, file: file, line: line)
        // Rows outside every sequence stay untouched (NaN-filled).
        for t in 0 ..< pr.starts[0] { XCTAssertTrue(out[t * hd].isNaN, "forward wrote outside the sequences", file: file, line: line) }
    }

    func testFastExp2WithinStatedError() {
        var worst = 0.0
        var x = -126.0
        while x <= 127 {
            var v = VFloat()
            for l in 0 ..< vLanes { v[l] = Float(x + Double(l) * 0.0137) }
            let r = vexp2(v)
            for l in 0 ..< vLanes where Double(v[l]) <= 127 {
                let exact = Foundation.exp2(Double(v[l]))
                worst = max(worst, abs(Double(r[l]) - exact) / exact)
            }
            x += 0.173
        }
        XCTAssertLessThanOrEqual(worst, 4e-7, "vexp2 relative error")
        let special = vexp2(VFloat(repeating: -.infinity))
        XCTAssertEqual(special[0], 0)
        XCTAssertEqual(vexp2(VFloat(repeating: -127))[0], 0)
        XCTAssertEqual(vexp2(VFloat(repeating: 0))[0], 1)
        XCTAssertTrue(vexp2(VFloat(repeating: .nan))[0].isNaN)
    }

    func testForwardMatchesReferenceAcrossTileEdges() {
        let bs = Attention.blockSize
        for T in [1, 2, bs - 1, bs, bs + 1, 2 * bs + 3] {
            for causal in [true, false] {
                checkForward(Problem(lengths: [T], heads: 3, kvHeads: 1, headDim: 8, causal: causal, seed: UInt64(T)))
            }
        }
    }

    func testForwardMatchesReferenceForGQARatiosAndHeadDims() {
        for (heads, kvHeads) in [(2, 2), (3, 1), (4, 1), (8, 2)] {
            checkForward(Problem(lengths: [37], heads: heads, kvHeads: kvHeads, headDim: 8, seed: 3))
        }
        for D in [1, 5, 17, 64] {
            checkForward(Problem(lengths: [29], heads: 2, kvHeads: 1, headDim: D, causal: D % 2 == 1, seed: 4))
        }
        var scaled = Problem(lengths: [11], heads: 2, kvHeads: 2, headDim: 8, seed: 5)
        scaled.scale = 0.9
        checkForward(scaled)
    }

    func testForwardMatchesReferenceOnRaggedSequences() {
        let lengths = [5, 0, 64, 71, 1, 13]
        checkForward(Problem(lengths: lengths, heads: 4, kvHeads: 2, headDim: 8, lead: 3, seed: 6))
        checkForward(Problem(lengths: lengths, heads: 3, kvHeads: 3, headDim: 8, causal: false, lead: 2, seed: 7), workers: 3)
    }

    func testCausalMaskHidesFutureTokens() {
        var pr = Problem(lengths: [70], heads: 2, kvHeads: 1, headDim: 8, seed: 8)
        let (out, _) = pr.forward()
        // The first query sees only key 0: softmax of one score is exactly 1, so out = v0.
        for h in 0 ..< 2 { for d in 0 ..< 8 { XCTAssertEqual(out[h * 8 + d], pr.qkv[pr.vOffset + d], "row 0 must equal v0") } }
        // Changing the k and v of the last token leaves every earlier row bitwise unchanged...
        for c in pr.kOffset ..< pr.ld { pr.qkv[69 * pr.ld + c] += 3 }
        let (changed, _) = pr.forward()
        XCTAssertEqual(Array(out[0 ..< 69 * 16]), Array(changed[0 ..< 69 * 16]), "causal rows saw a future token")
        // ...but non-causal attention does see it.
        pr.causal = false
        let (a, _) = pr.forward()
        for c in pr.kOffset ..< pr.ld { pr.qkv[69 * pr.ld + c] -= 3 }
        let (b, _) = pr.forward()
        XCTAssertNotEqual(Array(a[0 ..< 16]), Array(b[0 ..< 16]), "non-causal row 0 ignored the last token")
    }

    func testResultsAreBitwiseIdenticalForAnyWorkerCount() {
        for causal in [true, false] {
            let pr = Problem(lengths: [70, 3, 129], heads: 4, kvHeads: 2, headDim: 8, causal: causal, seed: 9)
            var rng = SeededRNG(seed: 10)
            let dout = uniformFloats(pr.tokens * pr.heads * pr.headDim, &rng)
            let (out1, lse1) = pr.forward(workers: 1)
            for w in [2, 3] {
                let (out, lse) = pr.forward(workers: w)
                XCTAssertEqual(out, out1, "forward out differs with \(w) workers")
                XCTAssertEqual(lse, lse1, "forward lse differs with \(w) workers")
            }
            withBothBackwardModes { mode in
                let grad1 = pr.backward(dout: dout, out: out1, lse: lse1, workers: 1)
                for w in [2, 3] {
                    XCTAssertEqual(pr.backward(dout: dout, out: out1, lse: lse1, workers: w), grad1, "\(mode) backward differs with \(w) workers")
                }
            }
        }
        let (cache, q, lengths) = decodeCase(lengths: [5, Attention.decodeChunk + 70, 1], heads: 4, kvHeads: 2, headDim: 8)
        let one = decode(cache: cache, q: q, lengths: lengths, heads: 4, kvHeads: 2, headDim: 8, workers: 1)
        for w in [2, 3] {
            XCTAssertEqual(decode(cache: cache, q: q, lengths: lengths, heads: 4, kvHeads: 2, headDim: 8, workers: w), one, "decode differs with \(w) workers")
        }
    }

    // MARK: - Backward

    /// L = Σ dout ⊙ out(q, k, v) with the Double reference; central differences over every input.
    private func finiteDifferenceCheck(_ pr: Problem, file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededRNG(seed: 11)
        let hd = pr.heads * pr.headDim
        let dout = uniformFloats(pr.tokens * hd, &rng)
        let (out, lse) = pr.forward()
        let initial = uniformFloats(pr.qkv.count, &rng)
        let got = pr.backward(dout: dout, out: out, lse: lse, initial: initial)
        let x0 = pr.qkv.map(Double.init)
        let loss: ([Double]) -> Double = { x in
            let (o, _) = Attention.forwardReference(q: x, ldq: pr.ld, k: Array(x[pr.kOffset...]), ldk: pr.ld, v: Array(x[pr.vOffset...]),
                                                    ldv: pr.ld, sequenceStarts: pr.starts, heads: pr.heads, kvHeads: pr.kvHeads,
                                                    headDim: pr.headDim, causal: pr.causal, scale: pr.scale.map(Double.init))
            var l = 0.0
            for i in 0 ..< o.count { l += o[i] * Double(dout[i]) }
            return l
        }
        let numeric = numericalGradient(of: loss, at: x0)
        var idx = [Int]()
        for t in 0 ..< pr.tokens { for c in 0 ..< (pr.heads + 2 * pr.kvHeads) * pr.headDim { idx.append(t * pr.ld + c) } }
        // backward accumulates onto `initial`
        assertGradientsMatch(analytic: idx.map { got[$0] - initial[$0] }, numeric: idx.map { numeric[$0] },
                             "dqkv \(pr.lengths) H=\(pr.heads)/\(pr.kvHeads) D=\(pr.headDim) causal=\(pr.causal)",
                             rtol: 1e-3, floor: 1e-2, file: file, line: line)
        // Spare columns of the fused buffer are never written.
        for t in 0 ..< pr.tokens { for c in idx.count / max(pr.tokens, 1) ..< pr.ld { XCTAssertEqual(got[t * pr.ld + c], initial[t * pr.ld + c], file: file, line: line) } }
        // The Double reference backward agrees with the same differences.
        let ref = Attention.backwardReference(dout: dout.map(Double.init), q: x0, ldq: pr.ld, k: Array(x0[pr.kOffset...]), ldk: pr.ld,
                                              v: Array(x0[pr.vOffset...]), ldv: pr.ld, sequenceStarts: pr.starts, heads: pr.heads,
                                              kvHeads: pr.kvHeads, headDim: pr.headDim, causal: pr.causal, scale: pr.scale.map(Double.init))
        var refFused = [Float](repeating: 0, count: pr.qkv.count)
        let D = pr.headDim
        for t in 0 ..< pr.tokens {
            for c in 0 ..< pr.heads * D { refFused[t * pr.ld + c] = Float(ref.dq[t * pr.heads * D + c]) }
            for c in 0 ..< pr.kvHeads * D {
                refFused[t * pr.ld + pr.kOffset + c] = Float(ref.dk[t * pr.kvHeads * D + c])
                refFused[t * pr.ld + pr.vOffset + c] = Float(ref.dv[t * pr.kvHeads * D + c])
            }
        }
        assertGradientsMatch(analytic: idx.map { refFused[$0] }, numeric: idx.map { numeric[$0] }, "backwardReference",
                             rtol: 1e-5, floor: 1e-2, file: file, line: line)
    }

    func testBackwardMatchesFiniteDifferences() {
        withBothBackwardModes { _ in
            finiteDifferenceCheck(Problem(lengths: [4], heads: 2, kvHeads: 1, headDim: 4, seed: 12))
            finiteDifferenceCheck(Problem(lengths: [3, 0, 5], heads: 3, kvHeads: 1, headDim: 3, causal: false, lead: 1, seed: 13))
            finiteDifferenceCheck(Problem(lengths: [6, 2], heads: 4, kvHeads: 4, headDim: 5, seed: 14))
            var scaled = Problem(lengths: [5], heads: 2, kvHeads: 2, headDim: 2, seed: 15)
            scaled.scale = 1.3
            finiteDifferenceCheck(scaled)
        }
    }

    /// Fast backward vs the Double reference backward on shapes that cross tile edges.
    func testBackwardMatchesReferenceAcrossTileEdges() {
        let bs = Attention.blockSize
        let shapes: [(lengths: [Int], heads: Int, kvHeads: Int, D: Int, causal: Bool)] = [
            ([bs + 1, 1, bs - 1], 3, 1, 8, true), ([2 * bs + 3], 4, 1, 8, false), ([bs, 37], 2, 2, 17, true),
            ([bs + 5], 2, 1, 64, true),
        ]
        withBothBackwardModes { mode in
        for sh in shapes {
            let pr = Problem(lengths: sh.lengths, heads: sh.heads, kvHeads: sh.kvHeads, headDim: sh.D, causal: sh.causal, lead: 2, seed: 16)
            var rng = SeededRNG(seed: 17)
            let hd = pr.heads * pr.headDim
            let dout = uniformFloats(pr.tokens * hd, &rng)
            let (out, lse) = pr.forward()
            let got = pr.backward(dout: dout, out: out, lse: lse)
            let x = pr.qkv.map(Double.init)
            let ref = Attention.backwardReference(dout: dout.map(Double.init), q: x, ldq: pr.ld, k: Array(x[pr.kOffset...]), ldk: pr.ld,
                                                  v: Array(x[pr.vOffset...]), ldv: pr.ld, sequenceStarts: pr.starts, heads: pr.heads,
                                                  kvHeads: pr.kvHeads, headDim: pr.headDim, causal: pr.causal)
            // Each gradient is a sum over ≤ T·group terms of products of O(1) factors, each computed
            // from D-term dot products: bound ∝ (T·group + D)·eps times the largest term.
            let T = Double(sh.lengths.max()!), G = Double(sh.heads / sh.kvHeads), D = Double(sh.D)
            let bound = 8 * (T * G + D) * eps * (1 + D / D.squareRoot())
            let what = "backward \(mode) \(sh.lengths) H=\(sh.heads)/\(sh.kvHeads) D=\(sh.D) causal=\(sh.causal)"
            let hkd = pr.kvHeads * pr.headDim
            let dqRows = pr.sequenceRows(width: hd), kvRows = pr.sequenceRows(width: hkd)
            assertWithinBound(pr.sequenceRows(width: hd, stride: pr.ld).map { got[$0] }, dqRows.map { ref.dq[$0] }, what + " dq", bound: { _ in bound })
            assertWithinBound(pr.sequenceRows(width: hkd, stride: pr.ld, offset: pr.kOffset).map { got[$0] }, kvRows.map { ref.dk[$0] }, what + " dk", bound: { _ in bound })
            assertWithinBound(pr.sequenceRows(width: hkd, stride: pr.ld, offset: pr.vOffset).map { got[$0] }, kvRows.map { ref.dv[$0] }, what + " dv", bound: { _ in bound })
        }
        }
    }

    /// Release builds only (debug SIMD is ~100x slower): head dims 64 and 128 over several tiles,
    /// forward and both backward modes against the Double references.
    func testLargeShapesMatchReferenceInReleaseBuilds() throws {
        try XCTSkipUnless(isReleaseBuild, "large attention shapes run in release builds (swift test -c release)")
        for (lengths, heads, kvHeads, D, causal) in [([200, 67], 4, 2, 64, true), ([130], 4, 2, 128, false)] {
            let pr = Problem(lengths: lengths, heads: heads, kvHeads: kvHeads, headDim: D, causal: causal, lead: 1, seed: 23)
            checkForward(pr, workers: 2)
            var rng = SeededRNG(seed: 24)
            let hd = heads * D, hkd = kvHeads * D
            let dout = uniformFloats(pr.tokens * hd, &rng)
            let (out, lse) = pr.forward()
            let x = pr.qkv.map(Double.init)
            let ref = Attention.backwardReference(dout: dout.map(Double.init), q: x, ldq: pr.ld, k: Array(x[pr.kOffset...]), ldk: pr.ld,
                                                  v: Array(x[pr.vOffset...]), ldv: pr.ld, sequenceStarts: pr.starts, heads: heads,
                                                  kvHeads: kvHeads, headDim: D, causal: causal)
            let T = Double(lengths.max()!), G = Double(heads / kvHeads), Dd = Double(D)
            let bound = 8 * (T * G + Dd) * eps * (1 + Dd.squareRoot())
            withBothBackwardModes { mode in
                let got = pr.backward(dout: dout, out: out, lse: lse, workers: 2)
                let what = "large backward \(mode) \(lengths) H=\(heads)/\(kvHeads) D=\(D) causal=\(causal)"
                assertWithinBound(pr.sequenceRows(width: hd, stride: pr.ld).map { got[$0] }, pr.sequenceRows(width: hd).map { ref.dq[$0] }, what + " dq", bound: { _ in bound })
                assertWithinBound(pr.sequenceRows(width: hkd, stride: pr.ld, offset: pr.kOffset).map { got[$0] }, pr.sequenceRows(width: hkd).map { ref.dk[$0] }, what + " dk", bound: { _ in bound })
                assertWithinBound(pr.sequenceRows(width: hkd, stride: pr.ld, offset: pr.vOffset).map { got[$0] }, pr.sequenceRows(width: hkd).map { ref.dv[$0] }, what + " dv", bound: { _ in bound })
            }
        }
    }

    // MARK: - Padding invariance

    /// A sequence's outputs and gradients do not depend on the other sequences of the batch
    /// nor on extra rows around it: they are bitwise identical alone and batched.
    func testPaddingAndBatchingChangeNothingForRealTokens() {
        for causal in [true, false] {
            let alone = Problem(lengths: [67], heads: 3, kvHeads: 1, headDim: 8, causal: causal, seed: 18)
            var batched = Problem(lengths: [5, 67, 64], heads: 3, kvHeads: 1, headDim: 8, causal: causal, lead: 7, seed: 19)
            let first = batched.starts[1]
            for t in 0 ..< 67 { for c in 0 ..< alone.ld { batched.qkv[(first + t) * batched.ld + c] = alone.qkv[t * alone.ld + c] } }
            var rng = SeededRNG(seed: 20)
            let hd = 3 * 8
            let doutAlone = uniformFloats(67 * hd, &rng)
            var doutBatched = uniformFloats(batched.tokens * hd, &rng)
            for i in 0 ..< 67 * hd { doutBatched[first * hd + i] = doutAlone[i] }
            let (oA, lA) = alone.forward(), (oB, lB) = batched.forward(workers: 2)
            XCTAssertEqual(Array(oA[0 ..< 67 * hd]), Array(oB[first * hd ..< (first + 67) * hd]), "out changed when batched")
            for h in 0 ..< 3 {
                XCTAssertEqual(Array(lA[h * 67 ..< (h + 1) * 67]), Array(lB[h * batched.tokens + first ..< h * batched.tokens + first + 67]), "lse changed")
            }
            withBothBackwardModes { mode in
                let gA = alone.backward(dout: doutAlone, out: oA, lse: lA)
                let gB = batched.backward(dout: doutBatched, out: oB, lse: lB, workers: 3)
                XCTAssertEqual(Array(gA[0 ..< 67 * alone.ld]), Array(gB[first * batched.ld ..< (first + 67) * batched.ld]), "\(mode) gradients changed when batched")
            }
        }
    }

    // MARK: - Decode

    /// Per-sequence caches of `maxTokens` rows (kvHeads·D keys then values, row stride ldkv).
    private func decodeCase(lengths: [Int], heads: Int, kvHeads: Int, headDim: Int) -> (cache: [Float], q: [Float], lengths: [Int]) {
        var rng = SeededRNG(seed: 21)
        let maxTokens = lengths.max()! + 2, ldkv = 2 * kvHeads * headDim + 1
        return (uniformFloats(lengths.count * maxTokens * ldkv, &rng), uniformFloats(lengths.count * heads * headDim, &rng), lengths)
    }

    private func decode(cache: [Float], q: [Float], lengths: [Int], heads: Int, kvHeads: Int, headDim: Int, workers: Int? = nil) -> [Float] {
        let maxTokens = lengths.max()! + 2, ldkv = 2 * kvHeads * headDim + 1
        var out = [Float](repeating: .nan, count: lengths.count * heads * headDim)
        cache.withUnsafeBufferPointer { c in
            Attention.decode(out: &out, ldo: heads * headDim, q: q, ldq: heads * headDim, keyCache: c.baseAddress!,
                             valueCache: c.baseAddress! + kvHeads * headDim, ldkv: ldkv, cacheStride: maxTokens * ldkv,
                             lengths: lengths, heads: heads, kvHeads: kvHeads, headDim: headDim, workers: workers)
        }
        return out
    }

    func testDecodeMatchesLastRowOfFullForward() {
        let chunk = Attention.decodeChunk
        let configs: [(Int, Int, Int, [Int])] = [(4, 2, 8, [1, 17, 70]), (3, 1, 5, [1, 17, 70]), (2, 2, 64, [70]),
                                                 (2, 1, 4, [chunk + 1, 1, 2 * chunk + 37])]
        for (heads, kvHeads, D, lengths) in configs {
            let (cache, q, _) = decodeCase(lengths: lengths, heads: heads, kvHeads: kvHeads, headDim: D)
            let got = decode(cache: cache, q: q, lengths: lengths, heads: heads, kvHeads: kvHeads, headDim: D, workers: 2)
            let maxTokens = lengths.max()! + 2, ldkv = 2 * kvHeads * D + 1
            for (s, n) in lengths.enumerated() {
                // The full causal forward over the cached sequence, with the query as its last row.
                let ldq = heads * D
                var qs = [Float](repeating: 0, count: n * ldq)
                for c in 0 ..< ldq { qs[(n - 1) * ldq + c] = q[s * ldq + c] }
                let base = s * maxTokens * ldkv
                let kv = Array(cache[base ..< base + n * ldkv])
                var out = [Float](repeating: 0, count: n * ldq), lse = [Float](repeating: 0, count: heads * n)
                kv.withUnsafeBufferPointer { c in
                    Attention.forward(out: &out, ldo: ldq, lse: &lse, q: qs, ldq: ldq, k: c.baseAddress!, ldk: ldkv,
                                      v: c.baseAddress! + kvHeads * D, ldv: ldkv, sequenceStarts: [0, n],
                                      heads: heads, kvHeads: kvHeads, headDim: D)
                }
                let ref = Attention.forwardReference(q: qs.map(Double.init), ldq: ldq, k: kv.map(Double.init), ldk: ldkv,
                                                     v: Array(kv.map(Double.init)[(kvHeads * D)...]), ldv: ldkv,
                                                     sequenceStarts: [0, n], heads: heads, kvHeads: kvHeads, headDim: D).out
                let last = Array(((n - 1) * ldq) ..< (n * ldq))
                let bound = 8 * Double(n + D + 8) * eps + 1e-6
                let decoded = Array(got[s * ldq ..< (s + 1) * ldq])
                assertWithinBound(decoded, last.map { ref[$0] }, "decode s=\(s) n=\(n) H=\(heads)/\(kvHeads) D=\(D)", bound: { _ in bound })
                assertWithinBound(decoded, last.map { Double(out[$0]) }, "decode vs forward s=\(s)", bound: { _ in 2 * bound })
            }
        }
    }
}
