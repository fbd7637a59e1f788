import Foundation

/// Cross-entropy of the output projection's logits, fused with that projection so the
/// (tokens x vocab) logit/probability matrix is never stored.
///
/// logits = hidden · weightᵀ, loss[t] = logsumexp(logits[t, :]) − logits[t, targets[t]].
/// The vocabulary is processed in chunks of `vocabChunk` columns (and tokens in blocks of
/// `tokenBlock` rows); each chunk of logits is one GEMM into a reused scratch tile, folded into
/// a running (max, sum) per token: the online log-sum-exp.
public enum CrossEntropy {
    /// Targets equal to this are ignored by default (PyTorch's convention).
    public static let defaultIgnoreIndex: Int32 = -100
    /// Vocabulary columns per logits chunk.
    package static let vocabChunk = 4096
    /// Token rows per block: the scratch tile is tokenBlock x vocabChunk floats (16 MiB).
    package static let tokenBlock = 1024

    /// Per-token losses and, optionally, the gradients of L = Σ_t w[t]·loss[t].
    ///
    /// Shapes: `hidden` is (tokens, channels) row-major; `weight` is (vocab, channels) row-major
    /// (the output projection / tied embedding as stored); `targets` is (tokens) Int32, each in
    /// 0..<vocab or equal to `ignoreIndex`; `tokenWeights` is (tokens) or nil (weight 1 for every
    /// counted token, i.e. a sum); `losses` is (tokens); `dhidden` is (tokens, channels);
    /// `dweight` is (vocab, channels).
    ///
    /// Contract: OVERWRITES `losses` (0 for ignored tokens). ACCUMULATES the gradient of
    /// L = Σ_t tokenWeights[t]·loss[t] into `dhidden` and `dweight` when they are non-nil.
    /// Ignored tokens are dropped before any GEMM: they cost nothing and contribute nothing.
    /// Calls the multithreaded GEMM itself, so it must not be called from a parallel region.
    /// Bitwise identical for any `workers` (GEMM and the per-row passes split independent outputs).
    ///
    /// Algorithm:
    ///   - without `dweight`: ONE pass over the vocabulary. Per chunk: Z = H·W_chunkᵀ (GEMM);
    ///     per row fold Z into the running shift m and sum S = Σ e^(z − m) (for losses only, a
    ///     chunk whose max is within `shiftSlack` of m is summed with m in a single read of Z;
    ///     otherwise m moves to the chunk max), rescaling the accumulator
    ///     A[t] *= e^(m_old − m_new), and (when `dhidden` is requested) A += e^(Z − m)·W_chunk
    ///     (GEMM). At the end dH[t] += w[t]·(A[t]/S[t] − W[target[t]]): softmax·W minus the
    ///     one-hot row, without a second pass (flash-attention's rescaling, with V = W).
    ///     Cost: 2·N·V·C FLOPs for the losses, 4·N·V·C with dhidden.
    ///   - with `dweight`: a first pass for log-sum-exp, then a second pass recomputes each
    ///     chunk, forms dZ = w·(softmax − onehot) in place and accumulates dH += dZ·W_chunk
    ///     and dW_chunk += dZᵀ·H (GEMMs). Cost: 8·N·V·C FLOPs.
    /// Scratch: (tokenBlock·vocabChunk + 2·tokenBlock·channels + 4·tokenBlock) floats.
    /// Accuracy: logits as GEMM; exponentials within `FastMath.expMaxRelativeError`.
    public static func forwardBackward(losses: UnsafeMutablePointer<Float>,
                                       dhidden: UnsafeMutablePointer<Float>?,
                                       dweight: UnsafeMutablePointer<Float>?,
                                       hidden: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       targets: UnsafePointer<Int32>, tokenWeights: UnsafePointer<Float>? = nil,
                                       tokens: Int, vocab: Int, channels: Int,
                                       ignoreIndex: Int32 = defaultIgnoreIndex, workers: Int? = nil) {
        forwardBackward(losses: losses, dhidden: dhidden, dweight: dweight, hidden: hidden, weight: weight,
                        targets: targets, tokenWeights: tokenWeights, tokens: tokens, vocab: vocab,
                        channels: channels, ignoreIndex: ignoreIndex, vocabChunk: vocabChunk,
                        tokenBlock: tokenBlock, workers: workers)
    }

