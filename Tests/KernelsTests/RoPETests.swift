import Foundation
import Kernels
import TestSupport
import XCTest

final class RoPETests: XCTestCase {
    private func forward(_ x: [Float], positions: [Int32], rows: Int, heads: Int, D: Int, rot: Int, base: Double,
                         layout: RoPE.Layout, workers: Int? = nil) -> [Float] {
        let maxPos = Int(positions.max() ?? 0) + 1
        let (c, s) = RoPE.table(positions: maxPos, rotaryDim: rot, base: base)
        var out = [Float](repeating: .nan, count: x.count)
        RoPE.forward(out: &out, inp: x, positions: positions, rows: rows, heads: heads, headDim: D, rotaryDim: rot,
                     layout: layout, cos: c, sin: s, tablePositions: maxPos, workers: workers)
        return out
    }

    func testRoPEForwardMatchesReferenceBothLayouts() {
        var rng = SeededRNG(seed: 21)
        for layout in [RoPE.Layout.adjacentPairs, .rotateHalf] {
            for (D, rot) in [(2, 2), (2 * vLanes, 2 * vLanes), (2 * vLanes + 2, 2 * vLanes + 2), (64, 64), (64, 32), (2 * (2 * vLanes + 3), 2 * vLanes)] {
                let rows = 5, heads = 3
                // Ragged batch: positions restart per sequence and include a large one.
                let positions: [Int32] = [0, 1, 2, 0, 4000]
                let x = normalFloats(rows * heads * D, &rng)
                let out = forward(x, positions: positions, rows: rows, heads: heads, D: D, rot: rot, base: 100_000, layout: layout)
                let ref = RoPE.forwardReference(x.doubles, positions: positions, rows: rows, heads: heads, headDim: D,
                                                rotaryDim: rot, base: 100_000, layout: layout)
                // Table entries are rounded once (ε/2 each), two products and a sum: 4ε·(|a| + |b|) covers it.
                let eps = Double(Float.ulpOfOne)
                assertWithinBound(out, ref, "rope \(layout) D=\(D) rot=\(rot)", bound: { i in
                    let o = i - i % D
                    let mx = (o ..< o + D).map { abs(Double(x[$0])) }.max()!
                    return 4 * eps * 2 * mx + 1e-30
                })
                // Dimensions past rotaryDim pass through untouched.
                for t in 0 ..< rows * heads { for j in rot ..< D { XCTAssertEqual(out[t * D + j], x[t * D + j]) } }
            }
        }
    }

    func testRoPEBackwardMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 22)
        for layout in [RoPE.Layout.adjacentPairs, .rotateHalf] {
            let rows = 3, heads = 2, D = 2 * vLanes + 2, rot = 2 * vLanes, base = 10_000.0
            let positions: [Int32] = [3, 0, 17]
            let x = uniformFloats(rows * heads * D, &rng), g = uniformFloats(x.count, &rng)
            let (c, s) = RoPE.table(positions: 18, rotaryDim: rot, base: base)
            let d0 = uniformFloats(x.count, &rng)
            var dx = d0
            RoPE.backward(dinp: &dx, dout: g, positions: positions, rows: rows, heads: heads, headDim: D, rotaryDim: rot,
                          layout: layout, cos: c, sin: s, tablePositions: 18)
            let gx = zip(dx, d0).map { $0 - $1 }
            let num = numericalGradient(of: {
                projection(RoPE.forwardReference($0, positions: positions, rows: rows, heads: heads, headDim: D,
                                                 rotaryDim: rot, base: base, layout: layout), g.doubles)
            }, at: x.doubles)
            assertGradientsMatch(analytic: gx, numeric: num, "rope backward \(layout)", floor: 1e-3)
        }
    }

    /// llama.cpp's converter permutes each head's Q/K rows: GGUF row 2i + j is HF row j·(D/2) + i.
    /// Applying adjacent-pair RoPE to the permuted vectors must equal permuting the rotate-half result.
    func testRoPEConverterPermutationMapsRotateHalfToAdjacentPairs() {
        var rng = SeededRNG(seed: 23)
        let rows = 4, heads = 3, D = 64
        let positions: [Int32] = [0, 7, 100, 2047]
        let x = normalFloats(rows * heads * D, &rng)
        func permute(_ v: [Float]) -> [Float] {
            var p = v
            for h in 0 ..< rows * heads {
                for i in 0 ..< D / 2 { for j in 0 ..< 2 { p[h * D + 2 * i + j] = v[h * D + j * (D / 2) + i] } }
            }
            return p
        }
        let hf = forward(x, positions: positions, rows: rows, heads: heads, D: D, rot: D, base: 100_000, layout: .rotateHalf)
        let gguf = forward(permute(x), positions: positions, rows: rows, heads: heads, D: D, rot: D, base: 100_000, layout: .adjacentPairs)
        XCTAssertEqual(gguf.bits, permute(hf).bits, "same rotation per pair, so bitwise equal")
        // And the two layouts genuinely differ on unpermuted input (the test can fail).
        let wrong = forward(x, positions: positions, rows: rows, heads: heads, D: D, rot: D, base: 100_000, layout: .adjacentPairs)
        XCTAssertNotEqual(wrong.bits, hf.bits)
    }

    func testRoPEInPlaceAndBitIdenticalForAnyWorkerCount() {
        var rng = SeededRNG(seed: 24)
        let rows = 64, heads = 9, D = 64
        let positions = (0 ..< rows).map { Int32($0 % 37) }
        let x = normalFloats(rows * heads * D, &rng)
        let (c, s) = RoPE.table(positions: 37, rotaryDim: D, base: 100_000)
        var outs: [[UInt32]] = []
        for workers in [1, 2, 3] {
            outs.append(forward(x, positions: positions, rows: rows, heads: heads, D: D, rot: D, base: 100_000, layout: .rotateHalf, workers: workers).bits)
        }
        XCTAssertEqual(outs[0], outs[1]); XCTAssertEqual(outs[0], outs[2])
        var inplace = x
        inplace.withUnsafeMutableBufferPointer { p in
            RoPE.forward(out: p.baseAddress!, inp: p.baseAddress!, positions: positions, rows: rows, heads: heads, headDim: D,
                         rotaryDim: D, layout: .rotateHalf, cos: c, sin: s, tablePositions: 37)
        }
        XCTAssertEqual(inplace.bits, outs[0])
    }

    func testRoPETableMatchesDoubleAngles() {
        let (c, s) = RoPE.table(positions: 3000, rotaryDim: 64, base: 100_000)
        for p in [0, 1, 2999] {
            for i in [0, 1, 31] {
                let theta = Double(p) * pow(100_000, -2 * Double(i) / 64)
                XCTAssertEqual(c[p * 32 + i], Float(cos(theta)))
                XCTAssertEqual(s[p * 32 + i], Float(sin(theta)))
            }
        }
    }
}
