import Foundation

/// SAFT / HaloScope projection scores of rows x_i (n x d) against a mean μ and an orthonormal
/// basis v_1..v_k (k x d, row j = v_j), with weights w_j (1 for SAFT, sigma_j for HaloScope):
///
///   p_ij        = <x_i - μ, v_j>
///   squared_i   = (1/k) Σ_j w_j p_ij²                (SAFT score, METHODS.md §2.3 step 5)
///   signedMean_i = (1/k) Σ_j w_j p_ij                (HaloScope released code, before abs)
///   normalized_i = Σ_j p_ij² / ||x_i - μ||²          (fraction of the centred energy in span V; 0 when x_i = μ)
///
/// One fused, bandwidth-bound pass: X is read from memory once; rows are centred on the fly and
/// multiplied against the basis by the `RowDots` tiles (2 rows x 12 basis vectors for k >= 9,
/// else 4 x 4; the basis, k·d floats, stays in L1/L2). Rows are split across workers in groups of 4 from
/// row 0, and every (row, basis vector) dot product runs the same operation sequence in the
/// 4-row and the 1-row kernel, so results are bitwise identical for any worker count.
/// Error: |p̂_ij - p_ij| <= (d/vLanes + vLanes + 1)·eps·Σ_t |x_it - μ_t|·|v_jt| (Float dot product).
/// Cost: 2·n·d·kPad flops (k rounded up to the tile width); 4·n·d bytes of X read (+ 4·k·d for V, 4·n per output).
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
        let gw = RowDots.groupWidth(k)
        let kPad = (k + gw - 1) / gw * gw
        var w = [Double](repeating: 1, count: k)
        if let weights { for j in 0 ..< k { w[j] = Double(weights[j]) } }
        let wantNorm = normalized != nil
        Workspace.withScratch(floats: kPad * d + d + 64) { scratch in
            // Basis padded with zero rows to a multiple of 4; the mean (or zeros).
            let vb = scratch, mu = scratch + kPad * d
            vb.update(from: basis, count: k * d)
            (vb + k * d).update(repeating: 0, count: (kPad - k) * d)
            if let mean { mu.update(from: mean, count: d) } else { mu.update(repeating: 0, count: d) }
            let groups = n / 4
            let sendable = (UInt(bitPattern: vb), UInt(bitPattern: mu))
            w.withUnsafeBufferPointer { wb in
                let wp = wb.baseAddress!
                Parallel.run(workers: workers, maxUseful: max(1, n / 64)) { ith, nth in
                    let vb = UnsafePointer<Float>(bitPattern: sendable.0)!, mu = UnsafePointer<Float>(bitPattern: sendable.1)!
                    var p = [Float](repeating: 0, count: 4 * kPad)
                    var norms = SIMD4<Float>()
                    p.withUnsafeMutableBufferPointer { pb in
                        let pp = pb.baseAddress!
                        let range = Parallel.range(ith, of: nth, count: groups)
                        for g in range {
                            let r0 = g * 4
                            let xr = x + r0 * ldx
                            for b in stride(from: 0, to: kPad, by: gw) {
                                RowDots.dot4xG(gw, xr, ldx, mu, vb + b * d, d, out: pp + b, rs: kPad, cs: 1)
                            }
                            if wantNorm { norms = centredNorms4(xr, ldx, mu, d) }
                            for t in 0 ..< 4 {
                                finish(row: r0 + t, pp + t * kPad, k, wp, norms[t], squared, signedMean, normalized, projections)
                            }
                        }
                        // The last n % 4 rows belong to the last worker.
                        if ith == nth - 1 {
                            for r in groups * 4 ..< n {
                                let xr = x + r * ldx
                                for b in stride(from: 0, to: kPad, by: gw) {
                                    RowDots.dot1xG(gw, xr, mu, vb + b * d, d, out: pp + b, cs: 1)
                                }
                                let nr = wantNorm ? centredNorm1(xr, mu, d) : 0
                                finish(row: r, pp, k, wp, nr, squared, signedMean, normalized, projections)
                            }
                        }
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
                       _ normalized: UnsafeMutablePointer<Float>?, _ projections: UnsafeMutablePointer<Float>?) {
        var sq = 0.0, sm = 0.0, e = 0.0
        for j in 0 ..< k {
            let v = Double(p[j])
            sq += w[j] * v * v; sm += w[j] * v; e += v * v
        }
        let invK = 1 / Double(k)
        squared?[r] = Float(sq * invK)
        signedMean?[r] = Float(sm * invK)
        normalized?[r] = norm2 > 0 ? Float(e / Double(norm2)) : 0
        if let projections { (projections + r * k).update(from: p, count: k) }
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
