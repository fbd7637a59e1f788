/// The BLIS macro-loops: B blocks (NC x KC) shared from L3, A panels packed for a band of rows,
/// and parallel tiles of C (MC rows x a run of B panels that fits L2) running the micro-kernel.
/// With `transC` the product is stored transposed into C (see `sgemm`'s narrow-output path).
extension GEMM {
    /// Rows of A packed at once per depth block; bounds the A workspace to MS x KC floats.
    static let rowBand = 8192

    static func packed(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                       a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                       beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, transC: Bool, workers: Int?) {
        let MR = Tiling.MR, NR = Tiling.NR, KC = Tiling.KC, MC = Tiling.MC, NC = Tiling.NC
        let nth = Parallel.resolve(workers)
        let ncMax = min(n, NC), kcMax = min(k, KC), msMax = min(m, rowBand)
        let bFloats = (ncMax + NR - 1) / NR * NR * kcMax
        let aFloats = (msMax + MR - 1) / MR * MR * kcMax
        Workspace.withScratch(floats: bFloats + aFloats + 64) { scratch in
            let bPack = scratch, aPack = scratch + (bFloats + 15) / 16 * 16
            var jc = 0
            while jc < n {
                let nc = min(NC, n - jc)
                let nPanels = (nc + NR - 1) / NR
                var pc = 0
                while pc < k {
                    let kc = min(KC, k - pc)
                    let betaBlock: Float = pc == 0 ? beta : 1
                    var ms = 0
                    while ms < m {
                        let mband = min(rowBand, m - ms)
                        let mPanels = (mband + MR - 1) / MR
                        let bTasks = ms == 0 ? nPanels : 0
                        // Phase 1: pack this block's B panels (once per depth block) and A panels.
                        Parallel.forEach(bTasks + mPanels, workers: nth) { t in
                            if t < bTasks {
                                let j0 = t * NR
                                packB(transB: transB, b: b, ldb: ldb, j0: jc + j0, nr: min(NR, nc - j0),
                                      p0: pc, kc: kc, into: bPack + t * NR * kc)
                            } else {
                                let i0 = (t - bTasks) * MR
                                packA(transA: transA, a: a, lda: lda, i0: ms + i0, mr: min(MR, mband - i0),
                                      p0: pc, kc: kc, into: aPack + (t - bTasks) * MR * kc)
                            }
                        }
                        // Phase 2: tiles of C: a run of B panels sized to stay in L2, times MC rows.
                        // Within a tile each A micro-panel stays in L1 while the B panels stream from L2.
                        // Equal-sized tiles (rows and panels spread evenly over as many blocks as the
                        // MC / L2 limits need): fewer, equal tasks when both workers run at full speed.
                        let rowBlocks = (mband + MC - 1) / MC
                        let mcEven = ((mband + rowBlocks - 1) / rowBlocks + MR - 1) / MR * MR
                        let chunkLimit = max(1, Tiling.l2Floats / (kc * NR))
                        let colChunks = (nPanels + chunkLimit - 1) / chunkLimit
                        let chunkPanels = (nPanels + colChunks - 1) / colChunks
                        Parallel.forEach(rowBlocks * colChunks, workers: nth) { t in
                            let cb = t / rowBlocks, rb = t % rowBlocks
                            let i0 = rb * mcEven, mc = max(0, min(mcEven, mband - i0))
                            let p0 = cb * chunkPanels, p1 = min(nPanels, p0 + chunkPanels)
                            var ir = 0
                            while ir < mc {
                                let mr = min(MR, mc - ir)
                                let row = ms + i0 + ir
                                let ap = UnsafePointer(aPack + (i0 + ir) / MR * MR * kc)
                                for jp in p0 ..< p1 {
                                    let j0 = jp * NR
                                    let col = jc + j0
                                    micro(kc: kc, a: ap, b: UnsafePointer(bPack + jp * NR * kc),
                                          c: transC ? c + col * ldc + row : c + row * ldc + col, ldc: ldc,
                                          alpha: alpha, beta: betaBlock, mr: mr, nr: min(NR, nc - j0), transC: transC)
                                }
                                ir += MR
                            }
                        }
                        ms += mband
                    }
                    pc += kc
                }
                jc += nc
            }
        }
    }
}
