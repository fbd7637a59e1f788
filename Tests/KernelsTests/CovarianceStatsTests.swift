import Foundation
import Kernels
import TestSupport
import XCTest

final class CovarianceStatsTests: XCTestCase {
    let n = isReleaseBuild ? 3000 : 301, d = isReleaseBuild ? 64 : 23

    /// Planted spectrum scaled with sqrt(n), so debug and release shapes have the same per-row
    /// variance (and the same signal-to-noise ratio per direction).
    private func data(seed: UInt64, meanScale: Double = 2) -> [Float] {
        let scale = (Double(n) / 300).squareRoot()
        return plantedSpectrum(rows: n, cols: d, sigma: [30, 20, 12, 8, 5, 3].map { $0 * scale }, noise: 0.1,
                               meanScale: meanScale, seed: seed).x
    }

    /// Frobenius norm of the elementwise bound on the Float-block error of XᵀX:
    /// 2·γ·Σ_i |x_i||x_i|ᵀ with γ = (min(blockRows, KC) + blockRows/KC + 2)·eps (GEMM sums KC-deep
    /// panels in registers, then adds panels in Float) — a bound on ||G - XᵀX||₂, hence on the scatter error.
    private func gramErrorBound(_ x: [Float], blockRows: Int) -> Double {
        var m = [Double](repeating: 0, count: d * d)
        for i in 0 ..< n { for a in 0 ..< d { let u = abs(Double(x[i * d + a])); for b in 0 ..< d { m[a * d + b] += u * abs(Double(x[i * d + b])) } } }
        let gamma = Double(min(blockRows, Tiling.KC) + blockRows / Tiling.KC + 2) * Double(Float.ulpOfOne)
        return 2 * gamma * m.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }

    private func stats(_ x: [Float], rows: Range<Int>, blockRows: Int = CovarianceStats.defaultBlockRows, workers: Int? = nil) -> CovarianceStats {
        x.withUnsafeBufferPointer { xp in
            CovarianceStats(MatrixRows(xp.baseAddress! + rows.lowerBound * d, rows: rows.count, cols: d),
                            blockRows: blockRows, workers: workers)
        }
    }

    /// Σx and XᵀX against Double sums within the Float-GEMM-per-block bound.
    func testAccumulationMatchesDoubleReference() {
        let x = data(seed: 1)
        let blockRows = 64
        let s = stats(x, rows: 0 ..< n, blockRows: blockRows)
        XCTAssertEqual(s.count, n)
        let eps = Double(Float.ulpOfOne)
        for a in 0 ..< d {
            var sum = 0.0, sumAbs = 0.0
            for i in 0 ..< n { sum += Double(x[i * d + a]); sumAbs += abs(Double(x[i * d + a])) }
            XCTAssertEqual(s.sum[a], sum, accuracy: 2 * 16 * eps * sumAbs + 1e-12, "sum[\(a)]")
            for b in 0 ..< d {
                var g = 0.0, mag = 0.0
                for i in 0 ..< n { let p = Double(x[i * d + a]) * Double(x[i * d + b]); g += p; mag += abs(p) }
                XCTAssertEqual(s.gram[a * d + b], g, accuracy: 2 * Double(blockRows + 2) * eps * mag, "gram[\(a), \(b)]")
            }
        }
    }

    /// Merging 2, 3 and 7 shards equals the whole: exactly (up to Double addition order) when
    /// shard boundaries are multiples of the block size, within the Float bound otherwise.
    func testMergingShardsEqualsWhole() {
        let x = data(seed: 2)
        let blockRows = 16
        let whole = stats(x, rows: 0 ..< n, blockRows: blockRows)
        for shards in [2, 3, 7] {
            // Aligned cuts: multiples of blockRows.
            var cuts = (0 ... shards).map { min(n, ($0 * n / shards) / blockRows * blockRows) }
            cuts[shards] = n
            let aligned = CovarianceStats.merged((0 ..< shards).map { stats(x, rows: cuts[$0] ..< cuts[$0 + 1], blockRows: blockRows) })
            XCTAssertEqual(aligned.count, whole.count)
            for i in 0 ..< d * d {
                XCTAssertEqual(aligned.gram[i], whole.gram[i], accuracy: 1e-12 * (abs(whole.gram[i]) + 1), "\(shards) aligned shards, gram[\(i)]")
            }
            for i in 0 ..< d { XCTAssertEqual(aligned.sum[i], whole.sum[i], accuracy: 1e-9 * (abs(whole.sum[i]) + 1)) }
            // Arbitrary cuts: the Float blocks differ, so the bound is the block GEMM error.
            let ragged = (0 ... shards).map { $0 * n / shards }
            let merged = CovarianceStats.merged((0 ..< shards).map { stats(x, rows: ragged[$0] ..< ragged[$0 + 1], blockRows: blockRows) })
            let diagMax = (0 ..< d).map { whole.gram[$0 * d + $0] }.max()!
            for i in 0 ..< d * d {
                XCTAssertEqual(merged.gram[i], whole.gram[i], accuracy: 4 * Double(blockRows) * Double(Float.ulpOfOne) * diagMax,
                               "\(shards) ragged shards, gram[\(i)]")
            }
            // The merged subspace is the whole one.
            let a = merged.principalComponents(3), b = whole.principalComponents(3)
            for j in 0 ..< 3 { XCTAssertEqual(a.singularValues[j], b.singularValues[j], accuracy: 1e-5 * b.singularValues[0]) }
        }
    }

