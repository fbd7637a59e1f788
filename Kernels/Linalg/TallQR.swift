import Foundation

/// Orthonormalisation of a few long Float vectors (the columns of a tall-skinny n x l matrix,
/// stored transposed as l rows of length n): the range-finder step of the randomized SVD.
///
/// Default: CholeskyQR2 (Yamamoto et al. 2015): G = X Xᵀ (SIMD dot products into Double), R = chol(G) in Double,
/// Qᵀ = R⁻ᵀ Xᵀ (a triangular multiply), repeated once. It is orthonormal to O(eps) when
/// kappa(X) << eps^(-1/2) (about 4000 in Float). When the first Cholesky factorisation fails or the
/// second Gram matrix is far from identity, it switches to shifted CholeskyQR3 (Fukaya et al.
/// 2020: chol(G + s·I) with s = 1e-6·trace(G), then two plain rounds); when a factorisation
/// still fails (numerically rank-deficient X) it falls back to Householder QR in Double.
package enum TallQR {
    package enum Method: String { case choleskyQR, choleskyQR2, shiftedCholeskyQR3, householder }

    /// Orthonormalises the `l` rows of `x` (l x length, row stride `length`) in place, spanning
    /// the same subspace (up to rounding). `scratch` must hold l x length floats.
    /// Cost: about 4·l²·length flops through GEMM (CholeskyQR2), 4·l²·length in Double (fallback).
    /// With `precise == false` (the power iterations, which only need a well-conditioned basis of
    /// the same span) a single CholeskyQR round is used when its Cholesky factorisation succeeds
    /// (orthogonality error about kappa²·eps), else the full path.
    @discardableResult
    package static func orthonormalizeRows(_ x: UnsafeMutablePointer<Float>, rows l: Int, length: Int,
                                           scratch: UnsafeMutablePointer<Float>, precise: Bool = true,
                                           workers: Int? = nil) -> Method {
        precondition(l >= 1 && length >= l, "TallQR: needs length >= rows >= 1 (rows \(l), length \(length))")
        var g = [Double](repeating: 0, count: l * l)
        gram(x, rows: l, length: length, into: &g, workers: workers)
        if !precise, let r = cholesky(g, l) {
            applyInverse(r, l, from: x, to: x, length: length, workers: workers)
            return .choleskyQR
        }
        if let r = cholesky(g, l) {
            applyInverse(r, l, from: x, to: scratch, length: length, workers: workers)
            gram(scratch, rows: l, length: length, into: &g, workers: workers)
            if deviationFromIdentity(g, l) < 0.1, let r2 = cholesky(g, l) {
                applyInverse(r2, l, from: scratch, to: x, length: length, workers: workers)
                return .choleskyQR2
            }
        } else {
            // x unchanged: retry from it with a shift.
            var shifted = g
            var trace = 0.0
            for i in 0 ..< l { trace += g[i * l + i] }
            let s = max(1e-6 * trace, Double.leastNormalMagnitude)
            for i in 0 ..< l { shifted[i * l + i] += s }
            if trace.isFinite, trace > 0, let r = cholesky(shifted, l) {
                applyInverse(r, l, from: x, to: scratch, length: length, workers: workers)
                if plainRounds(2, scratch, x, l, length, workers) { return .shiftedCholeskyQR3 }
            }
            return householder(x, rows: l, length: length)
        }
        // First round succeeded but left scratch far from orthonormal: two more plain rounds.
        if plainRounds(2, scratch, x, l, length, workers) { return .shiftedCholeskyQR3 }
        return householder(x, rows: l, length: length)
    }

    /// `rounds` CholeskyQR rounds ping-ponging between `a` (the input) and `b`; the result ends in
    /// `b`. True when every factorisation succeeded and the result is orthonormal to 1e-3.
    private static func plainRounds(_ rounds: Int, _ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>,
                                    _ l: Int, _ length: Int, _ workers: Int?) -> Bool {
        var g = [Double](repeating: 0, count: l * l)
        var src = a, dst = b
        for _ in 0 ..< rounds {
            gram(src, rows: l, length: length, into: &g, workers: workers)
            guard let r = cholesky(g, l) else { return false }
            applyInverse(r, l, from: src, to: dst, length: length, workers: workers)
            swap(&src, &dst)
        }
        // After an even number of rounds the result is back in `a`; move it to `b`.
        if rounds % 2 == 0 { b.update(from: a, count: l * length) }
        gram(b, rows: l, length: length, into: &g, workers: workers)
        return deviationFromIdentity(g, l) < 1e-3
    }

    /// G = X Xᵀ in Double (Float SIMD dot products accumulated into Double, see `ThinProducts.gram`).
    static func gram(_ x: UnsafePointer<Float>, rows l: Int, length: Int, into g: inout [Double], workers: Int?) {
        g = ThinProducts.gram(x, rows: l, length: length, workers: workers)
    }

    /// Upper-triangular R (row-major) with RᵀR = G, or nil when G is not numerically positive definite.
    static func cholesky(_ g: [Double], _ l: Int) -> [Double]? {
        var r = [Double](repeating: 0, count: l * l)
        var maxDiag = 0.0
        for i in 0 ..< l { maxDiag = max(maxDiag, g[i * l + i]) }
        guard maxDiag.isFinite, maxDiag > 0 else { return nil }
        for j in 0 ..< l {
            var d = g[j * l + j]
            for k in 0 ..< j { d -= r[k * l + j] * r[k * l + j] }
            // A pivot below Float resolution of the largest diagonal means the Float data cannot
            // be orthonormalised reliably by this Gram matrix.
            guard d.isFinite, d > 1e-12 * maxDiag else { return nil }
            let rjj = d.squareRoot()
            r[j * l + j] = rjj
            for i in j + 1 ..< l {
                var s = g[j * l + i]
                for k in 0 ..< j { s -= r[k * l + j] * r[k * l + i] }
                r[j * l + i] = s / rjj
            }
        }
        return r
    }

    /// dst = R⁻ᵀ · src (l x length), i.e. Qᵀ = R⁻ᵀ Xᵀ.
    static func applyInverse(_ r: [Double], _ l: Int, from src: UnsafeMutablePointer<Float>, to dst: UnsafeMutablePointer<Float>,
                             length: Int, workers: Int?) {
        // Rinv (upper) by back substitution, column by column; W = Rinvᵀ (lower), row-major.
        var rinv = [Double](repeating: 0, count: l * l)
        for j in 0 ..< l {
            rinv[j * l + j] = 1 / r[j * l + j]
            for i in stride(from: j - 1, through: 0, by: -1) {
                var s = 0.0
                for k in i + 1 ... j { s += r[i * l + k] * rinv[k * l + j] }
                rinv[i * l + j] = -s / r[i * l + i]
            }
        }
        var w = [Float](repeating: 0, count: l * l)
        for i in 0 ..< l { for j in 0 ... i { w[i * l + j] = Float(rinv[j * l + i]) } }
        w.withUnsafeBufferPointer { wp in
            ThinProducts.lowerTimes(wp.baseAddress!, l, src: src, dst: dst, length: length, workers: workers)
        }
    }

    static func deviationFromIdentity(_ g: [Double], _ l: Int) -> Double {
        var worst = 0.0
        for i in 0 ..< l { for j in 0 ..< l { worst = max(worst, abs(g[i * l + j] - (i == j ? 1 : 0))) } }
        return worst.isNaN ? .infinity : worst
    }

    /// Householder QR in Double of the l vectors (column-major n x l == x row-major l x n).
    static func householder(_ x: UnsafeMutablePointer<Float>, rows l: Int, length: Int) -> Method {
        var a = [Double](repeating: 0, count: l * length)
        for i in 0 ..< l * length { a[i] = Double(x[i]) }
        var r = [Double](repeating: 0, count: l * l)
        a.withUnsafeMutableBufferPointer { ap in
            r.withUnsafeMutableBufferPointer { rp in
                DenseQR.householder(ap.baseAddress!, m: length, c: l, r: rp.baseAddress!)
            }
        }
        for i in 0 ..< l * length { x[i] = Float(a[i]) }
        return .householder
    }
}
