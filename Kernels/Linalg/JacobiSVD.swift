import Foundation

/// Thin SVD of small dense Double matrices by one-sided (Hestenes) Jacobi.
///
/// One-sided Jacobi rotates pairs of columns of W = A·J until all pairs are orthogonal to
/// working precision; then sigma_i = ||W_i||, u_i = W_i / sigma_i and V = J. It computes every
/// singular value to high *relative* accuracy (Demmel & Veselic 1992), which is why the (k+p) x
/// (k+p) core of the randomized SVD and the sketch merge use it. A tall m x c input is first
/// reduced by Householder QR, A = Q·R, and Jacobi runs on the c x c factor R (cheap for c << m).
package enum JacobiSVD {
    /// Result of `thin`: `u` m x r and `v` c x r column-major, `s` descending, r = c.
    package struct Result {
        package var u: [Double]
        package var s: [Double]
        package var v: [Double]
        package var sweeps: Int
    }

    /// One-sided Jacobi on the square c x c column-major `w` in place: on return the columns of
    /// `w` are mutually orthogonal (|w_iᵀw_j| <= tol·||w_i||·||w_j||) and `v` (c x c, starts as
    /// identity) holds the accumulated rotations, so that W_in = W_out · Vᵀ. Returns the sweeps used.
    package static func orthogonalizeColumns(_ w: UnsafeMutablePointer<Double>, rows m: Int, cols c: Int,
                                             v: UnsafeMutablePointer<Double>, maxSweeps: Int = 60) -> Int {
        for j in 0 ..< c { for i in 0 ..< c { v[j * c + i] = i == j ? 1 : 0 } }
        let tol = Double(m).squareRoot() * Double.ulpOfOne
        var sweep = 0
        while sweep < maxSweeps {
            sweep += 1
            var rotated = false
            for p in 0 ..< c {
                for q in p + 1 ..< c {
                    let wp = w + p * m, wq = w + q * m
                    var alpha = 0.0, beta = 0.0, gamma = 0.0
                    for i in 0 ..< m { alpha += wp[i] * wp[i]; beta += wq[i] * wq[i]; gamma += wp[i] * wq[i] }
                    if gamma == 0 || abs(gamma) <= tol * (alpha * beta).squareRoot() { continue }
                    rotated = true
                    let zeta = (beta - alpha) / (2 * gamma)
                    let t = (zeta >= 0 ? 1.0 : -1.0) / (abs(zeta) + (1 + zeta * zeta).squareRoot())
                    let cs = 1 / (1 + t * t).squareRoot(), sn = cs * t
                    for i in 0 ..< m {
                        let x = wp[i], y = wq[i]
                        wp[i] = cs * x - sn * y
                        wq[i] = sn * x + cs * y
                    }
                    let vp = v + p * c, vq = v + q * c
                    for i in 0 ..< c {
                        let x = vp[i], y = vq[i]
                        vp[i] = cs * x - sn * y
                        vq[i] = sn * x + cs * y
                    }
                }
            }
            if !rotated { break }
        }
        return sweep
    }

    /// Thin SVD of the m x c column-major `a` (m >= c): A = U·diag(s)·Vᵀ with U m x c and V c x c
    /// orthonormal, s descending and non-negative. Columns of U for zero singular values are
    /// completed to an orthonormal set. Cost: 4·m·c² (QR) + about 6·c³ per sweep (Jacobi) + 2·m·c².
    package static func thin(_ a: [Double], rows m: Int, cols c: Int) -> Result {
        precondition(m >= c && c >= 1 && a.count >= m * c, "JacobiSVD.thin: needs m >= c >= 1")
        var q = Array(a[0 ..< m * c])
        var r = [Double](repeating: 0, count: c * c)
        var jv = [Double](repeating: 0, count: c * c)
        var sweeps = 0
        q.withUnsafeMutableBufferPointer { qp in
            r.withUnsafeMutableBufferPointer { rp in
                DenseQR.householder(qp.baseAddress!, m: m, c: c, r: rp.baseAddress!)
                jv.withUnsafeMutableBufferPointer { vp in
                    sweeps = orthogonalizeColumns(rp.baseAddress!, rows: c, cols: c, v: vp.baseAddress!)
                }
            }
        }
        // R·J = W (orthogonal columns): sigma_i = ||W_i||, Ur_i = W_i / sigma_i. Sort descending.
        var sigma = [Double](repeating: 0, count: c)
        for j in 0 ..< c {
            var s2 = 0.0
            for i in 0 ..< c { s2 += r[j * c + i] * r[j * c + i] }
            sigma[j] = s2.squareRoot()
        }
        let order = (0 ..< c).sorted { sigma[$0] != sigma[$1] ? sigma[$0] > sigma[$1] : $0 < $1 }
        var ur = [Double](repeating: 0, count: c * c), vOut = [Double](repeating: 0, count: c * c), s = [Double](repeating: 0, count: c)
        let smax = sigma.max() ?? 0
        var filled = [Bool](repeating: false, count: c)
        for (k, j) in order.enumerated() {
            s[k] = sigma[j]
            for i in 0 ..< c { vOut[k * c + i] = jv[j * c + i] }
            if sigma[j] > Double(c) * Double.ulpOfOne * smax && sigma[j] > 0 {
                for i in 0 ..< c { ur[k * c + i] = r[j * c + i] / sigma[j] }
                filled[k] = true
            }
        }
        completeOrthonormal(&ur, rows: c, cols: c, filled: filled)
        // U = Q · Ur  (m x c times c x c).
        var u = [Double](repeating: 0, count: m * c)
        for k in 0 ..< c {
            for j in 0 ..< c {
                let f = ur[k * c + j]
                if f == 0 { continue }
                let qj = j * m, uk = k * m
                for i in 0 ..< m { u[uk + i] += f * q[qj + i] }
            }
        }
        return Result(u: u, s: s, v: vOut, sweeps: sweeps)
    }

    /// Replaces the columns with `filled[k] == false` by unit vectors orthogonal to all others
    /// (Gram-Schmidt twice over the canonical basis), so U stays orthonormal when sigma = 0.
    static func completeOrthonormal(_ u: inout [Double], rows m: Int, cols c: Int, filled: [Bool]) {
        var done = filled
        var candidate = 0
        for k in 0 ..< c where !done[k] {
            while candidate < m {
                var x = [Double](repeating: 0, count: m)
                x[candidate] = 1
                candidate += 1
                for _ in 0 ..< 2 {
                    for j in 0 ..< c where done[j] {
                        var d = 0.0
                        for i in 0 ..< m { d += u[j * m + i] * x[i] }
                        for i in 0 ..< m { x[i] -= d * u[j * m + i] }
                    }
                }
                let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > 0.5 {
                    for i in 0 ..< m { u[k * m + i] = x[i] / norm }
                    done[k] = true
                    break
                }
            }
        }
    }
}
