import Foundation

/// The direct form of `RowDots` for a few basis vectors (projection scores, randomized SVD products),
/// where broadcast tiles (basis vectors across the lanes, x broadcast) would pad k to whole vectors
/// (k = 10 uses 16 lanes, a third of the FMAs wasted). Here vectors run along the d coordinates of a
/// row: a register tile is 2 rows x K basis vectors (K <= 12, a compile-time constant per call site, so
/// exactly 2K accumulators and no padding work), the basis packed chunk-interleaved so that one
/// pointer with constant offsets reaches all K chunks (no register pressure from K pointers),
/// centring in registers (x - μ, one subtraction per element). Each row is read once.
/// The lanes are summed at the end of a row (a halving tree, then the tail coordinates in order),
/// so each result depends only on its own row and basis vector: bitwise identical for any row
/// grouping or worker count.
/// Error: |p̂ - p| <= (d / vLanes + log2(vLanes) + (d mod vLanes) + 2)·eps·Σ_t |x_t - μ_t|·|b_t|.
extension RowDots {
    /// Basis vectors per pass over a pair of rows: 2 x 12 accumulators of the 32 vector registers
    /// of AVX-512 and arm64, 2 x 6 of the 16 of AVX2 and SSE builds (a larger group would spill).
    #if KERNELS_AVX512 || arch(arm64)
    package static let directGroup = 12
    #else
    package static let directGroup = 6
    #endif

    /// out[i·rs + j·cs] = <x_i - μ, b_j> for i < n, j < m, as `compute`, by the direct form (basis
    /// vectors in groups of `directGroup`, all groups of a pair of rows back to back).
    package static func computeDirect(x: UnsafePointer<Float>, rows n: Int, cols d: Int, ldx: Int, mu: UnsafePointer<Float>?,
                                      basis b: UnsafePointer<Float>, count m: Int, out: UnsafeMutablePointer<Float>,
                                      rs: Int, cs: Int, workers: Int?) {
        precondition(n >= 0 && d >= 1 && m >= 1 && ldx >= d, "RowDots.computeDirect: bad shape")
        if n == 0 { return }
        let chunks = d / vLanes
        let zeros = mu == nil ? [Float](repeating: 0, count: d) : []
        Workspace.withScratch(floats: max(1, chunks * m * vLanes)) { packed in
            // Groups of up to `directGroup` basis vectors; group (j0, g) at packed + chunks·j0·vLanes holds
            // [(c·g + j)·vLanes + l] = b[(j0 + j)·d + c·vLanes + l].
            var j0 = 0
            while j0 < m {
                let g = min(directGroup, m - j0), dst = packed + chunks * j0 * vLanes
                for c in 0 ..< chunks {
                    for j in 0 ..< g { vstore(vload(b + (j0 + j) * d, c * vLanes), dst + (c * g + j) * vLanes, 0) }
                }
                j0 += g
            }
            zeros.withUnsafeBufferPointer { zb in
                let mu = mu ?? zb.baseAddress!
                let pairs = (n + 1) / 2
                let pk = UnsafePointer(packed)
                Parallel.run(workers: workers, maxUseful: max(1, n * d * m / (1 << 16))) { ith, nth in
                    for p in Parallel.range(ith, of: nth, count: pairs) {
                        // Every group while the pair's rows are still in L1/L2.
                        var j0 = 0
                        while j0 < m {
                            let g = min(directGroup, m - j0)
                            pairGroup(p, g, x, ldx, n, mu, pk + chunks * j0 * vLanes, b + j0 * d, d, out + j0 * cs, rs, cs)
                            j0 += g
                        }
                    }
                }
            }
        }
    }

