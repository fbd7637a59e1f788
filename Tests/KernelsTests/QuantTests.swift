import Foundation
import Kernels
import TestSupport
import XCTest

final class QuantTests: XCTestCase {
    private func dequant(_ type: GGMLType, _ bytes: [UInt8], count: Int) -> [Float] {
        XCTAssertEqual(type.rowBytes(count: count), bytes.count, "\(type.name) block size")
        var out = [Float](repeating: .nan, count: count)
        bytes.withUnsafeBytes { Dequantize.row(type, src: $0.baseAddress!, out: &out, count: count) }
        return out
    }

    private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }

    func testGGMLTypeIdsAndBlockSizes() {
        let expected: [(GGMLType, UInt32, Int, Int)] = [(.f32, 0, 1, 4), (.f16, 1, 1, 2), (.q4_0, 2, 32, 18), (.q4_1, 3, 32, 20),
                                                        (.q8_0, 8, 32, 34), (.q4_K, 12, 256, 144), (.q6_K, 14, 256, 210), (.bf16, 30, 1, 2)]
        for (t, id, bs, bpb) in expected {
            XCTAssertEqual(t.rawValue, id); XCTAssertEqual(t.blockSize, bs); XCTAssertEqual(t.bytesPerBlock, bpb)
            XCTAssertEqual(GGMLType(rawValue: id), t)
        }
        XCTAssertNil(GGMLType.q8_0.rowBytes(count: 33))
        XCTAssertEqual(GGMLType.q4_1.rowBytes(count: 576), 18 * 20)
        XCTAssertNil(GGMLType.f32.rowBytes(count: Int.max / 2), "overflow is reported, not trapped")
    }

    func testHalfConversionsKnownValuesAndRoundTrip() {
        let known: [(UInt16, Float)] = [(0x3C00, 1), (0xC000, -2), (0x7BFF, 65504), (0x0001, 0x1p-24), (0x8400, -0x1p-14),
                                        (0x3555, 0.333251953125), (0x0000, 0), (0x8000, -0.0), (0x7C00, .infinity), (0xFC00, -.infinity),
                                        (0x03FF, 0x1.ff8p-15)]
        for (h, f) in known {
            XCTAssertEqual(HalfFloat.toFloat(h).bitPattern, f.bitPattern, "half 0x\(String(h, radix: 16))")
            XCTAssertEqual(HalfFloat.fromFloat(f), h, "float \(f)")
        }
        XCTAssertTrue(HalfFloat.toFloat(0x7E00).isNaN); XCTAssertTrue(HalfFloat.toFloat(HalfFloat.fromFloat(.nan)).isNaN)
        // Every finite half survives the round trip.
        for h in 0 ... 0xFFFF where (h & 0x7C00) != 0x7C00 {
            XCTAssertEqual(HalfFloat.fromFloat(HalfFloat.toFloat(UInt16(h))), UInt16(h))
        }
        // Ties round to even; overflow past 65520 goes to infinity.
        XCTAssertEqual(HalfFloat.fromFloat(1 + 0x1p-11), 0x3C00)
        XCTAssertEqual(HalfFloat.fromFloat(1 + 3 * 0x1p-11), 0x3C02)
        XCTAssertEqual(HalfFloat.fromFloat(65519), 0x7BFF); XCTAssertEqual(HalfFloat.fromFloat(65520), 0x7C00)
        XCTAssertEqual(HalfFloat.fromFloat(0x1p-25), 0); XCTAssertEqual(HalfFloat.fromFloat(0x1.8p-25), 1)
        #if !(os(macOS) && arch(x86_64))
        var rng = SeededRNG(seed: 81)
        for _ in 0 ..< 100_000 {
            let f = Float(bitPattern: UInt32.random(in: 0x3000_0000 ... 0x4800_0000, using: &rng) | (Bool.random(using: &rng) ? 0x8000_0000 : 0))
            XCTAssertEqual(HalfFloat.fromFloat(f), Float16(f).bitPattern, "\(f)")
        }
        #endif
        // bfloat16
        XCTAssertEqual(HalfFloat.bf16ToFloat(0x3F80), 1); XCTAssertEqual(HalfFloat.bf16ToFloat(0xC040), -3)
        XCTAssertEqual(HalfFloat.bf16FromFloat(Float(bitPattern: 0x3F80_8000)), 0x3F80, "tie to even")
        XCTAssertEqual(HalfFloat.bf16FromFloat(Float(bitPattern: 0x3F81_8000)), 0x3F82, "tie to even (up)")
        XCTAssertEqual(HalfFloat.bf16FromFloat(Float(bitPattern: 0x3F80_8001)), 0x3F81)
        XCTAssertTrue(HalfFloat.bf16ToFloat(HalfFloat.bf16FromFloat(.nan)).isNaN)
    }

    func testDequantizeFloatTypesHandComputed() {
        XCTAssertEqual(dequant(.f16, le16(0x3C00) + le16(0xC000) + le16(0x0001), count: 3), [1, -2, 0x1p-24])
        XCTAssertEqual(dequant(.bf16, le16(0x3F80) + le16(0xC040), count: 2), [1, -3])
        let f: [Float] = [1.5, -0.25]
        XCTAssertEqual(dequant(.f32, f.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }, count: 2), f)
    }

    func testDequantizeQ8_0HandComputedNegativeScale() {
        // d = −0.5 (0xB800); q = −128, 127, 0, 1, −1, then 5 for the rest.
        let qs: [Int8] = [-128, 127, 0, 1, -1] + [Int8](repeating: 5, count: 27)
        let bytes = le16(0xB800) + qs.map { UInt8(bitPattern: $0) }
        let out = dequant(.q8_0, bytes, count: 32)
        XCTAssertEqual(Array(out[0 ..< 5]), [64, -63.5, -0.0, -0.5, 0.5])
        XCTAssertEqual(Array(out[5...]), [Float](repeating: -2.5, count: 27))
    }

    func testDequantizeQ4_0HandComputedExtremeNibbles() {
        // d = −0.25 (0xB400): nibble 0 -> (0 − 8)·d = 2, nibble 15 -> 7·d = −1.75, nibble 8 -> 0.
        var qs = [UInt8](repeating: 0x88, count: 16)
        qs[0] = 0x0F; qs[1] = 0xF0; qs[2] = 0x3C
        let out = dequant(.q4_0, le16(0xB400) + qs, count: 32)
        XCTAssertEqual(out[0], -1.75); XCTAssertEqual(out[16], 2)     // byte 0: low 15, high 0
        XCTAssertEqual(out[1], 2); XCTAssertEqual(out[17], -1.75)     // byte 1: low 0, high 15
        XCTAssertEqual(out[2], -1); XCTAssertEqual(out[18], 1.25)     // byte 2: low 12 -> 4·d, high 3 -> −5·d
        XCTAssertEqual(out[3], 0); XCTAssertEqual(out[31], 0)
    }

    func testDequantizeQ4_1HandComputed() {
        // d = −2 (0xC000), m = 3 (0x4200): x = q·d + m.
        var qs = [UInt8](repeating: 0x00, count: 16)
        qs[0] = 0xF0; qs[15] = 0x1E
        let out = dequant(.q4_1, le16(0xC000) + le16(0x4200) + qs, count: 32)
        XCTAssertEqual(out[0], 3); XCTAssertEqual(out[16], -27)
        XCTAssertEqual(out[15], -25); XCTAssertEqual(out[31], 1)
        XCTAssertEqual(out[1], 3)
        // d = 0.5, m = −1.
        let out2 = dequant(.q4_1, le16(0x3800) + le16(0xBC00) + [UInt8](repeating: 0xF0, count: 16), count: 32)
        XCTAssertEqual(out2[0], -1); XCTAssertEqual(out2[16], 6.5)
    }

    /// Packs eight 6-bit (scale, min) pairs the way Q4_K's 12 bytes hold them.
    private func packScaleMinK4(_ sc: [UInt8], _ mn: [UInt8]) -> [UInt8] {
        var q = [UInt8](repeating: 0, count: 12)
        for j in 0 ..< 4 {
            q[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6)
            q[j + 4] = (mn[j] & 63) | ((mn[j + 4] >> 4) << 6)
            q[j + 8] = (sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4)
        }
        return q
    }

    func testDequantizeQ4_KHandComputed() {
        let sc: [UInt8] = [1, 63, 0, 17, 63, 32, 5, 48], mn: [UInt8] = [0, 63, 9, 1, 63, 16, 33, 2]
        var rng = SeededRNG(seed: 82)
        let qs = (0 ..< 128).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
        // d = 0.5 (0x3800), dmin = −0.25 (0xB400: a negative min scale).
        let bytes = le16(0x3800) + le16(0xB400) + packScaleMinK4(sc, mn) + qs
        let out = dequant(.q4_K, bytes, count: 256)
        for s in 0 ..< 8 {
            for l in 0 ..< 32 {
                let byte = qs[(s / 2) * 32 + l]
                let q = s % 2 == 0 ? byte & 0xF : byte >> 4
                let expected = (Float(0.5) * Float(sc[s])) * Float(q) - Float(-0.25) * Float(mn[s])
                XCTAssertEqual(out[s * 32 + l], expected, "sub-block \(s) element \(l)")
            }
        }
        // One literal: sub-block 1 (sc 63, mn 63), q = high nibble of qs[0].
        XCTAssertEqual(out[32], 31.5 * Float(qs[0] >> 4) + 15.75)
    }

    func testDequantizeQ6_KHandComputed() {
        var rng = SeededRNG(seed: 83)
        var L = (0 ..< 256).map { _ in UInt8.random(in: 0 ... 63, using: &rng) }
        L[0] = 0; L[1] = 63; L[200] = 63; L[255] = 0
        let scales: [Int8] = [-128, 127, 1, -1, 2, 3, -7, 9, 0, 64, -64, 5, 6, -3, 11, 100]
        var ql = [UInt8](repeating: 0, count: 128), qh = [UInt8](repeating: 0, count: 64)
        for half in 0 ..< 2 {
            let base = half * 128
            for l in 0 ..< 32 {
                let a = L[base + l], b = L[base + l + 32], c = L[base + l + 64], d = L[base + l + 96]
                ql[half * 64 + l] = (a & 0xF) | ((c & 0xF) << 4)
                ql[half * 64 + l + 32] = (b & 0xF) | ((d & 0xF) << 4)
                qh[half * 32 + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6)
            }
        }
        // d = −0.125 (0xB000)
        let bytes = ql + qh + scales.map { UInt8(bitPattern: $0) } + le16(0xB000)
        let out = dequant(.q6_K, bytes, count: 256)
        for i in 0 ..< 256 {
            let expected = Float(-0.125) * Float(scales[i / 16]) * Float(Int(L[i]) - 32)
            XCTAssertEqual(out[i], expected, "element \(i)")
        }
        XCTAssertEqual(out[0], -0.125 * -128 * -32)   // most negative quant, most negative scale
        XCTAssertEqual(out[1], -0.125 * -128 * 31)
    }

    func testQuantizeKnownBlocks() {
        // Q4_0: the largest-magnitude value (2) maps to nibble 0 (−8·d, d = −0.25); −2 clamps to 15 (error d).
        var x = [Float](repeating: 0, count: 32)
        x[0] = 2; x[1] = -2; x[2] = 0.3
        let q4 = Quantize.bytes(.q4_0, x)
        XCTAssertEqual(Array(q4[0 ..< 2]), le16(0xB400))
        XCTAssertEqual(q4[2] & 0xF, 0); XCTAssertEqual(q4[3] & 0xF, 15); XCTAssertEqual(q4[4] & 0xF, 7)  // 0.3/−0.25 + 8.5 = 7.3
        XCTAssertEqual(q4[5], 0x88)
        // Q8_0: amax 127 -> d = 1, q = round-half-away(x).
        var y = [Float](repeating: 0, count: 32)
        y[0] = 127; y[1] = -2.5; y[2] = 2.5; y[3] = -0.49
        let q8 = Quantize.bytes(.q8_0, y)
        XCTAssertEqual(Array(q8[0 ..< 2]), le16(0x3C00))
        XCTAssertEqual(q8[2 ..< 6].map { Int8(bitPattern: $0) }, [127, -3, 3, 0])
        // Q4_1: min −1, max 14 -> d = 1, m = −1; 0.5 above min rounds up.
        var z = [Float](repeating: 0, count: 32)
        z[0] = -1; z[16] = 14; z[1] = -0.5
        let q41 = Quantize.bytes(.q4_1, z)
        XCTAssertEqual(Array(q41[0 ..< 4]), le16(0x3C00) + le16(0xBC00))
        XCTAssertEqual(q41[4], 0xF0); XCTAssertEqual(q41[5] & 0xF, 1); XCTAssertEqual(q41[6] & 0xF, 1)
        // An all-zero block quantizes to zero scales and dequantizes to zeros.
        for t in [GGMLType.q8_0, .q4_0, .q4_1] {
            XCTAssertEqual(dequant(t, Quantize.bytes(t, [Float](repeating: 0, count: 32)), count: 32), [Float](repeating: 0, count: 32))
        }
    }

    func testQuantizeDequantizeErrorWithinFormatBound() {
        var rng = SeededRNG(seed: 84)
        let n = 32 * 40
        let x = (0 ..< n).map { i in Float(rng.normal()) * (i % 64 < 32 ? 1 : 1e-3) }  // blocks of different scale
        // fp16 unit roundoff 2^-11 for normal numbers; block scales of tiny blocks are fp16
        // subnormals with an absolute rounding of up to 2^-25 (half the subnormal spacing).
        let u = 0x1p-11, sub = 0x1p-25
        for t in [GGMLType.f16, .bf16, .q8_0, .q4_0, .q4_1] {
            let back = dequant(t, Quantize.bytes(t, x), count: n)
            var bounds = [Double](repeating: 0, count: n)
            for b in 0 ..< n / 32 {
                let blk = x[b * 32 ..< (b + 1) * 32].map(Double.init)
                let amax = blk.map(abs).max()!, lo = blk.min()!, hi = blk.max()!
                for j in 0 ..< 32 {
                    let xi = blk[j]
                    let e = Double(Float.ulpOfOne)
                    // |q|·|d − fp16(d)| with |q| <= qmax, plus the Float roundings of x/d and q·d (+ m).
                    func scaleError(_ d: Double, _ qmax: Double) -> Double { qmax * max(d * u, sub) }
                    switch t {
                    case .f16: bounds[b * 32 + j] = abs(xi) * u + sub
                    case .bf16: bounds[b * 32 + j] = abs(xi) * 0x1p-8
                    case .q8_0: bounds[b * 32 + j] = amax / 127 / 2 + scaleError(amax / 127, 128) + 4 * e * abs(xi)
                    case .q4_0: bounds[b * 32 + j] = amax / 8 + scaleError(amax / 8, 8) + 4 * e * abs(xi)
                    default:
                        bounds[b * 32 + j] = (hi - lo) / 15 / 2 + scaleError((hi - lo) / 15, 15) + max(abs(lo) * u, sub)
                            + 4 * e * (abs(xi) + abs(lo))
                    }
                }
            }
            assertWithinBound(back, x.doubles, "\(t.name) round trip", bound: { bounds[$0] })
        }
    }

    func testQuantizedGEMVMatchesDequantizedReference() {
        var rng = SeededRNG(seed: 85)
        for t in [GGMLType.q8_0, .q4_1] {
            for (N, K) in [(1, 32), (3, 64), (17, 576), (5, 96), (2, 160), (3, 224), (2, 256)] {
                let wf = normalFloats(N * K, &rng), x = normalFloats(K, &rng)
                let bytes = Quantize.bytes(t, wf)
                let deq = dequant(t, bytes, count: N * K)
                var y = [Float](repeating: .nan, count: N)
                bytes.withUnsafeBytes { QuantizedGEMV.gemv(t, w: $0.baseAddress!, x: x, y: &y, rows: N, columns: K) }
                var ref = [Double](repeating: 0, count: N), mag = ref
                let rb = t.rowBytes(count: K)!
                for n in 0 ..< N {
                    for k in 0 ..< K {
                        ref[n] += Double(deq[n * K + k]) * Double(x[k])
                        mag[n] += abs(Double(deq[n * K + k]) * Double(x[k]))
                    }
                    if t == .q4_1 {
                        // The m·Σx term is formed separately: add |m|·Σ|x| per block to the magnitude.
                        for b in 0 ..< K / 32 {
                            let m = Double(HalfFloat.toFloat(UInt16(bytes[n * rb + b * 20 + 2]) | UInt16(bytes[n * rb + b * 20 + 3]) << 8))
                            mag[n] += 2 * abs(m) * x[b * 32 ..< (b + 1) * 32].reduce(0.0) { $0 + abs(Double($1)) }
                        }
                    }
                }
                let eps = Double(Float.ulpOfOne)
                assertWithinBound(y, ref, "qgemv \(t.name) N=\(N) K=\(K)", bound: { 2 * Double(K + 34) * eps * mag[$0] })
            }
        }
    }

    /// The quad layout holds the same bytes in another order and must give the same products (bit
    /// for bit where both layouts run the quad path), for any worker count, with 0-3 trailing blocks
    /// left in GGUF's layout.
    func testQuadLayoutGivesTheSameProductsAsGGUFBlocks() {
        var rng = SeededRNG(seed: 87)
        for (N, K) in [(1, 32), (3, 64), (5, 96), (4, 128), (7, 160), (6, 224), (9, 576), (33, 1536), (701, 576)] {
            let bytes = Quantize.bytes(.q4_1, normalFloats(N * K, &rng)), x = normalFloats(K, &rng)
            var packed = [UInt8](repeating: 0, count: bytes.count)
            bytes.withUnsafeBytes { s in packed.withUnsafeMutableBytes { QuantizedGEMV.packQuads(s.baseAddress!, into: $0.baseAddress!, rows: N, columns: K) } }
            XCTAssertEqual(packed.sorted(), bytes.sorted(), "a permutation of the bytes")
            // First quad of row 0: block b's nibbles at 16b, its d at 64 + 2b, its m at 72 + 2b.
            if K >= 128 {
                for b in 0 ..< 4 {
                    XCTAssertEqual(Array(packed[16 * b ..< 16 * b + 16]), Array(bytes[20 * b + 4 ..< 20 * b + 20]))
                    XCTAssertEqual(Array(packed[64 + 2 * b ..< 66 + 2 * b]), Array(bytes[20 * b ..< 20 * b + 2]))
                    XCTAssertEqual(Array(packed[72 + 2 * b ..< 74 + 2 * b]), Array(bytes[20 * b + 2 ..< 20 * b + 4]))
                }
            }
            var ref = [Float](repeating: .nan, count: N)
            bytes.withUnsafeBytes { QuantizedGEMV.gemv(.q4_1, w: $0.baseAddress!, x: x, y: &ref, rows: N, columns: K, workers: 1) }
            let deq = dequant(.q4_1, bytes, count: N * K)
            var first: [UInt32] = []
            for workers in [1, 2, 3] {
                var y = [Float](repeating: .nan, count: N)
                packed.withUnsafeBytes {
                    QuantizedGEMV.gemv(.q4_1, w: $0.baseAddress!, x: x, y: &y, rows: N, columns: K, workers: workers, layout: .quads)
                }
                if first.isEmpty { first = y.bits }
                XCTAssertEqual(y.bits, first, "N=\(N) K=\(K) workers=\(workers): bit-identical for any worker count")
                if QuantizedGEMV.prefersQuadLayout {
                    // Both layouts run the quad path here: the same arithmetic.
                    XCTAssertEqual(y.bits, ref.bits, "N=\(N) K=\(K) workers=\(workers)")
                } else {
                    // Narrower builds run GGUF rows in block pairs: another summation order, same bound.
                    for n in 0 ..< N {
                        var mag = 0.0
                        for k in 0 ..< K { mag += abs(Double(deq[n * K + k]) * Double(x[k])) }
                        XCTAssertEqual(Double(y[n]), Double(ref[n]), accuracy: 4 * Double(K + 34) * Double(Float.ulpOfOne) * (mag + 1),
                                       "N=\(N) K=\(K) row \(n)")
                    }
                }
            }
        }
    }

    func testQuantizedGEMVAndDequantizeBitIdenticalForAnyWorkerCount() {
        var rng = SeededRNG(seed: 86)
        let N = 700, K = 576
        let wf = normalFloats(N * K, &rng), x = normalFloats(K, &rng)
        for t in [GGMLType.q8_0, .q4_1] {
            let bytes = Quantize.bytes(t, wf)
            var outs: [[UInt32]] = []
            for workers in [1, 2, 3] {
                var y = [Float](repeating: 0, count: N), d = [Float](repeating: 0, count: N * K)
                bytes.withUnsafeBytes {
                    QuantizedGEMV.gemv(t, w: $0.baseAddress!, x: x, y: &y, rows: N, columns: K, workers: workers)
                    Dequantize.rows(t, src: $0.baseAddress!, out: &d, rows: N, columns: K, workers: workers)
                }
                outs.append(y.bits + d.bits)
            }
            XCTAssertEqual(outs[0], outs[1]); XCTAssertEqual(outs[0], outs[2])
        }
    }
}