    func testWorkerCountsBitIdentical() {
        let x = data(seed: 3)
        XCTAssertEqual(stats(x, rows: 0 ..< n, workers: 1), stats(x, rows: 0 ..< n, workers: 2))
        XCTAssertEqual(stats(x, rows: 0 ..< n, workers: 1), stats(x, rows: 0 ..< n, workers: 3))
    }

    /// The exact path's components against the Double reference SVD, within the perturbation
    /// bounds of the Float accumulation error E: |σ̂² - σ²| <= ||E||₂ (Weyl) and
    /// sin θ <= ||E||₂ / (λ_k - λ_{k+1}) (Davis-Kahan).
    func testExactPrincipalComponentsMatchReference() {
        let x = data(seed: 4, meanScale: 1)
        let k = 4
        let pcs = stats(x, rows: 0 ..< n).principalComponents(k)
        let ref = SymmetricEigen.centredSVDReference(x, rows: n, cols: d)
        let e = gramErrorBound(x, blockRows: CovarianceStats.defaultBlockRows) + 1e-12 * ref.values[0] * ref.values[0]
        for j in 0 ..< k {
            XCTAssertEqual(pcs.singularValues[j] * pcs.singularValues[j], ref.values[j] * ref.values[j], accuracy: e, "sigma_\(j)²")
        }
        let gap = ref.values[k - 1] * ref.values[k - 1] - ref.values[k] * ref.values[k]
        let c = cosLargestPrincipalAngle(pcs.basis.map(Double.init), Array(ref.vectors[0 ..< k * d]), k: k, d: d)
        XCTAssertLessThanOrEqual((max(0, 1 - c * c)).squareRoot(), min(1, e / gap) + 1e-6, "sin(largest principal angle)")
        XCTAssertLessThan(e / gap, 0.3, "the test data must make the bound meaningful")
        for t in 0 ..< d { XCTAssertEqual(Double(pcs.mean[t]), ref.mean[t], accuracy: 1e-5 * (1 + abs(ref.mean[t]))) }
    }

    // MARK: - Stats file

    private func tempURL(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("linalg-\(ProcessInfo.processInfo.processIdentifier)-\(name)")
    }

    func testStatsFileRoundTripIsExact() throws {
        let s = stats(data(seed: 5), rows: 0 ..< n)
        let url = tempURL("moments.ststats")
        defer { try? FileManager.default.removeItem(at: url) }
        try StatsFile.write(s, to: url)
        let back = try StatsFile.readMoments(from: url)
        XCTAssertEqual(back, s)
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as! Int
        XCTAssertEqual(size, 40 + 8 * (d + d * d) + 8)
        // Sketch round trip.
        let sk = SubspaceSketch(s.principalComponents(3))
        let url2 = tempURL("sketch.ststats")
        defer { try? FileManager.default.removeItem(at: url2) }
        try StatsFile.write(sk, to: url2)
        XCTAssertEqual(try StatsFile.readSketch(from: url2), sk)
        XCTAssertThrowsError(try StatsFile.readMoments(from: url2)) { XCTAssertEqual($0 as? StatsFileError, .wrongKind(expected: 1, found: 2)) }
    }

