import Kernels

/// A heap buffer of floats that lives as long as the timed closure holding it.
final class Buffer {
    let count: Int
    let p: UnsafeMutablePointer<Float>
    init(_ count: Int, fill: (Int) -> Float = { _ in 0 }) {
        self.count = max(count, 1)
        p = .allocate(capacity: self.count)
        for i in 0 ..< self.count { p[i] = fill(i) }
    }
    deinit { p.deallocate() }
}

/// Deterministic values in [-1, 1) without a generator object.
@inline(__always) func noise(_ i: Int, _ salt: Int) -> Float {
    var z = UInt64(truncatingIfNeeded: i &* 2654435761 &+ salt &* 40503)
    z = (z ^ (z >> 33)) &* 0xff51afd7ed558ccd
    z = (z ^ (z >> 33)) &* 0xc4ceb9fe1a85ec53
    return Float(z >> 40) / Float(1 << 23) - 1
}

/// BLIS-style residual check: |C·t - op(A)(op(B) t)| <= 4(k + n)·eps·|op(A)|(|op(B)||t|), elementwise.
func residualOK(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                b: UnsafePointer<Float>, ldb: Int, c: UnsafePointer<Float>, ldc: Int) -> Bool {
    let t = (0 ..< n).map { Double(noise($0, 99)) }
    var u = [Double](repeating: 0, count: k), ua = [Double](repeating: 0, count: k)
    for p in 0 ..< k {
        for j in 0 ..< n {
            let x = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
            u[p] += x * t[j]; ua[p] += abs(x * t[j])
        }
    }
    let eps = Double(Float.ulpOfOne)
    for i in 0 ..< m {
        var v = 0.0, va = 0.0, ct = 0.0
        for p in 0 ..< k {
            let x = Double(transA ? a[p * lda + i] : a[i * lda + p])
            v += x * u[p]; va += abs(x) * ua[p]
        }
        for j in 0 ..< n { ct += Double(c[i * ldc + j]) * t[j] }
        if !(abs(ct - v) <= 4 * Double(k + n) * eps * va + 1e-30) { return false }
    }
    return true
}

func sgemmCase(_ m: Int, _ n: Int, _ k: Int, transA: Bool = false, transB: Bool = false) -> BenchCase {
    BenchCase(name: "sgemm",
              params: [("m", .int(m)), ("n", .int(n)), ("k", .int(k)), ("transA", .bool(transA)), ("transB", .bool(transB))],
              flops: 2 * Double(m) * Double(n) * Double(k),
              bytes: 4 * Double(m * k + k * n + m * n)) { threads in
        let a = Buffer(m * k) { noise($0, 1) }, b = Buffer(k * n) { noise($0, 2) }, c = Buffer(m * n)
        let lda = transA ? m : k, ldb = transB ? k : n
        GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a.p, lda: lda, b: b.p, ldb: ldb,
                   c: c.p, ldc: n, workers: threads)
        let ok = residualOK(transA: transA, transB: transB, m: min(m, 64), n: n, k: k, a: a.p, lda: lda,
                            b: b.p, ldb: ldb, c: c.p, ldc: n)
        return (ok, {
            GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a.p, lda: lda, b: b.p, ldb: ldb,
                       c: c.p, ldc: n, workers: threads)
            blackHole(c)
        })
    }
}

/// y = x · op(W): one token against a weight matrix, measured cold (the weights rotate through
/// copies that together exceed the last-level cache, as in decode).
func sgemvCase(k: Int, n: Int, transB: Bool) -> BenchCase {
    BenchCase(name: "sgemv",
              params: [("m", .int(1)), ("n", .int(n)), ("k", .int(k)), ("transA", .bool(false)), ("transB", .bool(transB)),
                       ("cache", .string("cold"))],
              flops: 2 * Double(n) * Double(k), bytes: 4 * Double(k * n + k + n), bandwidthBound: true) { threads in
        let copies = max(1, (256 << 20) / (4 * k * n))
        let ws = (0 ..< copies).map { c in Buffer(k * n) { noise($0, 3 + c) } }
        let x = Buffer(k) { noise($0, 4) }, y = Buffer(n)
        let ldb = transB ? k : n
        GEMM.sgemm(transB: transB, m: 1, n: n, k: k, a: x.p, lda: k, b: ws[0].p, ldb: ldb, c: y.p, ldc: n, workers: threads)
        let ok = residualOK(transA: false, transB: transB, m: 1, n: n, k: k, a: x.p, lda: k, b: ws[0].p, ldb: ldb, c: y.p, ldc: n)
        var next = 0
        return (ok, {
            GEMM.sgemm(transB: transB, m: 1, n: n, k: k, a: x.p, lda: k, b: ws[next].p, ldb: ldb, c: y.p, ldc: n, workers: threads)
            next = (next + 1) % copies
            blackHole(y)
        })
    }
}

func gemmCases(quick: Bool) -> [BenchCase] {
    if quick {
        return [sgemmCase(64, 64, 64), sgemmCase(100, 70, 33, transA: true), sgemmCase(37, 129, 65, transB: true),
                sgemmCase(16, 1000, 64, transB: true),
                sgemvCase(k: 64, n: 1000, transB: true), sgemvCase(k: 64, n: 1000, transB: false)]
    }
    var cases = [512, 1024, 2048, 4096].map { sgemmCase($0, $0, $0) }
    // SmolLM2-135M at B·T = 512 tokens: forward Y = X·Wᵀ (NT), dX = dY·W (NN), dW = dYᵀ·X (TN).
    for (k, n) in [(576, 1536), (1536, 576), (576, 49152)] {
        cases.append(sgemmCase(512, n, k, transB: true))
        cases.append(sgemmCase(512, n, k))
        cases.append(sgemmCase(512, n, k, transA: true))
        cases.append(sgemmCase(512, n, k, transA: true, transB: true))
    }
    // Batched decode: 8-32 rows against row-major weights (the skinny paths), head and FFN shapes.
    for m in [8, 16, 32] {
        cases.append(sgemmCase(m, 49152, 576, transB: true))
        cases.append(sgemmCase(m, 1536, 576, transB: true))
    }
    cases += [sgemvCase(k: 576, n: 49152, transB: true), sgemvCase(k: 576, n: 49152, transB: false),
              sgemvCase(k: 1536, n: 576, transB: true), sgemvCase(k: 1536, n: 576, transB: false)]
    return cases
}
