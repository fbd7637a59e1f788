/// Matrix-vector products for the `m == 1` (decode) and `n == 1` shapes of `sgemm`.
///
/// Both are bandwidth-bound: every element of the matrix is read once. Two layouts:
///   rows:    y[i] = sum_k W[i * ldw + k] * x[k]   (dot product per row; W rows contiguous in k)
///   columns: y[j] = sum_k W[k * ldw + j] * x[k]   (axpy over rows; W rows contiguous in j)
/// Workers own disjoint ranges of y, so results do not depend on the worker count.
extension GEMM {
    static func gemvDispatch(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, workers: Int?) {
        if m == 1 {
            // y = op(A)[0, :] · op(B): x has stride lda when A is stored k x m.
            let incx = transA ? lda : 1
            if transB {
                gemvRows(count: n, k: k, alpha: alpha, w: b, ldw: ldb, x: a, incx: incx,
                         beta: beta, y: c, incy: 1, workers: workers)
            } else {
                gemvColumns(count: n, k: k, alpha: alpha, w: b, ldw: ldb, x: a, incx: incx,
                            beta: beta, y: c, incy: 1, workers: workers)
            }
        } else {
            // y = op(A) · op(B)[:, 0], written down column 0 of C (stride ldc).
            let incx = transB ? 1 : ldb
            if transA {
                gemvColumns(count: m, k: k, alpha: alpha, w: a, ldw: lda, x: b, incx: incx,
                            beta: beta, y: c, incy: ldc, workers: workers)
            } else {
                gemvRows(count: m, k: k, alpha: alpha, w: a, ldw: lda, x: b, incx: incx,
                         beta: beta, y: c, incy: ldc, workers: workers)
            }
        }
    }

    /// y[i * incy] = alpha * dot(W[i, 0..<k], x) + beta * y[i * incy] for i in 0..<count.
    static func gemvRows(count: Int, k: Int, alpha: Float, w: UnsafePointer<Float>, ldw: Int,
                         x: UnsafePointer<Float>, incx: Int, beta: Float,
                         y: UnsafeMutablePointer<Float>, incy: Int, workers: Int?) {
        withContiguous(x, count: k, stride: incx) { x in
            // Rows in chunks of 4 so the x vector is loaded once per four dot products.
            let chunks = (count + 3) / 4
            Parallel.run(workers: workers, maxUseful: max(1, count / 64)) { ith, nth in
                for chunk in Parallel.range(ith, of: nth, count: chunks) {
                    let i0 = chunk * 4, rows = min(4, count - i0)
                    var s0 = VFloat(), s1 = VFloat(), s2 = VFloat(), s3 = VFloat()
                    let r0 = w + i0 * ldw
                    let r1 = rows > 1 ? r0 + ldw : r0, r2 = rows > 2 ? r0 + 2 * ldw : r0
                    let r3 = rows > 3 ? r0 + 3 * ldw : r0
                    var p = 0
                    while p + vLanes <= k {
                        let xv = vload(x, p)
                        fmadd(&s0, vload(r0, p), xv); fmadd(&s1, vload(r1, p), xv)
                        fmadd(&s2, vload(r2, p), xv); fmadd(&s3, vload(r3, p), xv)
                        p += vLanes
                    }
                    var v0 = s0.sum(), v1 = s1.sum(), v2 = s2.sum(), v3 = s3.sum()
                    while p < k {
                        let xp = x[p]
                        v0 += r0[p] * xp; v1 += r1[p] * xp; v2 += r2[p] * xp; v3 += r3[p] * xp
                        p += 1
                    }
                    store(v0, y + i0 * incy, alpha, beta)
                    if rows > 1 { store(v1, y + (i0 + 1) * incy, alpha, beta) }
                    if rows > 2 { store(v2, y + (i0 + 2) * incy, alpha, beta) }
                    if rows > 3 { store(v3, y + (i0 + 3) * incy, alpha, beta) }
                }
            }
        }
    }

