import Foundation

/// X = 1·μᵀ + U·diag(sigma)·Vᵀ + noise·G (n x d, Float), with U (n x r) orthonormal and orthogonal
/// to the all-ones vector (so the centred signal is exactly U Σ Vᵀ), V (d x r) orthonormal, G
/// standard normal. Returns X and V (r x d row-major, row j = v_j).
public func plantedSpectrum(rows n: Int, cols d: Int, sigma: [Double], noise: Double, meanScale: Double,
                            seed: UInt64) -> (x: [Float], v: [Double]) {
    var rng = SeededRNG(seed: seed)
    let r = sigma.count
    func orthonormal(_ m: Int, _ count: Int, againstOnes: Bool) -> [Double] {
        var q = [Double]()  // count x m, row-major
        var basis: [[Double]] = againstOnes ? [[Double](repeating: 1 / Double(m).squareRoot(), count: m)] : []
        for _ in 0 ..< count {
            var x = (0 ..< m).map { _ in rng.normal() }
            for _ in 0 ..< 2 {
                for b in basis {
                    let dot = zip(b, x).reduce(0) { $0 + $1.0 * $1.1 }
                    for i in 0 ..< m { x[i] -= dot * b[i] }
                }
            }
            let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
            x = x.map { $0 / norm }
            basis.append(x)
            q += x
        }
        return q
    }
    let u = orthonormal(n, r, againstOnes: true)
    let v = orthonormal(d, r, againstOnes: false)
    let mu = (0 ..< d).map { _ in rng.normal() * meanScale }
    var x = [Float](repeating: 0, count: n * d)
    for i in 0 ..< n {
        for t in 0 ..< d {
            var s = mu[t] + noise * rng.normal()
            for j in 0 ..< r { s += u[j * n + i] * sigma[j] * v[j * d + t] }
            x[i * d + t] = Float(s)
        }
    }
    return (x, v)
}

/// cos of the largest principal angle between the row spaces of A (k x d) and B (k x d), both
/// with orthonormal rows: the smallest singular value of A Bᵀ, from the eigenvalues of (ABᵀ)(ABᵀ)ᵀ
/// by a few Jacobi sweeps (k is small).
public func cosLargestPrincipalAngle(_ a: [Double], _ b: [Double], k: Int, d: Int) -> Double {
    var m = [Double](repeating: 0, count: k * k)
    for i in 0 ..< k { for j in 0 ..< k { var s = 0.0; for t in 0 ..< d { s += a[i * d + t] * b[j * d + t] }; m[i * k + j] = s } }
    var g = [Double](repeating: 0, count: k * k)
    for i in 0 ..< k { for j in 0 ..< k { var s = 0.0; for t in 0 ..< k { s += m[i * k + t] * m[j * k + t] }; g[i * k + j] = s } }
    // Cyclic Jacobi eigenvalues of the small symmetric g.
    for _ in 0 ..< 50 {
        var off = 0.0
        for i in 0 ..< k { for j in 0 ..< k where i != j { off += g[i * k + j] * g[i * k + j] } }
        if off < 1e-30 { break }
        for p in 0 ..< k {
            for q in p + 1 ..< k where g[p * k + q] != 0 {
                let theta = (g[q * k + q] - g[p * k + p]) / (2 * g[p * k + q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for r in 0 ..< k { let x = g[r * k + p], y = g[r * k + q]; g[r * k + p] = c * x - s * y; g[r * k + q] = s * x + c * y }
                for r in 0 ..< k { let x = g[p * k + r], y = g[q * k + r]; g[p * k + r] = c * x - s * y; g[q * k + r] = s * x + c * y }
            }
        }
    }
    let minEig = (0 ..< k).map { g[$0 * k + $0] }.min()!
    return max(0, min(1, minEig)).squareRoot()
}
