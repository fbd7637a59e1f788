import Foundation

/// SAFT / HaloScope projection scores of rows x_i (n x d) against a mean μ and an orthonormal
/// basis v_1..v_k (k x d, row j = v_j), with weights w_j (1 for SAFT, sigma_j for HaloScope):
///
///   p_ij        = <x_i - μ, v_j>
///   squared_i   = (1/k) Σ_j w_j p_ij²                (SAFT score, METHODS.md §2.3 step 5)
///   signedMean_i = (1/k) Σ_j w_j p_ij                (HaloScope released code, before abs)
///   normalized_i = Σ_j p_ij² / ||x_i - μ||²          (fraction of the centred energy in span V; 0 when x_i = μ)
///
/// One pass over X: `RowDots.computeDirect` takes pairs of rows against groups of basis vectors
/// (12 with 32 vector registers, 6 with 16) with vectors along the d coordinates, centring in
/// registers (the basis, k·d floats, stays in L1/L2), then a cheap pass turns the n x k projections into scores (and re-reads a
/// row only for its norm when `normalized` is asked for). Each projection's summation order
/// depends only on d, so results are bitwise identical for any worker count.
/// Error: |p̂_ij - p_ij| <= (d / vLanes + log2(vLanes) + d mod vLanes + 2)·eps·Σ_t |x_it - μ_t|·|v_jt|
/// (per-lane sequential sums, a halving tree across lanes, then the tail), within (d + 2)·eps.
/// Cost: 2·n·d·k flops; 4·n·d bytes of X read (+ 4·k·d for V, 4·n per output).
public enum ProjectionScore {
    /// Computes the requested outputs (any of `squared`, `signedMean`, `normalized`, and the raw
    /// projections `projections`, n x k row-major); nil outputs are skipped. Overwrites outputs.
    /// `mean == nil` means μ = 0 (uncentred); `weights == nil` means w_j = 1.
    public static func score(x: UnsafePointer<Float>, rows n: Int, cols d: Int, ldx: Int,
                             mean: UnsafePointer<Float>?, basis: UnsafePointer<Float>, rank k: Int,
                             weights: UnsafePointer<Float>? = nil,
                             squared: UnsafeMutablePointer<Float>? = nil,
                             signedMean: UnsafeMutablePointer<Float>? = nil,
                             normalized: UnsafeMutablePointer<Float>? = nil,
                             projections: UnsafeMutablePointer<Float>? = nil,
                             workers: Int? = nil) {
        precondition(n >= 0 && d >= 1 && k >= 1 && ldx >= d, "ProjectionScore: bad shape n \(n) d \(d) k \(k) ldx \(ldx)")
        if n == 0 { return }
        var w = [Double](repeating: 1, count: k)
        if let weights { for j in 0 ..< k { w[j] = Double(weights[j]) } }
        let wantNorm = normalized != nil
        // Projections of every row first (n·k floats: 2 MB at n = 50000, k = 10), then the scores.
        let proj = projections ?? UnsafeMutablePointer<Float>.allocate(capacity: n * k)
        defer { if projections == nil { proj.deallocate() } }
        RowDots.computeDirect(x: x, rows: n, cols: d, ldx: ldx, mu: mean, basis: basis, count: k, out: proj, rs: k, cs: 1,
                              workers: workers)
        if squared == nil && signedMean == nil && normalized == nil { return }
        let zeros = mean == nil ? [Float](repeating: 0, count: d) : []
        zeros.withUnsafeBufferPointer { zb in
            w.withUnsafeBufferPointer { wb in
                let mu = mean ?? zb.baseAddress!, wp = wb.baseAddress!
                Parallel.run(workers: workers, maxUseful: wantNorm ? max(1, n / 64) : max(1, n / 4096)) { ith, nth in
                    for r in Parallel.range(ith, of: nth, count: n) {
                        let nr = wantNorm ? centredNorm1(x + r * ldx, mu, d) : 0
                        finish(row: r, proj + r * k, k, wp, nr, squared, signedMean, normalized)
                    }
                }
            }
        }
    }

    /// Array convenience: returns the SAFT squared scores.
    public static func squaredScores(_ x: [Float], rows n: Int, cols d: Int, mean: [Float], basis: [Float], rank k: Int,
                                     weights: [Float]? = nil, workers: Int? = nil) -> [Float] {
        precondition(x.count >= n * d && mean.count == d && basis.count >= k * d && (weights?.count ?? k) == k,
                     "ProjectionScore.squaredScores: array sizes do not match n \(n), d \(d), k \(k)")
        var out = [Float](repeating: 0, count: n)
        let wts = weights ?? [Float](repeating: 1, count: k)
        x.withUnsafeBufferPointer { xp in mean.withUnsafeBufferPointer { mp in basis.withUnsafeBufferPointer { bp in
            wts.withUnsafeBufferPointer { wp in out.withUnsafeMutableBufferPointer { op in
                score(x: xp.baseAddress!, rows: n, cols: d, ldx: d, mean: mp.baseAddress!, basis: bp.baseAddress!, rank: k,
                      weights: wp.baseAddress!, squared: op.baseAddress!, workers: workers)
            } }
        } } }
        return out
    }

    @inline(__always)
    static func finish(row r: Int, _ p: UnsafePointer<Float>, _ k: Int, _ w: UnsafePointer<Double>, _ norm2: Float,
                       _ squared: UnsafeMutablePointer<Float>?, _ signedMean: UnsafeMutablePointer<Float>?,
                       _ normalized: UnsafeMutablePointer<Float>?) {
        var sq = 0.0, sm = 0.0, e = 0.0
        for j in 0 ..< k {
            let v = Double(p[j])
            sq += w[j] * v * v; sm += w[j] * v; e += v * v
        }
        let invK = 1 / Double(k)
        squared?[r] = Float(sq * invK)
        signedMean?[r] = Float(sm * invK)
        normalized?[r] = norm2 > 0 ? Float(e / Double(norm2)) : 0
    }

    @inline(__always)
    static func centredNorms4(_ x: UnsafePointer<Float>, _ ldx: Int, _ mu: UnsafePointer<Float>, _ d: Int) -> SIMD4<Float> {
        SIMD4(centredNorm1(x, mu, d), centredNorm1(x + ldx, mu, d), centredNorm1(x + 2 * ldx, mu, d), centredNorm1(x + 3 * ldx, mu, d))
    }

    @inline(__always)
    static func centredNorm1(_ x: UnsafePointer<Float>, _ mu: UnsafePointer<Float>, _ d: Int) -> Float {
        var a = VFloat(), b = VFloat()
        let dv = d / vLanes * vLanes
        var i = 0
        while i + vLanes < dv {
            let c = vload(x, i) - vload(mu, i), e = vload(x, i + vLanes) - vload(mu, i + vLanes)
            fmadd(&a, c, c); fmadd(&b, e, e)
            i += 2 * vLanes
        }
        while i < dv { let c = vload(x, i) - vload(mu, i); fmadd(&a, c, c); i += vLanes }
        var s = (a + b).sum()
        while i < d { let c = x[i] - mu[i]; s += c * c; i += 1 }
        return s
    }
}
