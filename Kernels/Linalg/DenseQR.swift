import Foundation

/// Householder QR of small dense Double matrices, column-major (column j at `a + j * m`).
///
/// Used for the (k+p)-column cores of the randomized SVD, the thin SVD, and as the fallback of
/// CholeskyQR when a Gram matrix is too ill-conditioned. Backward stable: the computed Q is
/// orthonormal to O(m·c·eps) and Q·R = A + E with ||E|| = O(m·c·eps·||A||) (Golub & Van Loan,
/// Matrix Computations, 4th ed., section 5.2.2). Rank deficiency is harmless: a zero column gives
/// an identity reflector and a zero diagonal entry of R.
package enum DenseQR {
    /// Factors the m x c column-major `a` (m >= c) in place: on return `a` holds the explicit
    /// thin Q (m x c, orthonormal columns) and `r` (c x c column-major, upper triangular) is
    /// written. Cost: about 4·m·c² flops.
    package static func householder(_ a: UnsafeMutablePointer<Double>, m: Int, c: Int, r: UnsafeMutablePointer<Double>) {
        precondition(m >= c && c >= 0, "DenseQR.householder: needs m >= c (m \(m), c \(c))")
        if c == 0 { return }
        // Reflector j is v_j = (1, a[j+1..<m, j]) with scalar tau_j; H_j = I - tau_j v vᵀ.
        var tau = [Double](repeating: 0, count: c)
        for j in 0 ..< c {
            let col = a + j * m
            var norm2 = 0.0
            for i in j + 1 ..< m { norm2 += col[i] * col[i] }
            let alpha = col[j]
            if norm2 == 0 {
                tau[j] = 0  // already upper triangular in this column
            } else {
                let norm = (alpha * alpha + norm2).squareRoot()
                let beta = alpha <= 0 ? norm : -norm
                tau[j] = (beta - alpha) / beta
                let scale = 1 / (alpha - beta)
                for i in j + 1 ..< m { col[i] *= scale }
                col[j] = beta
            }
            // Apply H_j to the trailing columns.
            if tau[j] != 0 {
                for jj in j + 1 ..< c {
                    let cj = a + jj * m
                    var w = cj[j]
                    for i in j + 1 ..< m { w += col[i] * cj[i] }
                    w *= tau[j]
                    cj[j] -= w
                    for i in j + 1 ..< m { cj[i] -= w * col[i] }
                }
            }
        }
        // R: the upper triangle.
        for j in 0 ..< c {
            for i in 0 ..< c { r[j * c + i] = i <= j ? a[j * m + i] : 0 }
        }
        // Explicit Q = H_0 ... H_{c-1} [I; 0], applied backwards, overwriting the reflectors.
        var v = [Double](repeating: 0, count: m)
        for j in stride(from: c - 1, through: 0, by: -1) {
            let col = a + j * m
            for i in j + 1 ..< m { v[i] = col[i] }
            // Column j of Q starts as e_j; columns > j already hold H_{j+1}...[I;0].
            for i in 0 ..< m { col[i] = 0 }
            col[j] = 1
            let t = tau[j]
            if t == 0 { continue }
            for jj in j ..< c {
                let cj = a + jj * m
                var w = cj[j]
                for i in j + 1 ..< m { w += v[i] * cj[i] }
                w *= t
                cj[j] -= w
                for i in j + 1 ..< m { cj[i] -= w * v[i] }
            }
        }
    }
}
