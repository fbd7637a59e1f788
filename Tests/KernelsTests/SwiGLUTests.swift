import Foundation
import Kernels
import TestSupport
import XCTest

final class SwiGLUTests: XCTestCase {
    /// σ via vexp: 1/(1 + e(1 + δ)) has relative error <= δ·e/(1+e) + 2 ulp; silu·up adds 2 more roundings.
    private var rtol: Double { 2 * FastMath.expMaxRelativeError + 6 * Double(Float.ulpOfOne) }

    func testSwiGLUForwardMatchesReferenceAcrossLaneEdges() {
        var rng = SeededRNG(seed: 31)
        for n in laneEdgeSizes + [1536] {
            let g = normalFloats(n, &rng, scale: 4), u = normalFloats(n, &rng)
            var out = [Float](repeating: .nan, count: n)
            SwiGLU.forward(out: &out, gate: g, up: u, count: n)
            let ref = SwiGLU.forwardReference(gate: g.doubles, up: u.doubles)
            assertWithinBound(out, ref, "swiglu n=\(n)", bound: { self.rtol * abs(ref[$0]) + 1e-37 })
        }
    }

    func testSwiGLUBackwardMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 32)
        for n in [1, vLanes - 1, vLanes + 1, 2 * vLanes + 3, 29].filter({ $0 >= 1 }) {
            let g = normalFloats(n, &rng, scale: 3), u = normalFloats(n, &rng), d = uniformFloats(n, &rng)
            let g0 = uniformFloats(n, &rng), u0 = uniformFloats(n, &rng)
            var dg = g0, du = u0
            SwiGLU.backward(dgate: &dg, dup: &du, dout: d, gate: g, up: u, count: n)
            let ngate = numericalGradient(of: { projection(SwiGLU.forwardReference(gate: $0, up: u.doubles), d.doubles) }, at: g.doubles)
            let nup = numericalGradient(of: { projection(SwiGLU.forwardReference(gate: g.doubles, up: $0), d.doubles) }, at: u.doubles)
            assertGradientsMatch(analytic: zip(dg, g0).map { $0 - $1 }, numeric: ngate, "swiglu dgate n=\(n)", floor: 1e-3)
            assertGradientsMatch(analytic: zip(du, u0).map { $0 - $1 }, numeric: nup, "swiglu dup n=\(n)", floor: 1e-3)
        }
    }

    func testSwiGLUBitIdenticalForAnyWorkerCount() {
        var rng = SeededRNG(seed: 33)
        let n = 3 * 16384 + 5
        let g = normalFloats(n, &rng), u = normalFloats(n, &rng), d = normalFloats(n, &rng)
        var outs: [[UInt32]] = []
        for workers in [1, 2, 3] {
            var out = [Float](repeating: 0, count: n), dg = out, du = out
            SwiGLU.forward(out: &out, gate: g, up: u, count: n, workers: workers)
            SwiGLU.backward(dgate: &dg, dup: &du, dout: d, gate: g, up: u, count: n, workers: workers)
            outs.append(out.bits + dg.bits + du.bits)
        }
        XCTAssertEqual(outs[0], outs[1]); XCTAssertEqual(outs[0], outs[2])
    }
}

final class SoftmaxTests: XCTestCase {
    func testSoftmaxForwardMatchesReferenceAcrossLaneEdges() {
        var rng = SeededRNG(seed: 41)
        for n in laneEdgeSizes + [100] {
            let rows = 3
            var x = normalFloats(rows * n, &rng, scale: 5)
            if n > 2 { x[1] = -.infinity }  // a masked entry
            var out = [Float](repeating: .nan, count: x.count)
            Softmax.forward(out: &out, inp: x, rows: rows, columns: n)
            let ref = Softmax.forwardReference(x.doubles, rows: rows, columns: n)
            // exp error δ per term, the sum's rounding n·ε, one division.
            let rtol = 2 * FastMath.expMaxRelativeError + Double(n + 4) * Double(Float.ulpOfOne)
            assertWithinBound(out, ref, "softmax n=\(n)", bound: { rtol * abs(ref[$0]) + 1e-37 })
        }
    }

    func testSoftmaxFullyMaskedRowGivesZeros() {
        let x = [Float](repeating: -.infinity, count: 7)
        var out = [Float](repeating: .nan, count: 7)
        Softmax.forward(out: &out, inp: x, rows: 1, columns: 7)
        XCTAssertEqual(out, [Float](repeating: 0, count: 7))
    }

