import Kernels
import TestSupport
import XCTest

final class GEMMTests: XCTestCase {
    /// Runs sgemm on random operands with padded leading dimensions and checks every element
    /// against the Double reference within 2·k·eps·(|A||B|)ij (plus the beta·C rounding).
    func check(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float,
                       pad: Int = 3, workers: Int? = nil, seed: UInt64 = 1, file: StaticString = #filePath, line: UInt = #line) {
        var rng = SeededRNG(seed: seed &+ UInt64(m * 1_000_003 + n * 1009 + k))
        let lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
        let a = uniformFloats(max(1, (transA ? k : m) * lda), &rng)
        let b = uniformFloats(max(1, (transB ? n : k) * ldb), &rng)
        let c0 = beta == 0 ? [Float](repeating: .nan, count: max(1, m * ldc)) : uniformFloats(max(1, m * ldc), &rng)
        var c = c0
        GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: &c, ldc: ldc, workers: workers)
        let (ref, mag) = GEMM.sgemmReference(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb)
        var got = [Float](), want = [Double](), bound = [Double]()
        let eps = Double(Float.ulpOfOne)
        for i in 0 ..< m {
            for j in 0 ..< n {
                let old = beta == 0 ? 0 : Double(c0[i * ldc + j])
                got.append(c[i * ldc + j])
                let r = Double(alpha) * ref[i * n + j] + Double(beta) * old
                want.append(r)
                bound.append(2 * Double(max(k, 1) + 2) * eps * (abs(Double(alpha)) * mag[i * n + j] + abs(Double(beta) * old)) + 1e-30)
            }
        }
        assertWithinBound(got, want, "sgemm tA=\(transA) tB=\(transB) m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta) workers=\(String(describing: workers))",
                          bound: { bound[$0] }, file: file, line: line)
        // Padding columns of C are never written.
        for i in 0 ..< m {
            for j in n ..< ldc where !(c[i * ldc + j].isNaN && c0[i * ldc + j].isNaN) {
                XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "sgemm wrote outside C at (\(i), \(j))", file: file, line: line)
            }
        }
    }

    private var edgeSizes: [Int] {
        let mr = Tiling.MR, nr = Tiling.NR
        return Array(Set([1, 2, 3, mr - 1, mr, mr + 1, 2 * mr + 1, nr - 1, nr, nr + 1, 17, 31])).sorted()
    }

    func testSGEMMMatchesReferenceOnEdgeShapesAllTransposes() {
        for transA in [false, true] {
            for transB in [false, true] {
                for m in edgeSizes {
                    for n in [1, 2, Tiling.NR - 1, Tiling.NR + 1, 2 * Tiling.NR + 3] {
                        check(transA: transA, transB: transB, m: m, n: n, k: 7, alpha: 1, beta: 0)
                    }
                }
            }
        }
    }

    func testSGEMMMatchesReferenceOverAlphaBetaAndDepth() {
        let depths = [1, 2, 13, Tiling.KC - 1, Tiling.KC, Tiling.KC + 1, 2 * Tiling.KC + 3]
        for transA in [false, true] {
            for transB in [false, true] {
                for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (-0.5, -0.5), (0, 1), (-0.5, 0), (1, -0.5)] {
                    for k in depths {
                        check(transA: transA, transB: transB, m: Tiling.MR + 1, n: Tiling.NR + 3, k: k, alpha: alpha, beta: beta)
                    }
                }
            }
        }
    }

    func testSGEMMMatchesReferenceAcrossBlockBoundaries() {
        // m crosses MC, n crosses a panel count that splits unevenly; primes everywhere.
        let m = Tiling.MC + Tiling.MR + 5, n = 3 * Tiling.NR + 7
        for transA in [false, true] {
            for transB in [false, true] {
                check(transA: transA, transB: transB, m: m, n: n, k: 37, alpha: -0.5, beta: 1)
                check(transA: transA, transB: transB, m: m, n: n, k: 37, alpha: 1, beta: 0, workers: 3)
            }
        }
        if isReleaseBuild {
            // Several depth blocks and a K of a few thousand; m past a row block, n past NC.
            check(transA: false, transB: true, m: 211, n: 131, k: 3001, alpha: 1, beta: 0)
            check(transA: true, transB: false, m: 97, n: Tiling.NC + 45, k: 300, alpha: -0.5, beta: -0.5)
            check(transA: false, transB: false, m: 3 * Tiling.MC + 1, n: 389, k: 2 * Tiling.KC + 1, alpha: 1, beta: 1)
        }
    }

    func testMatrixVectorPathsMatchReference() {
        for transA in [false, true] {
            for transB in [false, true] {
                for (alpha, beta) in [(Float(1), Float(0)), (-0.5, 1), (1, -0.5)] {
                    for size in [1, 5, 129, 515] {
                        check(transA: transA, transB: transB, m: 1, n: size, k: 67, alpha: alpha, beta: beta)
                        check(transA: transA, transB: transB, m: size, n: 1, k: 67, alpha: alpha, beta: beta)
                        check(transA: transA, transB: transB, m: 1, n: size, k: 1, alpha: alpha, beta: beta)
                    }
                }
            }
        }
    }

    func testZeroDepthScalesC() {
        for beta in [Float(0), 1, -0.5] {
            check(transA: false, transB: false, m: 5, n: 9, k: 0, alpha: 1, beta: beta)
        }
        // Empty outputs are a no-op.
        var c: [Float] = [42]
        GEMM.sgemm(m: 0, n: 1, k: 3, a: [1, 2, 3], lda: 3, b: [1, 2, 3], ldb: 1, c: &c, ldc: 1)
        XCTAssertEqual(c, [42])
    }

    func testSGEMMIsBitwiseIdenticalForAnyWorkerCount() {
        let shapes = isReleaseBuild ? [(1, 700, 300), (300, 1, 200), (257, 263, 517), (64, 1000, 40)]
                                    : [(1, 300, 50), (60, 1, 40), (61, 70, 45)]
        for (m, n, k) in shapes {
            for (transA, transB) in [(false, false), (true, true), (false, true)] {
                var rng = SeededRNG(seed: 9)
                let a = uniformFloats(m * k, &rng), b = uniformFloats(k * n, &rng)
                var outputs: [[Float]] = []
                for workers in [1, 2, 3] {
                    var c = [Float](repeating: .nan, count: m * n)
                    GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: transA ? m : k,
                               b: b, ldb: transB ? k : n, c: &c, ldc: n, workers: workers)
                    outputs.append(c)
                }
                XCTAssertEqual(outputs[0].map(\.bitPattern), outputs[1].map(\.bitPattern), "1 vs 2 workers m=\(m) n=\(n) k=\(k)")
                XCTAssertEqual(outputs[0].map(\.bitPattern), outputs[2].map(\.bitPattern), "1 vs 3 workers m=\(m) n=\(n) k=\(k)")
            }
        }
    }

    func testReferenceKnownAnswer() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let r = GEMM.sgemmReference(transA: false, transB: false, m: 2, n: 2, k: 2, a: [1, 2, 3, 4], lda: 2, b: [5, 6, 7, 8], ldb: 2)
        XCTAssertEqual(r.product, [19, 22, 43, 50])
        var c = [Float](repeating: .nan, count: 4)
        GEMM.sgemm(m: 2, n: 2, k: 2, a: [1, 2, 3, 4], lda: 2, b: [5, 6, 7, 8], ldb: 2, c: &c, ldc: 2)
        XCTAssertEqual(c, [19, 22, 43, 50])
    }
}

