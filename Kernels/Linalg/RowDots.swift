import Foundation

/// Dot products of rows x_i (centred on μ on the fly) with a few basis rows b_j, streaming X once:
/// the fused kernel behind the randomized SVD's X·Mᵀ products and the projection scores.
///
/// Register tiles: 2 rows x 12 basis vectors (24 accumulators; x - μ loaded once per element)
/// when m >= 9, else 4 rows x 4 basis vectors (16 accumulators); the basis (m·d floats) stays in
/// L1/L2 while X streams.
/// Every (row, basis) dot product runs the same operation sequence in `dot4x4` and `dot1x4`
/// (one accumulator, lanes reduced by `hsum`, then a scalar tail), so the result does not depend
/// on how rows are grouped or split across workers.
package enum RowDots {
    /// out[i·rs + j·cs] = <x_i - μ, b_j> for i < n, j < m. `mu == nil` means μ = 0. Overwrites out.
    /// Parallel over groups of 4 rows; bitwise identical for any `workers`.
    /// Cost: 2·n·d·ceil(m/4)·4 flops, 4·n·d bytes of X read once.
    package static func compute(x: UnsafePointer<Float>, rows n: Int, cols d: Int, ldx: Int, mu: UnsafePointer<Float>?,
                                basis b: UnsafePointer<Float>, count m: Int, out: UnsafeMutablePointer<Float>,
                                rs: Int, cs: Int, workers: Int?) {
        precondition(n >= 0 && d >= 1 && m >= 1 && ldx >= d, "RowDots: bad shape")
        if n == 0 { return }
        let gw = groupWidth(m)
        let mPad = (m + gw - 1) / gw * gw
        Workspace.withScratch(floats: mPad * d + d + 4 * mPad + 64) { scratch in
            let vb = scratch, mz = scratch + mPad * d
            vb.update(from: b, count: m * d)
            (vb + m * d).update(repeating: 0, count: (mPad - m) * d)
            if let mu { mz.update(from: mu, count: d) } else { mz.update(repeating: 0, count: d) }
            let groups = n / 4
            let bits = (UInt(bitPattern: vb), UInt(bitPattern: mz))
            Parallel.run(workers: workers, maxUseful: max(1, n / 64)) { ith, nth in
                let vb = UnsafePointer<Float>(bitPattern: bits.0)!, mz = UnsafePointer<Float>(bitPattern: bits.1)!
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * mPad) { tmpb in
                    let tmp = tmpb.baseAddress!
                    for g in Parallel.range(ith, of: nth, count: groups) {
                        let r0 = g * 4
                        let full = mPad == m
                        for j in stride(from: 0, to: mPad, by: gw) {
                            if full && j + gw <= m {
                                dot4xG(gw, x + r0 * ldx, ldx, mz, vb + j * d, d, out: out + r0 * rs + j * cs, rs: rs, cs: cs)
                            } else {
                                dot4xG(gw, x + r0 * ldx, ldx, mz, vb + j * d, d, out: tmp + j, rs: mPad, cs: 1)
                                for t in 0 ..< 4 { for jj in j ..< min(m, j + gw) { out[(r0 + t) * rs + jj * cs] = tmp[t * mPad + jj] } }
                            }
                        }
                    }
                    if ith == nth - 1 {
                        for r in groups * 4 ..< n {
                            for j in stride(from: 0, to: mPad, by: gw) {
                                dot1xG(gw, x + r * ldx, mz, vb + j * d, d, out: tmp + j, cs: 1)
                            }
                            for jj in 0 ..< m { out[r * rs + jj * cs] = tmp[jj] }
                        }
                    }
                }
            }
        }
    }

    /// out[t·rs + j·cs] = <x_t - μ, v_j> for rows t < 4 and basis rows j < 4 (v_j at v + j·d).
    @inline(__always)
    static func dot4x4(_ x: UnsafePointer<Float>, _ ldx: Int, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ d: Int,
                       out: UnsafeMutablePointer<Float>, rs: Int, cs: Int) {
        let x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx
        let v0 = v, v1 = v + d, v2 = v + 2 * d, v3 = v + 3 * d
        var a00 = VFloat(), a01 = VFloat(), a02 = VFloat(), a03 = VFloat()
        var a10 = VFloat(), a11 = VFloat(), a12 = VFloat(), a13 = VFloat()
        var a20 = VFloat(), a21 = VFloat(), a22 = VFloat(), a23 = VFloat()
        var a30 = VFloat(), a31 = VFloat(), a32 = VFloat(), a33 = VFloat()
        let dv = d / vLanes * vLanes
        var i = 0
        while i < dv {
            let m = vload(mu, i)
            let c0 = vload(x0, i) - m, c1 = vload(x1, i) - m, c2 = vload(x2, i) - m, c3 = vload(x3, i) - m
            let b0 = vload(v0, i)
            fmadd(&a00, c0, b0); fmadd(&a10, c1, b0); fmadd(&a20, c2, b0); fmadd(&a30, c3, b0)
            let b1 = vload(v1, i)
            fmadd(&a01, c0, b1); fmadd(&a11, c1, b1); fmadd(&a21, c2, b1); fmadd(&a31, c3, b1)
            let b2 = vload(v2, i)
            fmadd(&a02, c0, b2); fmadd(&a12, c1, b2); fmadd(&a22, c2, b2); fmadd(&a32, c3, b2)
            let b3 = vload(v3, i)
            fmadd(&a03, c0, b3); fmadd(&a13, c1, b3); fmadd(&a23, c2, b3); fmadd(&a33, c3, b3)
            i += vLanes
        }
        store4(x0, mu, v, d, dv, a00, a01, a02, a03, out, cs)
        store4(x1, mu, v, d, dv, a10, a11, a12, a13, out + rs, cs)
        store4(x2, mu, v, d, dv, a20, a21, a22, a23, out + 2 * rs, cs)
        store4(x3, mu, v, d, dv, a30, a31, a32, a33, out + 3 * rs, cs)
    }

    /// out[j] = hsum(a_j) + scalar tail of <x - μ, v_j> for j < 4 (v_j at v + j·d).
    @inline(__always)
    static func store4(_ x: UnsafePointer<Float>, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ d: Int, _ dv: Int,
                       _ a0: VFloat, _ a1: VFloat, _ a2: VFloat, _ a3: VFloat, _ out: UnsafeMutablePointer<Float>, _ cs: Int) {
        out[0] = tail(x, mu, v, dv, d, hsum(a0))
        out[cs] = tail(x, mu, v + d, dv, d, hsum(a1))
        out[2 * cs] = tail(x, mu, v + 2 * d, dv, d, hsum(a2))
        out[3 * cs] = tail(x, mu, v + 3 * d, dv, d, hsum(a3))
    }

    /// The 1-row twin of `dot4x4`, with the identical operation sequence per dot product.
    @inline(__always)
    static func dot1x4(_ x: UnsafePointer<Float>, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ d: Int,
                       out: UnsafeMutablePointer<Float>, cs: Int) {
        let v0 = v, v1 = v + d, v2 = v + 2 * d, v3 = v + 3 * d
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat()
        let dv = d / vLanes * vLanes
        var i = 0
        while i < dv {
            let c = vload(x, i) - vload(mu, i)
            fmadd(&a0, c, vload(v0, i)); fmadd(&a1, c, vload(v1, i)); fmadd(&a2, c, vload(v2, i)); fmadd(&a3, c, vload(v3, i))
            i += vLanes
        }
        store4(x, mu, v, d, dv, a0, a1, a2, a3, out, cs)
    }

    /// Basis vectors per kernel call: 12 when there are at least 9 (2 rows x 12 = 24 accumulators,
    /// each x element loaded once), else 4 (4 rows x 4).
    @inline(__always)
    package static func groupWidth(_ m: Int) -> Int { m >= 9 ? 12 : 4 }

    /// Dot products of 4 consecutive rows with `g` (4 or 12) basis rows: out[t·rs + j·cs].
    @inline(__always)
    package static func dot4xG(_ g: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                               _ d: Int, out: UnsafeMutablePointer<Float>, rs: Int, cs: Int) {
        if g == 12 {
            dot2x12(x, ldx, mu, v, d, out: out, rs: rs, cs: cs)
            dot2x12(x + 2 * ldx, ldx, mu, v, d, out: out + 2 * rs, rs: rs, cs: cs)
        } else {
            dot4x4(x, ldx, mu, v, d, out: out, rs: rs, cs: cs)
        }
    }

    /// One row against `g` basis rows: out[j·cs].
    @inline(__always)
    package static func dot1xG(_ g: Int, _ x: UnsafePointer<Float>, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ d: Int,
                               out: UnsafeMutablePointer<Float>, cs: Int) {
        if g == 12 {
            dot1x12(x, mu, v, d, out: out, cs: cs)
        } else {
            dot1x4(x, mu, v, d, out: out, cs: cs)
        }
    }

    /// 2 rows x 12 basis vectors: 24 accumulators; x - μ loaded once per element.
    @inline(__always)
    static func dot2x12(_ x: UnsafePointer<Float>, _ ldx: Int, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ d: Int,
                        out: UnsafeMutablePointer<Float>, rs: Int, cs: Int) {
        let x0 = x, x1 = x + ldx
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat(), a4 = VFloat(), a5 = VFloat()
        var a6 = VFloat(), a7 = VFloat(), a8 = VFloat(), a9 = VFloat(), a10 = VFloat(), a11 = VFloat()
        var b0 = VFloat(), b1 = VFloat(), b2 = VFloat(), b3 = VFloat(), b4 = VFloat(), b5 = VFloat()
        var b6 = VFloat(), b7 = VFloat(), b8 = VFloat(), b9 = VFloat(), b10 = VFloat(), b11 = VFloat()
        let dv = d / vLanes * vLanes
        var i = 0
        while i < dv {
            let m = vload(mu, i)
            let c0 = vload(x0, i) - m, c1 = vload(x1, i) - m
            var w = vload(v, i); fmadd(&a0, c0, w); fmadd(&b0, c1, w)
            w = vload(v + d, i); fmadd(&a1, c0, w); fmadd(&b1, c1, w)
            w = vload(v + 2 * d, i); fmadd(&a2, c0, w); fmadd(&b2, c1, w)
            w = vload(v + 3 * d, i); fmadd(&a3, c0, w); fmadd(&b3, c1, w)
            w = vload(v + 4 * d, i); fmadd(&a4, c0, w); fmadd(&b4, c1, w)
            w = vload(v + 5 * d, i); fmadd(&a5, c0, w); fmadd(&b5, c1, w)
            w = vload(v + 6 * d, i); fmadd(&a6, c0, w); fmadd(&b6, c1, w)
            w = vload(v + 7 * d, i); fmadd(&a7, c0, w); fmadd(&b7, c1, w)
            w = vload(v + 8 * d, i); fmadd(&a8, c0, w); fmadd(&b8, c1, w)
            w = vload(v + 9 * d, i); fmadd(&a9, c0, w); fmadd(&b9, c1, w)
            w = vload(v + 10 * d, i); fmadd(&a10, c0, w); fmadd(&b10, c1, w)
            w = vload(v + 11 * d, i); fmadd(&a11, c0, w); fmadd(&b11, c1, w)
            i += vLanes
        }
        store4(x0, mu, v, d, dv, a0, a1, a2, a3, out, cs)
        store4(x0, mu, v + 4 * d, d, dv, a4, a5, a6, a7, out + 4 * cs, cs)
        store4(x0, mu, v + 8 * d, d, dv, a8, a9, a10, a11, out + 8 * cs, cs)
        store4(x1, mu, v, d, dv, b0, b1, b2, b3, out + rs, cs)
        store4(x1, mu, v + 4 * d, d, dv, b4, b5, b6, b7, out + rs + 4 * cs, cs)
        store4(x1, mu, v + 8 * d, d, dv, b8, b9, b10, b11, out + rs + 8 * cs, cs)
    }

    /// The 1-row twin of `dot2x12` (identical operation sequence per dot product).
    @inline(__always)
    static func dot1x12(_ x: UnsafePointer<Float>, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ d: Int,
                        out: UnsafeMutablePointer<Float>, cs: Int) {
        var a0 = VFloat(), a1 = VFloat(), a2 = VFloat(), a3 = VFloat(), a4 = VFloat(), a5 = VFloat()
        var a6 = VFloat(), a7 = VFloat(), a8 = VFloat(), a9 = VFloat(), a10 = VFloat(), a11 = VFloat()
        let dv = d / vLanes * vLanes
        var i = 0
        while i < dv {
            let c0 = vload(x, i) - vload(mu, i)
            fmadd(&a0, c0, vload(v, i)); fmadd(&a1, c0, vload(v + d, i)); fmadd(&a2, c0, vload(v + 2 * d, i))
            fmadd(&a3, c0, vload(v + 3 * d, i)); fmadd(&a4, c0, vload(v + 4 * d, i)); fmadd(&a5, c0, vload(v + 5 * d, i))
            fmadd(&a6, c0, vload(v + 6 * d, i)); fmadd(&a7, c0, vload(v + 7 * d, i)); fmadd(&a8, c0, vload(v + 8 * d, i))
            fmadd(&a9, c0, vload(v + 9 * d, i)); fmadd(&a10, c0, vload(v + 10 * d, i)); fmadd(&a11, c0, vload(v + 11 * d, i))
            i += vLanes
        }
        store4(x, mu, v, d, dv, a0, a1, a2, a3, out, cs)
        store4(x, mu, v + 4 * d, d, dv, a4, a5, a6, a7, out + 4 * cs, cs)
        store4(x, mu, v + 8 * d, d, dv, a8, a9, a10, a11, out + 8 * cs, cs)
    }

    /// Lane reduction by halves (a fixed order, so every kernel reduces identically).
    @inline(__always)
    static func hsum(_ a: SIMD16<Float>) -> Float { hsum(a.lowHalf + a.highHalf) }
    @inline(__always)
    static func hsum(_ a: SIMD8<Float>) -> Float { hsum(a.lowHalf + a.highHalf) }
    @inline(__always)
    static func hsum(_ a: SIMD4<Float>) -> Float { let b = a.lowHalf + a.highHalf; return b[0] + b[1] }

    @inline(__always)
    static func tail(_ x: UnsafePointer<Float>, _ mu: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ from: Int, _ d: Int,
                     _ start: Float) -> Float {
        var s = start
        var i = from
        while i < d { s += (x[i] - mu[i]) * v[i]; i += 1 }
        return s
    }

}