    func testCorruptStatsFilesAreRejectedWithClearErrors() {
        let s = CovarianceStats(dimension: 3, count: 5, sum: [1, 2, 3], gram: [1, 0, 0, 0, 2, 0, 0, 0, 3])
        let good = StatsFile.encode(s)
        XCTAssertEqual(try StatsFile.decodeMoments(good), s)
        func expect(_ data: Data, _ check: (StatsFileError) -> Bool, _ what: String, line: UInt = #line) {
            XCTAssertThrowsError(try StatsFile.decodeMoments(data), what, line: line) { error in
                guard let e = error as? StatsFileError else { return XCTFail("\(what): \(error) is not a StatsFileError", line: line) }
                XCTAssert(check(e), "\(what): unexpected \(e)", line: line)
                XCTAssertFalse(e.description.isEmpty)
            }
        }
        /// Re-stamps the checksum so that a deliberately wrong field is reached past the checksum test.
        func restamped(_ d: Data) -> Data {
            var b = [UInt8](d.prefix(d.count - 8))
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for x in b { h = (h ^ UInt64(x)) &* 0x0000_0100_0000_01B3 }
            withUnsafeBytes(of: h.littleEndian) { b.append(contentsOf: $0) }
            return Data(b)
        }
        func patched(_ offset: Int, _ bytes: [UInt8], restamp: Bool = true) -> Data {
            var b = [UInt8](good)
            for (i, v) in bytes.enumerated() { b[offset + i] = v }
            return restamp ? restamped(Data(b)) : Data(b)
        }
        expect(Data(), { if case .truncated = $0 { return true }; return false }, "empty")
        expect(good.prefix(47), { if case .truncated = $0 { return true }; return false }, "header only")
        expect(good.prefix(good.count - 1), { if case .truncated = $0 { return true }; return false }, "one byte short")
        expect(good + Data([0]), { if case .trailingBytes = $0 { return true }; return false }, "trailing byte")
        expect(patched(0, Array("GGUFxxxx".utf8)), { if case .badMagic = $0 { return true }; return false }, "magic")
        expect(patched(8, [2, 0, 0, 0]), { $0 == .unsupportedVersion(2) }, "version")
        expect(patched(12, [9, 0, 0, 0]), { $0 == .unknownKind(9) }, "kind")
        expect(patched(16, [0, 0, 0, 0, 0, 0, 0, 0]), { if case .invalidValue(let f, 16, _) = $0 { return f == "dimension" }; return false }, "zero dimension")
        expect(patched(16, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]), { if case .invalidValue(let f, 16, _) = $0 { return f == "dimension" }; return false }, "huge dimension")
        expect(patched(16, [4, 0, 0, 0, 0, 0, 0, 0]), { if case .truncated = $0 { return true }; return false }, "dimension larger than the payload")
        expect(patched(24, [0, 0, 0, 0, 0, 0, 0, 0x80]), { if case .invalidValue(let f, 24, _) = $0 { return f == "rows" }; return false }, "rows")
        expect(patched(32, [1, 0, 0, 0, 0, 0, 0, 0]), { if case .invalidValue(let f, 32, _) = $0 { return f == "rank" }; return false }, "rank for moments")
        expect(patched(40, [0x55], restamp: false), { if case .checksumMismatch = $0 { return true }; return false }, "flipped payload byte")
        let nan = Double.nan.bitPattern
        expect(patched(48, (0 ..< 8).map { UInt8(truncatingIfNeeded: nan >> (8 * UInt64($0))) }),
               { if case .invalidValue(_, 48, _) = $0 { return true }; return false }, "NaN payload")
    }

    // MARK: - Approximate sketch merge

    /// Shards of a low-rank-plus-noise matrix: merging their rank-r sketches reproduces the
    /// whole matrix's components within the dropped tail energy.
    func testSketchMergeApproximatesWhole() {
        let x = data(seed: 6)
        let whole = stats(x, rows: 0 ..< n).principalComponents(4)
        let whole5 = stats(x, rows: 0 ..< n).principalComponents(5)
        for shards in [2, 3, 7] {
            let cuts = (0 ... shards).map { $0 * n / shards }
            var tail = 0.0
            let sketches = (0 ..< shards).map { s -> SubspaceSketch in
                let st = stats(x, rows: cuts[s] ..< cuts[s + 1])
                let pc = st.principalComponents(min(8, d))
                tail += pc.singularValues[7] * pc.singularValues[7]  // ||dropped part of S_s||₂ = σ_s,8²
                return SubspaceSketch(PrincipalComponents(rows: pc.rows, columns: d, mean: pc.mean,
                                                          singularValues: Array(pc.singularValues[0 ..< 7]),
                                                          basis: Array(pc.basis[0 ..< 7 * d]), method: pc.method))
            }
            let merged = SubspaceSketch.merged(sketches, rank: 4)
            XCTAssertEqual(merged.rows, n)
            let ref = SymmetricEigen.centredSVDReference(x, rows: n, cols: d)
            for t in 0 ..< d { XCTAssertEqual(merged.mean[t], ref.mean[t], accuracy: 1e-5 * (1 + abs(ref.mean[t]))) }
            for j in 0 ..< 4 {
                // |σ̂² - σ²| <= ||S - MᵀM||₂ <= Σ_s σ_s,8² (Weyl), plus Float rounding.
                let err = abs(merged.singularValues[j] * merged.singularValues[j] - whole.singularValues[j] * whole.singularValues[j])
                XCTAssertLessThanOrEqual(err, tail + 1e-4 * whole.singularValues[0] * whole.singularValues[0],
                                         "\(shards) shards, sigma_\(j)")
            }
            // Davis-Kahan: sin θ <= ||S - MᵀM||₂ / (λ_4 - λ_5) of the whole scatter.
            let lam = whole5.singularValues.map { $0 * $0 }
            let c = cosLargestPrincipalAngle(merged.basis, whole.basis.map(Double.init), k: 4, d: d)
            let bound = (tail + 1e-4 * lam[0]) / (lam[3] - lam[4])
            XCTAssertLessThan(bound, 0.5, "the test data must make the bound meaningful")
            XCTAssertLessThanOrEqual((max(0, 1 - c * c)).squareRoot(), bound, "\(shards) shards: merged subspace")
        }
    }
}
