/// Double reference of `ProjectionScore`: the oracle for tests and benchmark checks.
extension ProjectionScore {
    /// Returns (squared, signedMean, normalized, projections n x k, and the magnitudes
    /// Σ_t |x_it - μ_t||v_jt| (n x k) for error bounds), all in Double.
    package static func reference(x: [Float], rows n: Int, cols d: Int, ldx: Int, mean: [Float]?, basis: [Float], rank k: Int,
                                  weights: [Float]?) -> (squared: [Double], signedMean: [Double], normalized: [Double],
                                                         projections: [Double], magnitude: [Double]) {
        var sq = [Double](repeating: 0, count: n), sm = sq, nz = sq
        var proj = [Double](repeating: 0, count: n * k), mag = proj
        for i in 0 ..< n {
            var e = 0.0, a = 0.0, b = 0.0, norm2 = 0.0
            for t in 0 ..< d {
                let c = Double(x[i * ldx + t]) - Double(mean?[t] ?? 0)
                norm2 += c * c
            }
            for j in 0 ..< k {
                var p = 0.0, m = 0.0
                for t in 0 ..< d {
                    let c = Double(x[i * ldx + t]) - Double(mean?[t] ?? 0)
                    p += c * Double(basis[j * d + t]); m += abs(c * Double(basis[j * d + t]))
                }
                proj[i * k + j] = p; mag[i * k + j] = m
                let w = Double(weights?[j] ?? 1)
                a += w * p * p; b += w * p; e += p * p
            }
            sq[i] = a / Double(k); sm[i] = b / Double(k); nz[i] = norm2 > 0 ? e / norm2 : 0
        }
        return (sq, sm, nz, proj, mag)
    }
}
