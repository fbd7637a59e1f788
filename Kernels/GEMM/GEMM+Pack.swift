/// Packing of op(A) and op(B) into the micro-kernel's panel layouts, zero-padded at the edges.
///
///   A micro-panel (MR rows):    [kc][MR]  element (i, p) at p * MR + i
///   B micro-panel (NR columns): [kc][NR]  element (p, j) at p * NR + j
extension GEMM {
    /// Packs rows i0 ..< i0 + mr and depth p0 ..< p0 + kc of op(A) into one MR-row micro-panel.
    @inline(__always)
    static func packA(transA: Bool, a: UnsafePointer<Float>, lda: Int, i0: Int, mr: Int,
                      p0: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
        let MR = Tiling.MR
        if transA {
            // op(A)[i, p] = A[p, i]: each depth step is a contiguous run of mr floats.
            if mr == MR {
                for p in 0 ..< kc { copyRun(a + (p0 + p) * lda + i0, dst + p * MR, MR) }
            } else {
                for p in 0 ..< kc {
                    let src = a + (p0 + p) * lda + i0, d = dst + p * MR
                    for i in 0 ..< mr { d[i] = src[i] }
                    for i in mr ..< MR { d[i] = 0 }
                }
            }
        } else {
            // op(A)[i, p] = A[i, p]: a transpose, by register blocks of vLanes depth steps
            // (Transpose.swift). A full-vector store spills vLanes - MR floats into the next
            // depth step's slots, which the next store overwrites; the panel's last step is
            // stored exactly, since the floats after it belong to another panel.
            var pb = 0
            if MR <= vLanes {
                while pb + vLanes <= kc {
                    Transpose.native(a + i0 * lda + p0 + pb, lds: lda, rows: mr) { p, v in
                        let d = dst + (pb + p) * MR
                        if pb + p + 1 < kc { vstore(v, d, 0) } else { for i in 0 ..< MR { d[i] = v[i] } }
                    }
                    pb += vLanes
                }
            }
            for p in pb ..< kc {
                let d = dst + p * MR
                for i in 0 ..< mr { d[i] = a[(i0 + i) * lda + p0 + p] }
            }
            if mr < MR {
                for p in 0 ..< kc { for i in mr ..< MR { dst[p * MR + i] = 0 } }
            }
        }
    }

    /// Packs columns j0 ..< j0 + nr and depth p0 ..< p0 + kc of op(B) into one NR-column micro-panel.
    @inline(__always)
    static func packB(transB: Bool, b: UnsafePointer<Float>, ldb: Int, j0: Int, nr: Int,
                      p0: Int, kc: Int, into dst: UnsafeMutablePointer<Float>) {
        let NR = Tiling.NR
        if transB {
            // op(B)[p, j] = B[j, p]: a transpose, by register blocks (Transpose.swift); the
            // depth steps left over are copied a row of the panel at a time.
            var pb = 0
            while pb + vLanes <= kc {
                var jb = 0
                while jb < nr {
                    Transpose.native(b + (j0 + jb) * ldb + p0 + pb, lds: ldb, rows: min(vLanes, nr - jb)) { p, v in
                        vstore(v, dst + (pb + p) * NR + jb, 0)
                    }
                    jb += vLanes
                }
                pb += vLanes
            }
            for p in pb ..< kc {
                let d = dst + p * NR
                for j in 0 ..< nr { d[j] = b[(j0 + j) * ldb + p0 + p] }
            }
            if nr < NR {
                for p in 0 ..< kc { for j in nr ..< NR { dst[p * NR + j] = 0 } }
            }
        } else if nr == NR {
            for p in 0 ..< kc {
                let src = b + (p0 + p) * ldb + j0, d = dst + p * NR
                vstore(vload(src, 0), d, 0)
                vstore(vload(src, vLanes), d, vLanes)
            }
        } else {
            for p in 0 ..< kc {
                let src = b + (p0 + p) * ldb + j0, d = dst + p * NR
                for j in 0 ..< nr { d[j] = src[j] }
                for j in nr ..< NR { d[j] = 0 }
            }
        }
    }

    /// Copies `count` floats with the widest vectors that fit (a row of a micro-panel: 12 or 6).
    @inline(__always)
    static func copyRun(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        var i = 0
        while i + 8 <= count {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            i += 8
        }
        if i + 4 <= count {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
            i += 4
        }
        while i < count { dst[i] = src[i]; i += 1 }
    }
}