    /// `pair12` for a run-time group size (a switch to the specialisations).
    @inline(__always)
    static func pairGroup(_ p: Int, _ g: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ n: Int, _ mu: UnsafePointer<Float>,
                          _ packed: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: Int,
                          _ out: UnsafeMutablePointer<Float>, _ rs: Int, _ cs: Int) {
        switch g {
        case 1: pair12(p, BasisCount1.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 2: pair12(p, BasisCount2.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 3: pair12(p, BasisCount3.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 4: pair12(p, BasisCount4.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 5: pair12(p, BasisCount5.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 6: pair12(p, BasisCount6.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 7: pair12(p, BasisCount7.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 8: pair12(p, BasisCount8.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 9: pair12(p, BasisCount9.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 10: pair12(p, BasisCount10.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 11: pair12(p, BasisCount11.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        case 12: pair12(p, BasisCount12.self, x, ldx, n, mu, packed, b, d, out, rs, cs)
        default: preconditionFailure("RowDots.pairGroup: group of \(g)")
        }
    }

    /// Rows 2p and 2p + 1 (the second when it exists) against K = C.value basis vectors. K is a
    /// type-level constant, so each specialisation has exactly K accumulator pairs and no
    /// `K > j` tests left (an Int argument was not reliably inlined and kept every branch).
    @inline(__always)
    static func pair12<C: BasisCount>(_ p: Int, _: C.Type, _ x: UnsafePointer<Float>, _ ldx: Int, _ n: Int, _ mu: UnsafePointer<Float>,
                        _ packed: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ d: Int,
                        _ out: UnsafeMutablePointer<Float>, _ rs: Int, _ cs: Int) {
        let K = C.value
        let r0 = 2 * p, two = r0 + 1 < n
        let x0 = x + r0 * ldx, x1 = two ? x0 + ldx : x0
        var p0 = VFloat(), q0 = VFloat()
        var p1 = VFloat(), q1 = VFloat()
        var p2 = VFloat(), q2 = VFloat()
        var p3 = VFloat(), q3 = VFloat()
        var p4 = VFloat(), q4 = VFloat()
        var p5 = VFloat(), q5 = VFloat()
        var p6 = VFloat(), q6 = VFloat()
        var p7 = VFloat(), q7 = VFloat()
        var p8 = VFloat(), q8 = VFloat()
        var p9 = VFloat(), q9 = VFloat()
        var p10 = VFloat(), q10 = VFloat()
        var p11 = VFloat(), q11 = VFloat()
        let dv = d / vLanes * vLanes
        var bp = packed
        var t = 0
        while t < dv {
            let m = vload(mu, t)
            let c0 = vload(x0, t) - m, c1 = vload(x1, t) - m
            if K > 0 { let v = vload(bp, 0 * vLanes); fmadd(&p0, c0, v); fmadd(&q0, c1, v) }
            if K > 1 { let v = vload(bp, 1 * vLanes); fmadd(&p1, c0, v); fmadd(&q1, c1, v) }
            if K > 2 { let v = vload(bp, 2 * vLanes); fmadd(&p2, c0, v); fmadd(&q2, c1, v) }
            if K > 3 { let v = vload(bp, 3 * vLanes); fmadd(&p3, c0, v); fmadd(&q3, c1, v) }
            if K > 4 { let v = vload(bp, 4 * vLanes); fmadd(&p4, c0, v); fmadd(&q4, c1, v) }
            if K > 5 { let v = vload(bp, 5 * vLanes); fmadd(&p5, c0, v); fmadd(&q5, c1, v) }
            if K > 6 { let v = vload(bp, 6 * vLanes); fmadd(&p6, c0, v); fmadd(&q6, c1, v) }
            if K > 7 { let v = vload(bp, 7 * vLanes); fmadd(&p7, c0, v); fmadd(&q7, c1, v) }
            if K > 8 { let v = vload(bp, 8 * vLanes); fmadd(&p8, c0, v); fmadd(&q8, c1, v) }
            if K > 9 { let v = vload(bp, 9 * vLanes); fmadd(&p9, c0, v); fmadd(&q9, c1, v) }
            if K > 10 { let v = vload(bp, 10 * vLanes); fmadd(&p10, c0, v); fmadd(&q10, c1, v) }
            if K > 11 { let v = vload(bp, 11 * vLanes); fmadd(&p11, c0, v); fmadd(&q11, c1, v) }
            bp += K * vLanes
            t += vLanes
        }
        @inline(__always) func finish(_ r: Int, _ j: Int, _ acc: VFloat, _ xr: UnsafePointer<Float>) {
            var s = horizontalSum(acc)
            let bj = b + j * d
            for u in dv ..< d { s += (xr[u] - mu[u]) * bj[u] }
            out[r * rs + j * cs] = s
        }

        if K > 0 { finish(r0, 0, p0, x0); if two { finish(r0 + 1, 0, q0, x1) } }
        if K > 1 { finish(r0, 1, p1, x0); if two { finish(r0 + 1, 1, q1, x1) } }
        if K > 2 { finish(r0, 2, p2, x0); if two { finish(r0 + 1, 2, q2, x1) } }
        if K > 3 { finish(r0, 3, p3, x0); if two { finish(r0 + 1, 3, q3, x1) } }
        if K > 4 { finish(r0, 4, p4, x0); if two { finish(r0 + 1, 4, q4, x1) } }
        if K > 5 { finish(r0, 5, p5, x0); if two { finish(r0 + 1, 5, q5, x1) } }
        if K > 6 { finish(r0, 6, p6, x0); if two { finish(r0 + 1, 6, q6, x1) } }
        if K > 7 { finish(r0, 7, p7, x0); if two { finish(r0 + 1, 7, q7, x1) } }
        if K > 8 { finish(r0, 8, p8, x0); if two { finish(r0 + 1, 8, q8, x1) } }
        if K > 9 { finish(r0, 9, p9, x0); if two { finish(r0 + 1, 9, q9, x1) } }
        if K > 10 { finish(r0, 10, p10, x0); if two { finish(r0 + 1, 10, q10, x1) } }
        if K > 11 { finish(r0, 11, p11, x0); if two { finish(r0 + 1, 11, q11, x1) } }
    }
}

/// A basis count known at compile time (a type per count, so that generic specialisation folds it).
package protocol BasisCount { static var value: Int { get } }
package enum BasisCount1: BasisCount { package static var value: Int { 1 } }
package enum BasisCount2: BasisCount { package static var value: Int { 2 } }
package enum BasisCount3: BasisCount { package static var value: Int { 3 } }
package enum BasisCount4: BasisCount { package static var value: Int { 4 } }
package enum BasisCount5: BasisCount { package static var value: Int { 5 } }
package enum BasisCount6: BasisCount { package static var value: Int { 6 } }
package enum BasisCount7: BasisCount { package static var value: Int { 7 } }
package enum BasisCount8: BasisCount { package static var value: Int { 8 } }
package enum BasisCount9: BasisCount { package static var value: Int { 9 } }
package enum BasisCount10: BasisCount { package static var value: Int { 10 } }
package enum BasisCount11: BasisCount { package static var value: Int { 11 } }
package enum BasisCount12: BasisCount { package static var value: Int { 12 } }