extension GEMMTests {
    func testNarrowOutputsTakeTheTransposedPathCorrectly() {
        // n well below NR with m >= NR: computed as Cᵀ = op(B)ᵀ·op(A)ᵀ and stored transposed.
        for transA in [false, true] {
            for transB in [false, true] {
                for n in [2, 5, 8, 20] {
                    check(transA: transA, transB: transB, m: Tiling.NR + 7, n: n, k: 29, alpha: -0.5, beta: 1)
                    check(transA: transA, transB: transB, m: 3 * Tiling.NR, n: n, k: 13, alpha: 1, beta: 0, workers: 2)
                }
            }
        }
    }
}

extension GEMMTests {
    func testSkinnyRowsAgainstRowMajorWeightsMatchReference() {
        // m <= 32 with transB and a wide n takes the unpacked paths (dot blocks below 5 rows, packed
        // Aᵀ panels of one or two vectors from 5 on); k crosses the vector width, n every tile edge.
        for m in [2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 24, 31, 32] {
            for k in [1, 7, 16, 67] {
                check(transA: false, transB: true, m: m, n: 4 * Tiling.NR + 3, k: k, alpha: -0.5, beta: 1)
                check(transA: false, transB: true, m: m, n: 4 * Tiling.NR + 1, k: k, alpha: 1, beta: 0, workers: 3)
                check(transA: false, transB: true, m: m, n: 4 * Tiling.NR + 8, k: k, alpha: 1, beta: 0, workers: 2)
            }
        }
    }

    /// On the panel path each C element is a sequential sum over k, so a row's result is the same
    /// bits whatever the other rows of the batch (batched decode answers do not depend on the batch).
    func testSkinnyPanelRowsDoNotDependOnTheBatch() {
        let n = 4 * Tiling.NR + 5, k = 97
        var rng = SeededRNG(seed: 41)
        let a = (0 ..< 32 * k).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let b = (0 ..< n * k).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        func rows(_ m: Int) -> [Float] {
            var c = [Float](repeating: .nan, count: m * n)
            GEMM.sgemm(transB: true, m: m, n: n, k: k, a: Array(a[0 ..< m * k]), lda: k, b: b, ldb: k, c: &c, ldc: n, workers: 2)
            return c
        }
        let big = rows(32)
        for m in [9, 16, 20, 31] {  // at least skinnyPanelMinRows (9 with 16 lanes)
            XCTAssertEqual(rows(m), Array(big[0 ..< m * n]), "m = \(m)")
        }
    }
}
