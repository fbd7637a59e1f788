/// Few rows against a weight matrix stored row-major (`C = A·Bᵀ`, B as [n, k]): batched decode and
/// short prompts. Packing B would copy the whole weight matrix on every call for little reuse, so
/// these paths read each B row once from memory while A stays in L1/L2.
///  - From `skinnyPanelMinRows` rows on, Aᵀ is packed into a [k, MP] panel (MP = one or two vectors
///    of rows) and the kernel computes Cᵀ tiles: per k step, one or two vector loads of the panel and
///    8 broadcasts of B elements feed 8 or 16 FMAs, with no horizontal sums. Each C element is then a
///    plain sequential sum over k, so a row's result does not depend on the other rows of the batch.
///  - Below it, dot products of 4 B rows x 4 A rows per register block (8 loads per 16 FMAs).
/// Workers own disjoint ranges of B rows (columns of C), so results do not depend on the worker count.
extension GEMM {
    /// Rows of A up to which `sgemm` takes this path for `transB` without `transA`.
    static let skinnyRows = 32

    /// Rows of A from which `skinny` uses the packed-panel kernels: more than half a vector, since a
    /// panel pads the rows to whole vectors (with 16 lanes, 8 rows run faster as dot blocks).
    static let skinnyPanelMinRows = max(5, vLanes / 2 + 1)

    static func skinny(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                       b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                       workers: Int?) {
        if m >= skinnyPanelMinRows {
            skinnyPanel(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, workers: workers)
            return
        }
        let groups = (n + 3) / 4
        Parallel.run(workers: workers, maxUseful: max(1, groups / 16)) { ith, nth in
            for g in Parallel.range(ith, of: nth, count: groups) {
                let j0 = g * 4, nj = min(4, n - j0)
                var i0 = 0
                while i0 < m {
                    let ni = min(4, m - i0)
                    block4x4(k: k, a: a + i0 * lda, lda: lda, rowsA: ni, b: b + j0 * ldb, ldb: ldb, rowsB: nj,
                             c: c + i0 * ldc + j0, ldc: ldc, alpha: alpha, beta: beta)
                    i0 += 4
                }
            }
        }
    }

    /// c[i, j] (i < rowsA, j < rowsB) = alpha · <a_i, b_j> (+ beta · c[i, j]); missing rows alias row 0.
    @inline(__always)
    static func block4x4(k: Int, a: UnsafePointer<Float>, lda: Int, rowsA: Int, b: UnsafePointer<Float>, ldb: Int,
                         rowsB: Int, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        let a0 = a, a1 = rowsA > 1 ? a + lda : a, a2 = rowsA > 2 ? a + 2 * lda : a, a3 = rowsA > 3 ? a + 3 * lda : a
        let b0 = b, b1 = rowsB > 1 ? b + ldb : b, b2 = rowsB > 2 ? b + 2 * ldb : b, b3 = rowsB > 3 ? b + 3 * ldb : b
        var s00 = VFloat(), s01 = VFloat(), s02 = VFloat(), s03 = VFloat()
        var s10 = VFloat(), s11 = VFloat(), s12 = VFloat(), s13 = VFloat()
        var s20 = VFloat(), s21 = VFloat(), s22 = VFloat(), s23 = VFloat()
        var s30 = VFloat(), s31 = VFloat(), s32 = VFloat(), s33 = VFloat()
        var p = 0
        while p + vLanes <= k {
            let w0 = vload(b0, p), w1 = vload(b1, p), w2 = vload(b2, p), w3 = vload(b3, p)
            let x0 = vload(a0, p)
            fmadd(&s00, x0, w0); fmadd(&s01, x0, w1); fmadd(&s02, x0, w2); fmadd(&s03, x0, w3)
            let x1 = vload(a1, p)
            fmadd(&s10, x1, w0); fmadd(&s11, x1, w1); fmadd(&s12, x1, w2); fmadd(&s13, x1, w3)
            let x2 = vload(a2, p)
            fmadd(&s20, x2, w0); fmadd(&s21, x2, w1); fmadd(&s22, x2, w2); fmadd(&s23, x2, w3)
            let x3 = vload(a3, p)
            fmadd(&s30, x3, w0); fmadd(&s31, x3, w1); fmadd(&s32, x3, w2); fmadd(&s33, x3, w3)
            p += vLanes
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { tb in
            let t = tb.baseAddress!
            t[0] = horizontalSum(s00); t[1] = horizontalSum(s01); t[2] = horizontalSum(s02); t[3] = horizontalSum(s03)
            t[4] = horizontalSum(s10); t[5] = horizontalSum(s11); t[6] = horizontalSum(s12); t[7] = horizontalSum(s13)
            t[8] = horizontalSum(s20); t[9] = horizontalSum(s21); t[10] = horizontalSum(s22); t[11] = horizontalSum(s23)
            t[12] = horizontalSum(s30); t[13] = horizontalSum(s31); t[14] = horizontalSum(s32); t[15] = horizontalSum(s33)
            for i in 0 ..< rowsA {
                let ai = a + i * lda
                for j in 0 ..< rowsB {
                    let bj = b + j * ldb
                    var v = t[i * 4 + j]
                    var q = p
                    while q < k { v += ai[q] * bj[q]; q += 1 }
                    store(v, c + i * ldc + j, alpha, beta)
                }
            }
        }
    }
}

extension GEMM {
    /// B rows per panel micro-tile.
    static let panelRowsB = RowDots.tileRows

    /// `skinny` for m >= `skinnyPanelMinRows`: A rows in chunks of MP (one vector of rows when they
    /// fit, else two), each chunk packed transposed and zero-padded, then one pass over B per chunk.
    static func skinnyPanel(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                            workers: Int?) {
        let wide = m > vLanes, MP = wide ? 2 * vLanes : vLanes, R = panelRowsB
        let groups = (n + R - 1) / R
        // Pooled scratch: a fresh allocation of this size would be an mmap (and page faults) per call.
        Workspace.withScratch(floats: k * MP) { panel in
            var i0 = 0
            while i0 < m {
                let mc = min(MP, m - i0)
                panel.update(repeating: 0, count: k * MP)
                for i in 0 ..< mc {
                    let src = a + (i0 + i) * lda
                    for p in 0 ..< k { panel[p * MP + i] = src[p] }
                }
                let ci = c + i0 * ldc
                Parallel.run(workers: workers, maxUseful: max(1, groups / 8)) { ith, nth in
                    for g in Parallel.range(ith, of: nth, count: groups) {
                        let j0 = g * R, nj = min(R, n - j0)
                        // The same tile as RowDots' (8 rows broadcast against a packed panel), stored transposed.
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: R * MP) { tb in
                            let t = tb.baseAddress!
                            if wide {
                                RowDots.tile8x2(b + j0 * ldb, ldb, rows: nj, panel, k, out: t)
                            } else {
                                RowDots.tile8x1(b + j0 * ldb, ldb, rows: nj, panel, k, out: t)
                            }
                            for j in 0 ..< nj { storeColumn(t + j * MP, rowsA: mc, c: ci + j0 + j, ldc: ldc, alpha: alpha, beta: beta) }
                        }
                    }
                }
                i0 += MP
            }
        }
    }

    /// Writes column j of C (rows 0..<rowsA) from lanes of a Cᵀ row held in `t`.
    @inline(__always)
    static func storeColumn(_ t: UnsafeMutablePointer<Float>, rowsA: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                            alpha: Float, beta: Float) {
        for i in 0 ..< rowsA { store(t[i], c + i * ldc, alpha, beta) }
    }
}
