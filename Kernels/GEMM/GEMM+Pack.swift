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
            for p in 0 ..< kc {
                let src = a + (p0 + p) * lda + i0, d = dst + p * MR
                for i in 0 ..< mr { d[i] = src[i] }
                for i in mr ..< MR { d[i] = 0 }
            }
        } else {
            // op(A)[i, p] = A[i, p]: read each row contiguously, write with stride MR.
            for i in 0 ..< mr {
                let src = a + (i0 + i) * lda + p0
                var d = dst + i
                for p in 0 ..< kc { d.pointee = src[p]; d += MR }
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
            // op(B)[p, j] = B[j, p]: read each row of B contiguously, write with stride NR.
            for j in 0 ..< nr {
                let src = b + (j0 + j) * ldb + p0
                var d = dst + j
                for p in 0 ..< kc { d.pointee = src[p]; d += NR }
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
}