    func testSoftmaxBackwardMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 42)
        for n in [1, vLanes - 1, vLanes + 1, 2 * vLanes + 3, 23].filter({ $0 >= 1 }) {
            let rows = 2
            let x = normalFloats(rows * n, &rng), g = uniformFloats(rows * n, &rng)
            var y = [Float](repeating: 0, count: x.count)
            Softmax.forward(out: &y, inp: x, rows: rows, columns: n)
            let d0 = uniformFloats(x.count, &rng)
            var dx = d0
            Softmax.backward(dinp: &dx, dout: g, out: y, rows: rows, columns: n)
            let num = numericalGradient(of: { projection(Softmax.forwardReference($0, rows: rows, columns: n), g.doubles) }, at: x.doubles)
            assertGradientsMatch(analytic: zip(dx, d0).map { $0 - $1 }, numeric: num, "softmax backward n=\(n)", floor: 1e-3)
        }
    }

    func testSoftmaxBitIdenticalForAnyWorkerCount() {
        var rng = SeededRNG(seed: 43)
        let rows = 40, n = 1001
        let x = normalFloats(rows * n, &rng), g = normalFloats(rows * n, &rng)
        var outs: [[UInt32]] = []
        for workers in [1, 2, 3] {
            var y = [Float](repeating: 0, count: x.count), dx = y
            Softmax.forward(out: &y, inp: x, rows: rows, columns: n, workers: workers)
            Softmax.backward(dinp: &dx, dout: g, out: y, rows: rows, columns: n, workers: workers)
            outs.append(y.bits + dx.bits)
        }
        XCTAssertEqual(outs[0], outs[1]); XCTAssertEqual(outs[0], outs[2])
    }
}

final class EmbeddingTests: XCTestCase {
    func testEmbeddingForwardCopiesRows() {
        var rng = SeededRNG(seed: 51)
        let vocab = 11, C = 2 * vLanes + 3
        let table = normalFloats(vocab * C, &rng)
        let ids: [Int32] = [3, 0, 10, 3, 7]
        var out = [Float](repeating: .nan, count: ids.count * C)
        Embedding.forward(out: &out, ids: ids, table: table, tokens: ids.count, vocab: vocab, channels: C)
        for (t, id) in ids.enumerated() {
            XCTAssertEqual(Array(out[t * C ..< (t + 1) * C]), Array(table[Int(id) * C ..< (Int(id) + 1) * C]))
        }
    }

    func testEmbeddingBackwardScatterAddsInTokenOrder() {
        var rng = SeededRNG(seed: 52)
        let vocab = 50, C = vLanes + 1, tokens = 300
        let ids = (0 ..< tokens).map { _ in Int32.random(in: 0 ..< 50, using: &rng) }
        let dout = normalFloats(tokens * C, &rng)
        let d0 = normalFloats(vocab * C, &rng)
        var results: [[UInt32]] = []
        for workers in [1, 2, 3] {
            var dtable = d0
            Embedding.backward(dtable: &dtable, dout: dout, ids: ids, tokens: tokens, vocab: vocab, channels: C, workers: workers)
            results.append(dtable.bits)
            // Against a sequential scatter-add in token order (exactly the same additions).
            var ref = d0
            for t in 0 ..< tokens { for c in 0 ..< C { ref[Int(ids[t]) * C + c] += dout[t * C + c] } }
            XCTAssertEqual(dtable.bits, ref.bits, "workers \(workers)")
        }
        XCTAssertEqual(results[0], results[1]); XCTAssertEqual(results[0], results[2])
    }

    func testResidualAddMatchesElementwiseSum() {
        var rng = SeededRNG(seed: 53)
        for n in laneEdgeSizes {
            let a = normalFloats(n, &rng), b = normalFloats(n, &rng)
            var out = [Float](repeating: .nan, count: n)
            Residual.add(out: &out, a, b, count: n)
            XCTAssertEqual(out, zip(a, b).map { $0 + $1 })
            var x = a
            x.withUnsafeMutableBufferPointer { p in Residual.add(out: p.baseAddress!, p.baseAddress!, b, count: n) }
            XCTAssertEqual(x, out, "in place")
        }
    }
}