    /// y[j * incy] = alpha * sum_k W[k, j] * x[k] + beta * y[j * incy] for j in 0..<count.
    /// Each worker owns a run of column blocks (4 vectors each) and a scratch row of running sums
    /// (its columns: L2-sized at decode widths); rows are taken in chunks of 16, and within a
    /// chunk every block of the worker's columns, so W streams as 16 sequential runs rather than as
    /// one short piece per row at a stride of a whole row (which was page-hostile: 13-16 GB/s at
    /// 576 x 49152). Every sum is still sequential over k, so results do not change with the chunking.
    static func gemvColumns(count: Int, k: Int, alpha: Float, w: UnsafePointer<Float>, ldw: Int,
                            x: UnsafePointer<Float>, incx: Int, beta: Float,
                            y: UnsafeMutablePointer<Float>, incy: Int, workers: Int?) {
        let block = 4 * vLanes, rowChunk = 16
        let blocks = (count + block - 1) / block
        Parallel.run(workers: workers, maxUseful: blocks) { ith, nth in
            let br = Parallel.range(ith, of: nth, count: blocks)
            if br.isEmpty { return }
            let jw = br.lowerBound * block, width = min(count, br.upperBound * block) - jw
            Workspace.withScratch(floats: width) { acc in
                acc.update(repeating: 0, count: width)
                var k0 = 0
                while k0 < k {
                    let k1 = min(k, k0 + rowChunk)
                    for blk in br {
                        let j0 = blk * block, bw = min(block, count - j0), t = acc + (j0 - jw)
                        if bw == block {
                            var a0 = vload(t, 0), a1 = vload(t, vLanes), a2 = vload(t, 2 * vLanes), a3 = vload(t, 3 * vLanes)
                            var row = w + k0 * ldw + j0, xp = x + k0 * incx
                            for _ in k0 ..< k1 {
                                let xv = VFloat(repeating: xp.pointee)
                                fmadd(&a0, vload(row, 0), xv); fmadd(&a1, vload(row, vLanes), xv)
                                fmadd(&a2, vload(row, 2 * vLanes), xv); fmadd(&a3, vload(row, 3 * vLanes), xv)
                                row += ldw; xp += incx
                            }
                            vstore(a0, t, 0); vstore(a1, t, vLanes); vstore(a2, t, 2 * vLanes); vstore(a3, t, 3 * vLanes)
                        } else {
                            // The last, narrower block: whole vectors one at a time, then single columns.
                            var j = 0
                            while j + vLanes <= bw {
                                var a = vload(t, j)
                                var row = w + k0 * ldw + j0 + j, xp = x + k0 * incx
                                for _ in k0 ..< k1 { fmadd(&a, vload(row, 0), VFloat(repeating: xp.pointee)); row += ldw; xp += incx }
                                vstore(a, t, j)
                                j += vLanes
                            }
                            while j < bw {
                                var a = t[j]
                                var row = w + k0 * ldw + j0 + j, xp = x + k0 * incx
                                for _ in k0 ..< k1 { a += row.pointee * xp.pointee; row += ldw; xp += incx }
                                t[j] = a
                                j += 1
                            }
                        }
                    }
                    k0 = k1
                }
                for j in 0 ..< width { store(acc[j], y + (jw + j) * incy, alpha, beta) }
            }
        }
    }

    @inline(__always)
    static func store(_ v: Float, _ dst: UnsafeMutablePointer<Float>, _ alpha: Float, _ beta: Float) {
        dst.pointee = beta == 0 ? alpha * v : beta * dst.pointee + alpha * v
    }

    /// Runs `body` with x as a contiguous vector, copying it when its stride is not 1.
    @inline(__always)
    static func withContiguous(_ x: UnsafePointer<Float>, count: Int, stride: Int,
                               _ body: (UnsafePointer<Float>) -> Void) {
        if stride == 1 { body(x); return }
        Workspace.withScratch(floats: count) { tmp in
            for i in 0 ..< count { tmp[i] = x[i * stride] }
            body(UnsafePointer(tmp))
        }
    }
}
