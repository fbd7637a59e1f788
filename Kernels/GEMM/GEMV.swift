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
    static func gemvColumns(count: Int, k: Int, alpha: Float, w: UnsafePointer<Float>, ldw: Int,
                            x: UnsafePointer<Float>, incx: Int, beta: Float,
                            y: UnsafeMutablePointer<Float>, incy: Int, workers: Int?) {
        // Column blocks of 8 vectors stay in registers while all k rows stream past.
        let block = 8 * vLanes
        let blocks = (count + block - 1) / block
        Parallel.run(workers: workers, maxUseful: blocks) { ith, nth in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: block) { tmp in
                let t = tmp.baseAddress!
                for blk in Parallel.range(ith, of: nth, count: blocks) {
                    let j0 = blk * block, width = min(block, count - j0)
                    if width == block {
                        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat()
                        var a4 = VFloat(), a5 = VFloat(), a6 = VFloat(), a7 = VFloat()
                        var row = w + j0, xp = x
                        for _ in 0 ..< k {
                            let xv = VFloat(repeating: xp.pointee)
                            fmadd(&a0, vload(row, 0), xv); fmadd(&a1, vload(row, vLanes), xv)
                            fmadd(&a2, vload(row, 2 * vLanes), xv); fmadd(&a3, vload(row, 3 * vLanes), xv)
                            fmadd(&a4, vload(row, 4 * vLanes), xv); fmadd(&a5, vload(row, 5 * vLanes), xv)
                            fmadd(&a6, vload(row, 6 * vLanes), xv); fmadd(&a7, vload(row, 7 * vLanes), xv)
                            row += ldw; xp += incx
                        }
                        vstore(a0, t, 0); vstore(a1, t, vLanes); vstore(a2, t, 2 * vLanes); vstore(a3, t, 3 * vLanes)
                        vstore(a4, t, 4 * vLanes); vstore(a5, t, 5 * vLanes); vstore(a6, t, 6 * vLanes); vstore(a7, t, 7 * vLanes)
                    } else {
                        t.update(repeating: 0, count: width)
                        var row = w + j0, xp = x
                        for _ in 0 ..< k {
                            let xv = xp.pointee
                            for j in 0 ..< width { t[j] += row[j] * xv }
                            row += ldw; xp += incx
                        }
                    }
                    for j in 0 ..< width { store(t[j], y + (j0 + j) * incy, alpha, beta) }
                }
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