    /// `forwardBackward` with explicit chunk sizes (tests use tiny ones to cross every boundary).
    package static func forwardBackward(losses: UnsafeMutablePointer<Float>,
                                        dhidden: UnsafeMutablePointer<Float>?,
                                        dweight: UnsafeMutablePointer<Float>?,
                                        hidden: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                        targets: UnsafePointer<Int32>, tokenWeights: UnsafePointer<Float>?,
                                        tokens: Int, vocab: Int, channels: Int, ignoreIndex: Int32,
                                        vocabChunk: Int, tokenBlock: Int, workers: Int?) {
        precondition(vocabChunk >= 1 && tokenBlock >= 1, "CrossEntropy: chunk sizes must be positive")
        precondition(tokens >= 0 && vocab >= 1 && channels >= 1,
                     "CrossEntropy: bad shape tokens=\(tokens) vocab=\(vocab) channels=\(channels)")
        let N = tokens, V = vocab, C = channels
        var valid = [Int]()
        valid.reserveCapacity(N)
        for t in 0 ..< N {
            let y = targets[t]
            if y == ignoreIndex { losses[t] = 0; continue }
            precondition(y >= 0 && Int(y) < V, "CrossEntropy: target \(y) of token \(t) outside 0..<\(V) (ignoreIndex \(ignoreIndex))")
            valid.append(t)
        }
        if valid.isEmpty { return }
        let contiguous = valid.count == N
        let NB = min(tokenBlock, valid.count), VC = min(vocabChunk, V)
        let scratchFloats = NB * VC + 2 * NB * C + 4 * NB
        Workspace.withScratch(floats: scratchFloats) { scratch in
            let z = scratch, acc = z + NB * VC, gathered = acc + NB * C
            let rowMax = gathered + NB * C, rowSum = rowMax + NB, rowTarget = rowSum + NB, rowW = rowTarget + NB
            var b0 = 0
            while b0 < valid.count {
                let nb = min(NB, valid.count - b0)
                // Rows of this block: H itself when nothing is ignored, else a gathered copy.
                let hb: UnsafePointer<Float>
                if contiguous {
                    hb = hidden + b0 * C
                } else {
                    for i in 0 ..< nb { (gathered + i * C).update(from: hidden + valid[b0 + i] * C, count: C) }
                    hb = UnsafePointer(gathered)
                }
                for i in 0 ..< nb {
                    let t = valid[b0 + i]
                    rowMax[i] = -.infinity; rowSum[i] = 0
                    rowW[i] = tokenWeights?[t] ?? 1
                }
                let onePassGradient = dhidden != nil && dweight == nil
                if onePassGradient { acc.update(repeating: 0, count: nb * C) }
                // Pass 1: online log-sum-exp over vocabulary chunks (and the rescaled A when one-pass).
                var v0 = 0
                while v0 < V {
                    let vc = min(VC, V - v0)
                    GEMM.sgemm(transA: false, transB: true, m: nb, n: vc, k: C, a: hb, lda: C,
                               b: weight + v0 * C, ldb: C, beta: 0, c: z, ldc: vc, workers: workers)
                    Parallel.run(workers: workers, maxUseful: max(1, nb * vc / 16384)) { ith, nth in
                        for i in Parallel.range(ith, of: nth, count: nb) {
                            let zr = z + i * vc
                            let y = Int(targets[valid[b0 + i]]) - v0
                            if y >= 0 && y < vc { rowTarget[i] = zr[y] }
                            // rowMax is the row's reference shift m and rowSum = Σ e^(z − m) so far.
                            let mOld = rowMax[i]
                            if !onePassGradient && mOld != -.infinity {
                                // Losses only: one pass with the old shift, unless this chunk's max lies
                                // more than `shiftSlack` above it (then redo it shifted by its own max).
                                let (s, chunkMax) = expSumMax(zr, vc, shift: mOld)
                                if chunkMax <= mOld + shiftSlack {
                                    rowSum[i] += s
                                } else {
                                    rowSum[i] = rowSum[i] * Foundation.exp(mOld - chunkMax) + expSum(zr, vc, shift: chunkMax, store: false)
                                    rowMax[i] = chunkMax
                                }
                                continue
                            }
                            let mNew = max(mOld, Softmax.rowMax(zr, vc))
                            let alpha: Float = mOld == -.infinity ? 0 : Foundation.exp(mOld - mNew)
                            let s = expSum(zr, vc, shift: mNew, store: onePassGradient)
                            rowSum[i] = rowSum[i] * alpha + s
                            rowMax[i] = mNew
                            if onePassGradient && alpha != 1 { scaleRow(acc + i * C, C, alpha) }
                        }
                    }
                    if onePassGradient {
                        GEMM.sgemm(transA: false, transB: false, m: nb, n: C, k: vc, a: z, lda: vc,
                                   b: weight + v0 * C, ldb: C, beta: 1, c: acc, ldc: C, workers: workers)
                    }
                    v0 += vc
                }
                // Losses; rowMax becomes the log-sum-exp.
                for i in 0 ..< nb {
                    let lse = rowMax[i] + Foundation.log(rowSum[i])
                    rowMax[i] = lse
                    losses[valid[b0 + i]] = lse - rowTarget[i]
                }
                if onePassGradient, let dh = dhidden {
                    // dH[t] += w·(A/S − W[target]).
                    Parallel.run(workers: workers, maxUseful: max(1, nb * C / 8192)) { ith, nth in
                        for i in Parallel.range(ith, of: nth, count: nb) {
                            let t = valid[b0 + i]
                            let w = rowW[i]
                            addScaled(dh + t * C, acc + i * C, w / rowSum[i], weight + Int(targets[t]) * C, -w, C)
                        }
                    }
                }
                if let dw = dweight {
                    // Pass 2: recompute each chunk, dZ = w·(softmax − onehot), then the two GEMMs.
                    let dhb: UnsafeMutablePointer<Float>?
                    if dhidden == nil {
                        dhb = nil
                    } else if contiguous {
                        dhb = dhidden! + b0 * C
                    } else {
                        acc.update(repeating: 0, count: nb * C)
                        dhb = acc
                    }
                    v0 = 0
                    while v0 < V {
                        let vc = min(VC, V - v0)
                        GEMM.sgemm(transA: false, transB: true, m: nb, n: vc, k: C, a: hb, lda: C,
                                   b: weight + v0 * C, ldb: C, beta: 0, c: z, ldc: vc, workers: workers)
                        Parallel.run(workers: workers, maxUseful: max(1, nb * vc / 16384)) { ith, nth in
                            for i in Parallel.range(ith, of: nth, count: nb) {
                                let zr = z + i * vc
                                _ = expSum(zr, vc, shift: rowMax[i], store: true)
                                let w = rowW[i]
                                scaleRow(zr, vc, w)
                                let y = Int(targets[valid[b0 + i]]) - v0
                                if y >= 0 && y < vc { zr[y] -= w }
                            }
                        }
                        if let dhb {
                            GEMM.sgemm(transA: false, transB: false, m: nb, n: C, k: vc, a: z, lda: vc,
                                       b: weight + v0 * C, ldb: C, beta: 1, c: dhb, ldc: C, workers: workers)
                        }
                        GEMM.sgemm(transA: true, transB: false, m: vc, n: C, k: nb, a: z, lda: vc,
                                   b: hb, ldb: C, beta: 1, c: dw + v0 * C, ldc: C, workers: workers)
                        v0 += vc
                    }
                    if let dh = dhidden, !contiguous {
                        for i in 0 ..< nb {
                            let dst = dh + valid[b0 + i] * C, src = acc + i * C
                            for c in 0 ..< C { dst[c] += src[c] }
                        }
                    }
                }
                b0 += nb
            }
        }
    }

