/// The slow twin of `sgemm`: a triple loop in Double, the oracle for tests and benchmark checks.
extension GEMM {
    /// Returns op(A)·op(B) in Double (without alpha, beta) and |op(A)|·|op(B)|, the latter for
    /// the error bound |c - r| <= 2·k·eps·(|A||B|)ij of a length-k float dot product.
    package static func sgemmReference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                       a: [Float], lda: Int, b: [Float], ldb: Int) -> (product: [Double], magnitude: [Double]) {
        var product = [Double](repeating: 0, count: m * n)
        var magnitude = [Double](repeating: 0, count: m * n)
        for i in 0 ..< m {
            for j in 0 ..< n {
                var s = 0.0, t = 0.0
                for p in 0 ..< k {
                    let x = Double(transA ? a[p * lda + i] : a[i * lda + p])
                    let y = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
                    s += x * y
                    t += abs(x * y)
                }
                product[i * n + j] = s
                magnitude[i * n + j] = t
            }
        }
        return (product, magnitude)
    }
}
