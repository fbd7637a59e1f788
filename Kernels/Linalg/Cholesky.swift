/// Small dense symmetric positive definite solves in Double (Newton steps of the judge's logistic
/// regression, the guided-SAFT discriminant): A = L·Lᵀ, then two triangular solves. O(n³/3); meant
/// for n up to a few thousand, not a hot path.
public enum Cholesky {
    /// x with A x = b for symmetric positive definite A (n × n, row-major; only the lower triangle is
    /// read). Nil when A is not positive definite (a pivot ≤ 0).
    public static func solve(_ a: [Double], _ b: [Double], n: Int) -> [Double]? {
        precondition(a.count == n * n && b.count == n, "Cholesky.solve: \(a.count) and \(b.count) values for n = \(n)")
        var l = a
        for j in 0 ..< n {
            var diag = l[j * n + j]
            for k in 0 ..< j { diag -= l[j * n + k] * l[j * n + k] }
            guard diag > 0 else { return nil }
            let ljj = diag.squareRoot()
            l[j * n + j] = ljj
            for i in j + 1 ..< n {
                var v = l[i * n + j]
                for k in 0 ..< j { v -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = v / ljj
            }
        }
        var y = b
        for i in 0 ..< n {
            var v = y[i]
            for k in 0 ..< i { v -= l[i * n + k] * y[k] }
            y[i] = v / l[i * n + i]
        }
        for i in stride(from: n - 1, through: 0, by: -1) {
            var v = y[i]
            for k in i + 1 ..< n { v -= l[k * n + i] * y[k] }
            y[i] = v / l[i * n + i]
        }
        return y
    }
}