    /// How far above the running shift a later chunk's logits may lie and still be summed with
    /// that shift: terms up to e^60 ≈ 1.1e26, so even a 2^20-column vocabulary sums below 1.2e32.
    package static let shiftSlack: Float = 60

    /// (Σ_c e^(z[c] − shift), max_c z[c]) in one pass over `count` floats.
    @inline(__always)
    static func expSumMax(_ z: UnsafePointer<Float>, _ count: Int, shift: Float) -> (Float, Float) {
        let sv = VFloat(repeating: shift)
        var s0 = VFloat(), s1 = VFloat()
        var m0 = VFloat(repeating: -.infinity), m1 = m0
        var c = 0
        while c + 2 * vLanes <= count {
            let v0 = vload(z, c), v1 = vload(z, c + vLanes)
            s0 += vexp(v0 - sv); s1 += vexp(v1 - sv)
            m0 = vmax(m0, v0); m1 = vmax(m1, v1)
            c += 2 * vLanes
        }
        while c + vLanes <= count {
            let v0 = vload(z, c)
            s0 += vexp(v0 - sv); m0 = vmax(m0, v0)
            c += vLanes
        }
        var s = (s0 + s1).sum(), m = vmax(m0, m1).max()
        if c < count {
            var v = VFloat(repeating: -.infinity)
            for j in 0 ..< count - c { v[j] = z[c + j]; m = max(m, z[c + j]) }
            let e = vexp(v - sv)
            for j in 0 ..< count - c { s += e[j] }
        }
        return (s, m)
    }

