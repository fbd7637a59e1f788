import Foundation

/// Dense single-precision matrix multiplication (BLIS structure: pack, macro-loop, micro-kernel).
public enum GEMM {
    /// `C = alpha * op(A) * op(B) + beta * C`, row-major, `op(X)` = X or Xᵀ.
    ///
    /// Shapes: op(A) is m x k (A is m x k with `lda >= k`, or k x m with `lda >= m` when
    /// `transA`); op(B) is k x n (B is k x n with `ldb >= n`, or n x k with `ldb >= k` when
    /// `transB`); C is m x n with `ldc >= n`.
    /// Contract: overwrites C; `beta == 0` never reads C (it may hold NaN); C must not alias A or B.
    /// Parallel over independent tiles of C; bitwise identical for any `workers`.
    /// Cost: 2·m·n·k FLOPs; 4·(m·k + k·n + m·n) bytes at least.
    /// Reference: Van Zee & van de Geijn 2015, "BLIS: A Framework for Rapidly Instantiating BLAS
    /// Functionality", ACM TOMS 41(3).
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int,
                             workers: Int? = nil) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative dimension")
        precondition(lda >= max(1, transA ? m : k), "sgemm: lda \(lda) too small")
        precondition(ldb >= max(1, transB ? k : n), "sgemm: ldb \(ldb) too small")
        precondition(ldc >= max(1, n), "sgemm: ldc \(ldc) too small")
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scale(m: m, n: n, beta: beta, c: c, ldc: ldc)
            return
        }
        if m == 1 || n == 1 {
            gemvDispatch(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                         a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, workers: workers)
            return
        }
        if transB && !transA && m <= skinnyRows && n >= 4 * Tiling.NR {
            skinny(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, workers: workers)
            return
        }
        // A narrow C wastes most of each NR-wide micro-tile; computing Cᵀ = op(B)ᵀ·op(A)ᵀ puts the
        // narrow side on the MR rows instead (LoRA ranks, randomized-SVD sketches).
        let NR = Tiling.NR, MR = Tiling.MR
        let wasteN = Double((n + NR - 1) / NR * NR) / Double(n), wasteM = Double((n + MR - 1) / MR * MR) / Double(n)
        if m >= NR && wasteN > 1.25 * wasteM {
            packed(transA: !transB, transB: !transA, m: n, n: m, k: k, alpha: alpha, a: b, lda: ldb,
                   b: a, ldb: lda, beta: beta, c: c, ldc: ldc, transC: true, workers: workers)
        } else {
            packed(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                   b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, transC: false, workers: workers)
        }
    }

    /// Array convenience for callers outside hot paths (tests, tools).
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: [Float], lda: Int, b: [Float], ldb: Int,
                             beta: Float = 0, c: inout [Float], ldc: Int, workers: Int? = nil) {
        precondition(a.count >= (transA ? (k == 0 ? 0 : (k - 1) * lda + m) : (m == 0 ? 0 : (m - 1) * lda + k)),
                     "sgemm: A too small")
        precondition(b.count >= (transB ? (n == 0 ? 0 : (n - 1) * ldb + k) : (k == 0 ? 0 : (k - 1) * ldb + n)),
                     "sgemm: B too small")
        precondition(c.count >= (m == 0 ? 0 : (m - 1) * ldc + n), "sgemm: C too small")
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress ?? UnsafePointer(bitPattern: 64)!, lda: lda,
                          b: pb.baseAddress ?? UnsafePointer(bitPattern: 64)!, ldb: ldb,
                          beta: beta, c: pc.baseAddress!, ldc: ldc, workers: workers)
                }
            }
        }
    }

    /// C = beta * C, with beta == 0 writing zeros without reading.
    static func scale(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0 ..< m {
            let row = c + i * ldc
            if beta == 0 {
                row.update(repeating: 0, count: n)
            } else if beta != 1 {
                for j in 0 ..< n { row[j] *= beta }
            }
        }
    }

    /// Writes the valid corner of a spilled micro-tile: c = alpha * t (+ beta * c), transposed
    /// (element (i, j) at c[j * ldc + i]) when `transC`.
    @inline(__always)
    static func storeEdge(_ t: UnsafePointer<Float>, ldt: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                          mr: Int, nr: Int, alpha: Float, beta: Float, transC: Bool) {
        if transC {
            for j in 0 ..< nr {
                let dst = c + j * ldc
                if beta == 0 {
                    for i in 0 ..< mr { dst[i] = alpha * t[i * ldt + j] }
                } else {
                    for i in 0 ..< mr { dst[i] = beta * dst[i] + alpha * t[i * ldt + j] }
                }
            }
            return
        }
        for i in 0 ..< mr {
            let src = t + i * ldt, dst = c + i * ldc
            if beta == 0 {
                for j in 0 ..< nr { dst[j] = alpha * src[j] }
            } else {
                for j in 0 ..< nr { dst[j] = beta * dst[j] + alpha * src[j] }
            }
        }
    }

    /// Dispatches to the micro-kernel of the build's tile shape.
    @inline(__always)
    static func micro(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                      c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float,
                      mr: Int, nr: Int, transC: Bool) {
        #if KERNELS_AVX512
        micro12x2v(kc: kc, a: a, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, mr: mr, nr: nr, transC: transC)
        #else
        micro6x2v(kc: kc, a: a, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, mr: mr, nr: nr, transC: transC)
        #endif
    }
}
