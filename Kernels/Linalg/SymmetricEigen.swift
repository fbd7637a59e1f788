import Foundation

/// Top eigenpairs of a dense symmetric Double matrix: Householder tridiagonalisation, Sturm
/// bisection for the wanted eigenvalues, inverse iteration on the tridiagonal for their vectors,
/// back-transformation through the reflectors (the LAPACK dsytrd + dstebz + dstein + dormtr path).
///
/// Accuracy: eigenvalues to about d·eps·||A||₂ absolute (backward stable tridiagonalisation,
/// bisection to full precision); eigenvectors of an eigenvalue separated by gap g have angle
/// error about d·eps·||A||₂ / g. Vectors of clustered eigenvalues (gap < 1e-3·||A||) are
/// re-orthogonalised against each other, so they span the right invariant subspace.
/// Cost: (4/3)·d³ + O(d²·k) flops.
public enum SymmetricEigen {
    /// The `k` largest eigenvalues (descending) and unit eigenvectors of the symmetric d x d
    /// row-major `a` (only symmetry of the values is assumed; the upper triangle is used).
    /// Returns `values` (k) and `vectors` (k x d row-major: row j is the j-th eigenvector).
    public static func top(_ k: Int, of a: [Double], dimension d: Int) -> (values: [Double], vectors: [Double]) {
        precondition(d >= 1 && a.count >= d * d && k >= 0 && k <= d, "SymmetricEigen.top: bad shape (k \(k), d \(d))")
        if k == 0 { return ([], []) }
        var m = a
        // Symmetrise from the upper triangle so callers may pass a slightly asymmetric matrix.
        for i in 0 ..< d { for j in 0 ..< i { m[i * d + j] = m[j * d + i] } }
        var diag = [Double](repeating: 0, count: d), off = [Double](repeating: 0, count: max(d - 1, 0))
        var tau = [Double](repeating: 0, count: max(d - 1, 0))
        m.withUnsafeMutableBufferPointer { mp in
            tridiagonalize(mp.baseAddress!, d, &diag, &off, &tau)
        }
        let values = topEigenvalues(k, diag, off)
        var vectors = tridiagonalEigenvectors(values, diag, off)
        // Back-transform: v = H_0 H_1 ... H_{d-3} y; reflector j acts on indices j+1..<d with v stored in row j.
        for t in 0 ..< k {
            vectors.withUnsafeMutableBufferPointer { vp in
                let y = vp.baseAddress! + t * d
                for j in stride(from: d - 3, through: 0, by: -1) where tau[j] != 0 {
                    let row = j * d
                    var w = y[j + 1]
                    for i in j + 2 ..< d { w += m[row + i] * y[i] }
                    w *= tau[j]
                    y[j + 1] -= w
                    for i in j + 2 ..< d { y[i] -= w * m[row + i] }
                }
            }
        }
        return (values, vectors)
    }

    /// Householder reduction A = H T Hᵀ. On return diag/off hold T; reflector j (acting on indices
    /// j+1..<d, with implicit leading 1 at j+1) is stored in row j of `a` at columns j+2..<d, tau[j] its scale.
    static func tridiagonalize(_ a: UnsafeMutablePointer<Double>, _ d: Int, _ diag: inout [Double], _ off: inout [Double],
                               _ tau: inout [Double]) {
        var v = [Double](repeating: 0, count: d), p = [Double](repeating: 0, count: d)
        for j in 0 ..< max(d - 2, 0) {
            let row = a + j * d
            var norm2 = 0.0
            for i in j + 2 ..< d { norm2 += row[i] * row[i] }
            let alpha = row[j + 1]
            diag[j] = row[j]
            if norm2 == 0 {
                tau[j] = 0; off[j] = alpha
                continue
            }
            let norm = (alpha * alpha + norm2).squareRoot()
            let beta = alpha <= 0 ? norm : -norm
            let t = (beta - alpha) / beta
            let scale = 1 / (alpha - beta)
            v[j + 1] = 1
            for i in j + 2 ..< d { v[i] = row[i] * scale; row[i] = v[i] }
            tau[j] = t; off[j] = beta
            // Trailing block S = A[j+1..., j+1...]: p = t·S v, w = p - (t/2)(pᵀv) v, S -= v wᵀ + w vᵀ.
            var pv = 0.0
            for r in j + 1 ..< d {
                let ar = a + r * d
                let s = v.withUnsafeBufferPointer { vp in dotDouble(ar + j + 1, vp.baseAddress! + j + 1, d - j - 1) }
                p[r] = t * s
                pv += p[r] * v[r]
            }
            let half = 0.5 * t * pv
            for r in j + 1 ..< d { p[r] -= half * v[r] }  // p is now w
            for r in j + 1 ..< d {
                let ar = a + r * d
                let vr = v[r], wr = p[r]
                for c in j + 1 ..< d { ar[c] -= vr * p[c] + wr * v[c] }
            }
        }
        if d >= 2 {
            diag[d - 2] = a[(d - 2) * d + d - 2]
            off[d - 2] = a[(d - 2) * d + d - 1]
            tau[d - 2] = 0
        }
        diag[d - 1] = a[(d - 1) * d + d - 1]
    }