    /// Σ_c e^(z[c] − shift) over `count` floats; with `store`, z[c] is overwritten by e^(z[c] − shift).
    @inline(__always)
    static func expSum(_ z: UnsafeMutablePointer<Float>, _ count: Int, shift: Float, store: Bool) -> Float {
        if store { return Softmax.expShiftedSum(z, z, count, shift: shift) }
        let sv = VFloat(repeating: shift)
        var s0 = VFloat(), s1 = VFloat()
        var c = 0
        while c + 2 * vLanes <= count {
            s0 += vexp(vload(z, c) - sv); s1 += vexp(vload(z, c + vLanes) - sv); c += 2 * vLanes
        }
        while c + vLanes <= count { s0 += vexp(vload(z, c) - sv); c += vLanes }
        var s = (s0 + s1).sum()
        if c < count {
            var v = VFloat(repeating: -.infinity)
            for j in 0 ..< count - c { v[j] = z[c + j] }
            let e = vexp(v - sv)
            for j in 0 ..< count - c { s += e[j] }
        }
        return s
    }

    @inline(__always)
    static func scaleRow(_ x: UnsafeMutablePointer<Float>, _ count: Int, _ s: Float) {
        let sv = VFloat(repeating: s)
        var c = 0
        while c + vLanes <= count { vstore(vload(x, c) * sv, x, c); c += vLanes }
        while c < count { x[c] *= s; c += 1 }
    }

    /// dst += a·x + b·y.
    @inline(__always)
    static func addScaled(_ dst: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ a: Float,
                          _ y: UnsafePointer<Float>, _ b: Float, _ count: Int) {
        let av = VFloat(repeating: a), bv = VFloat(repeating: b)
        var c = 0
        while c + vLanes <= count {
            var d = vload(dst, c)
            fmadd(&d, av, vload(x, c)); fmadd(&d, bv, vload(y, c))
            vstore(d, dst, c)
            c += vLanes
        }
        while c < count { dst[c] += a * x[c] + b * y[c]; c += 1 }
    }
}
