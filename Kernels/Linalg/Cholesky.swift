import Foundation

/// Dense symmetric positive definite solves in Double (Newton steps of the judge's logistic
/// regression, the guided-SAFT discriminant): A = L·Lᵀ, then two triangular solves. O(n³/3), for n
/// up to a few thousand (the judge's concatenated features reach 3,456).
public enum Cholesky {
    /// x with A x = b for symmetric positive definite A (n × n, row-major; only the lower triangle is
    /// read). Nil when A is not positive definite (a pivot ≤ 0).
    ///
    /// Left-looking (Cholesky-Crout): column j needs, for every row i ≥ j, the dot product of the
    /// finished parts of rows i and j, contiguous in row-major storage; those dot products are SIMD
    /// and the rows are split over workers (each row's value depends on that row only, so the result
    /// is the same for any worker count).
    public static func solve(_ a: [Double], _ b: [Double], n: Int, workers: Int? = nil) -> [Double]? {
        precondition(a.count == n * n && b.count == n, "Cholesky.solve: \(a.count) and \(b.count) values for n = \(n)")
        var l = a, ok = true
        l.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let lp = UnsafeMutablePointer<Double>(base)
            for j in 0 ..< n {
                let rj = lp + j * n
                let diag = rj[j] - dot(rj, rj, j)
                guard diag > 0 else { ok = false; return }
                let ljj = diag.squareRoot()
                rj[j] = ljj
                let rows = n - j - 1
                if rows == 0 { continue }
                // Below ~64k multiply-adds a column is not worth waking the other workers.
                let parts = rows * j >= 1 << 16 ? Parallel.resolve(workers) : 1
                Parallel.run(workers: parts, maxUseful: rows) { ith, nth in
                    for i in Parallel.range(ith, of: nth, count: rows) {
                        let ri = lp + (j + 1 + i) * n
                        ri[j] = (ri[j] - dot(ri, rj, j)) / ljj
                    }
                }
            }
        }
        guard ok else { return nil }
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

    /// Σ x[k]·y[k] for k < count, in two 8-lane accumulators and a scalar tail.
    @inline(__always)
    static func dot(_ x: UnsafeMutablePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ count: Int) -> Double {
        var s0 = SIMD8<Double>(), s1 = SIMD8<Double>()
        var k = 0
        let xr = UnsafeRawPointer(x), yr = UnsafeRawPointer(y)
        while k + 16 <= count {
            fmadd(&s0, xr.loadUnaligned(fromByteOffset: 8 * k, as: SIMD8<Double>.self),
                  yr.loadUnaligned(fromByteOffset: 8 * k, as: SIMD8<Double>.self))
            fmadd(&s1, xr.loadUnaligned(fromByteOffset: 8 * (k + 8), as: SIMD8<Double>.self),
                  yr.loadUnaligned(fromByteOffset: 8 * (k + 8), as: SIMD8<Double>.self))
            k += 16
        }
        var s = (s0 + s1).sum()
        while k < count { s += x[k] * y[k]; k += 1 }
        return s
    }
}