    /// Number of eigenvalues of T strictly less than x (Sturm sequence of the LDLᵀ pivots).
    static func countBelow(_ x: Double, _ diag: [Double], _ off: [Double]) -> Int {
        var count = 0
        var q = 1.0
        let tiny = Double.leastNormalMagnitude
        for i in 0 ..< diag.count {
            let e2 = i == 0 ? 0 : off[i - 1] * off[i - 1]
            q = diag[i] - x - (i == 0 ? 0 : e2 / q)
            if q == 0 { q = -tiny }
            if q < 0 { count += 1 }
        }
        return count
    }

    /// The k largest eigenvalues of T, descending, by bisection on the Sturm count.
    static func topEigenvalues(_ k: Int, _ diag: [Double], _ off: [Double]) -> [Double] {
        let d = diag.count
        var lo = Double.infinity, hi = -Double.infinity
        for i in 0 ..< d {
            let r = (i > 0 ? abs(off[i - 1]) : 0) + (i < d - 1 ? abs(off[i]) : 0)
            lo = min(lo, diag[i] - r); hi = max(hi, diag[i] + r)
        }
        let span = max(abs(lo), abs(hi), Double.leastNormalMagnitude)
        lo -= 2 * Double.ulpOfOne * span * Double(d) + Double.leastNormalMagnitude
        hi += 2 * Double.ulpOfOne * span * Double(d) + Double.leastNormalMagnitude
        var values = [Double]()
        for t in 0 ..< k {
            // Eigenvalue with index (d - 1 - t) in ascending order: smallest x with count(x) > d - 1 - t.
            let target = d - 1 - t
            var a = lo, b = hi
            for _ in 0 ..< 200 {
                let mid = 0.5 * (a + b)
                if mid <= a || mid >= b || b - a <= 2 * Double.ulpOfOne * max(abs(a), abs(b)) { break }
                if countBelow(mid, diag, off) > target { b = mid } else { a = mid }
            }
            values.append(0.5 * (a + b))
        }
        return values
    }

    /// Unit eigenvectors of T for the given eigenvalues (k x d row-major) by inverse iteration,
    /// Gram-Schmidt within clusters of close eigenvalues.
    static func tridiagonalEigenvectors(_ values: [Double], _ diag: [Double], _ off: [Double]) -> [Double] {
        let d = diag.count, k = values.count
        var out = [Double](repeating: 0, count: k * d)
        var norm = 0.0
        for i in 0 ..< d { norm = max(norm, abs(diag[i]) + (i > 0 ? abs(off[i - 1]) : 0) + (i < d - 1 ? abs(off[i]) : 0)) }
        let clusterGap = 1e-3 * max(norm, Double.leastNormalMagnitude)
        var stream = GaussianStream(seed: 0x5EED)
        var clusterStart = 0
        for t in 0 ..< k {
            if t > 0 && abs(values[t - 1] - values[t]) > clusterGap { clusterStart = t }
            // Perturb the shift slightly so that T - lambda I is safely nonsingular.
            let shift = values[t] + (Double(t - clusterStart) + 1) * Double.ulpOfOne * max(norm, Double.leastNormalMagnitude) * 4
            var x = (0 ..< d).map { _ in stream.nextNormal() }
            for _ in 0 ..< 4 {
                x = solveShifted(diag, off, shift, x, pivotFloor: Double.ulpOfOne * max(norm, Double.leastNormalMagnitude))
                for _ in 0 ..< 2 where t > clusterStart {
                    for s in clusterStart ..< t {
                        var dot = 0.0
                        for i in 0 ..< d { dot += out[s * d + i] * x[i] }
                        for i in 0 ..< d { x[i] -= dot * out[s * d + i] }
                    }
                }
                let nx = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if !(nx > 0) || !nx.isFinite { x = (0 ..< d).map { _ in stream.nextNormal() }; continue }
                for i in 0 ..< d { x[i] /= nx }
            }
            for i in 0 ..< d { out[t * d + i] = x[i] }
        }
        return out
    }

    /// Solves (T - shift·I) y = b by Gaussian elimination with partial pivoting on the tridiagonal.
    static func solveShifted(_ diag: [Double], _ off: [Double], _ shift: Double, _ b: [Double], pivotFloor: Double) -> [Double] {
        let d = diag.count
        if d == 1 {
            let p = diag[0] - shift
            return [b[0] / (abs(p) < pivotFloor ? pivotFloor : p)]
        }
        // Rows of U have up to three nonzeros: u0 (diagonal), u1, u2.
        var u0 = [Double](repeating: 0, count: d), u1 = [Double](repeating: 0, count: d), u2 = [Double](repeating: 0, count: d)
        var y = b
        var curD = diag[0] - shift, curE = off[0], curF = 0.0  // current row: (curD at i, curE at i+1, curF at i+2)
        for i in 0 ..< d - 1 {
            let subL = off[i]                     // T[i+1][i]
            let nextD = diag[i + 1] - shift, nextE = i + 1 < d - 1 ? off[i + 1] : 0
            if abs(curD) >= abs(subL) {
                var piv = curD
                if abs(piv) < pivotFloor { piv = piv < 0 ? -pivotFloor : pivotFloor }
                let m = subL / piv
                u0[i] = piv; u1[i] = curE; u2[i] = curF
                y[i + 1] -= m * y[i]
                curD = nextD - m * curE; curE = nextE - m * curF; curF = 0
            } else {
                // Swap rows i and i+1.
                let m = curD / subL
                u0[i] = subL; u1[i] = nextD; u2[i] = nextE
                let yi = y[i]; y[i] = y[i + 1]; y[i + 1] = yi - m * y[i]
                let newD = curE - m * nextD, newE = curF - m * nextE
                curD = newD; curE = newE; curF = 0
            }
        }
        var last = curD
        if abs(last) < pivotFloor { last = last < 0 ? -pivotFloor : pivotFloor }
        u0[d - 1] = last
        var x = [Double](repeating: 0, count: d)
        for i in stride(from: d - 1, through: 0, by: -1) {
            var s = y[i]
            if i + 1 < d { s -= u1[i] * x[i + 1] }
            if i + 2 < d { s -= u2[i] * x[i + 2] }
            x[i] = s / u0[i]
        }
        return x
    }
}

/// Σ a[i]·b[i] in Double with four SIMD4 accumulators (Swift does not vectorise FP reductions).
@inline(__always)
func dotDouble(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
    var s0 = SIMD4<Double>(), s1 = SIMD4<Double>(), s2 = SIMD4<Double>(), s3 = SIMD4<Double>()
    var i = 0
    let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
    while i + 16 <= n {
        s0 += ra.loadUnaligned(fromByteOffset: 8 * i, as: SIMD4<Double>.self) * rb.loadUnaligned(fromByteOffset: 8 * i, as: SIMD4<Double>.self)
        s1 += ra.loadUnaligned(fromByteOffset: 8 * (i + 4), as: SIMD4<Double>.self) * rb.loadUnaligned(fromByteOffset: 8 * (i + 4), as: SIMD4<Double>.self)
        s2 += ra.loadUnaligned(fromByteOffset: 8 * (i + 8), as: SIMD4<Double>.self) * rb.loadUnaligned(fromByteOffset: 8 * (i + 8), as: SIMD4<Double>.self)
        s3 += ra.loadUnaligned(fromByteOffset: 8 * (i + 12), as: SIMD4<Double>.self) * rb.loadUnaligned(fromByteOffset: 8 * (i + 12), as: SIMD4<Double>.self)
        i += 16
    }
    var s = ((s0 + s1) + (s2 + s3)).sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}
