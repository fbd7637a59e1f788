import Foundation
import Kernels

extension TrainingEngine {
    /// One block's training forward from `acts.xIn` into `out` (which may not alias xIn), saving
    /// every activation of `acts`:
    ///   xn1 = rmsnorm(xIn); qkv = rope(xn1·Wqkvᵀ + LoRA); att = attention(qkv)
    ///   xMid = xIn + att·Woᵀ + LoRA; xn2 = rmsnorm(xMid); gate, up = xn2·W{gate,up}ᵀ + LoRA
    ///   out = xMid + swiglu(gate, up)·Wdownᵀ + LoRA
    func blockForward(_ l: Int, _ s: BlockActivations, out: UnsafeMutablePointer<Float>, arena a: ActivationArena,
                      batch: TrainingBatch, positions: UnsafePointer<Int32>) {
        let c = model.config, C = c.hiddenSize, N = batch.tokenCount, F = c.ffnSize, Q = c.qDim + 2 * c.kvDim
        let wt = model.weights, w = workers
        RMSNorm.forward(out: s.xn1, rstd: s.rstd1, inp: s.xIn, weight: attnNormWeight(l), rows: N, channels: C,
                        eps: c.rmsEps, workers: w)
        gemm(transB: true, m: N, n: Q, k: C, a: s.xn1, lda: C, b: wt.qkv(l), ldb: C, c: s.qkv, ldc: Q, workers: w)
        loraForward(l, .q, x: s.xn1, y: s.qkv, ldy: Q, acts: s, arena: a, tokens: N)
        loraForward(l, .k, x: s.xn1, y: s.qkv + c.qDim, ldy: Q, acts: s, arena: a, tokens: N)
        loraForward(l, .v, x: s.xn1, y: s.qkv + c.qDim + c.kvDim, ldy: Q, acts: s, arena: a, tokens: N)
        model.ropeInPlace(s.qkv, ld: Q, rows: N, positions: positions, workers: w)
        let t0 = profileStart()
        Attention.forward(out: s.att, ldo: c.qDim, lse: s.lse, q: s.qkv, ldq: Q, k: s.qkv + c.qDim, ldk: Q,
                          v: s.qkv + c.qDim + c.kvDim, ldv: Q, sequenceStarts: batch.sequenceStarts, heads: c.heads,
                          kvHeads: c.kvHeads, headDim: c.headDim, causal: true, workers: w)
        profileEnd(t0, \.attention)
        s.xMid.update(from: s.xIn, count: N * C)
        gemm(transB: true, m: N, n: C, k: c.qDim, a: s.att, lda: c.qDim, b: wt.wo(l), ldb: c.qDim, beta: 1,
                   c: s.xMid, ldc: C, workers: w)
        loraForward(l, .o, x: s.att, y: s.xMid, ldy: C, acts: s, arena: a, tokens: N)
        RMSNorm.forward(out: s.xn2, rstd: s.rstd2, inp: s.xMid, weight: ffnNormWeight(l), rows: N, channels: C,
                        eps: c.rmsEps, workers: w)
        gemm(transB: true, m: N, n: F, k: C, a: s.xn2, lda: C, b: wt.gateUp(l), ldb: C, c: s.gate, ldc: F, workers: w)
        gemm(transB: true, m: N, n: F, k: C, a: s.xn2, lda: C, b: wt.gateUp(l) + F * C, ldb: C, c: s.up, ldc: F, workers: w)
        loraForward(l, .gate, x: s.xn2, y: s.gate, ldy: F, acts: s, arena: a, tokens: N)
        loraForward(l, .up, x: s.xn2, y: s.up, ldy: F, acts: s, arena: a, tokens: N)
        SwiGLU.forward(out: a.act, gate: s.gate, up: s.up, count: N * F, workers: w)
        out.update(from: s.xMid, count: N * C)
        gemm(transB: true, m: N, n: C, k: F, a: a.act, lda: F, b: wt.down(l), ldb: F, beta: 1, c: out, ldc: C, workers: w)
        loraForward(l, .down, x: a.act, y: out, ldy: C, acts: s, arena: a, tokens: N)
    }

    /// Turns `arena.dx` from the gradient w.r.t. block `l`'s output into the gradient w.r.t. its
    /// input (the residual passes through, the branches add), accumulating LoRA and norm weight
    /// gradients unless `weightGradients` is false. Base weights only appear as GEMM operands.
    func blockBackward(_ l: Int, _ s: BlockActivations, arena a: ActivationArena, batch: TrainingBatch,
                       positions: UnsafePointer<Int32>, weightGradients wg: Bool) {
        let c = model.config, C = c.hiddenSize, N = batch.tokenCount, F = c.ffnSize, Q = c.qDim + 2 * c.kvDim
        let HD = c.qDim, wt = model.weights, w = workers
        let dx = a.dx, dxn = a.dxn
        let normGrads = wg && adapter?.config.trainNorms == true
        // out = xMid + act·Wdownᵀ (+ LoRA): dact = dx·Wdown
        gemm(m: N, n: F, k: C, a: dx, lda: C, b: wt.down(l), ldb: F, c: a.dact, ldc: F, workers: w)
        if adapter?.slot(l, .down) != nil {
            SwiGLU.forward(out: a.act, gate: s.gate, up: s.up, count: N * F, workers: w)
            loraBackward(l, .down, dy: dx, lddy: C, x: a.act, dx: a.dact, acts: s, arena: a, tokens: N, weightGradients: wg)
        }
        // act = swiglu(gate, up)
        a.dgate.update(repeating: 0, count: N * F)
        a.dup.update(repeating: 0, count: N * F)
        SwiGLU.backward(dgate: a.dgate, dup: a.dup, dout: a.dact, gate: s.gate, up: s.up, count: N * F, workers: w)
        // gate = xn2·Wgᵀ, up = xn2·Wuᵀ (+ LoRA): dxn2 = dgate·Wg + dup·Wu
        gemm(m: N, n: C, k: F, a: a.dgate, lda: F, b: wt.gateUp(l), ldb: C, c: dxn, ldc: C, workers: w)
        gemm(m: N, n: C, k: F, a: a.dup, lda: F, b: wt.gateUp(l) + F * C, ldb: C, beta: 1, c: dxn, ldc: C, workers: w)
        loraBackward(l, .gate, dy: a.dgate, lddy: F, x: s.xn2, dx: dxn, acts: s, arena: a, tokens: N, weightGradients: wg)
        loraBackward(l, .up, dy: a.dup, lddy: F, x: s.xn2, dx: dxn, acts: s, arena: a, tokens: N, weightGradients: wg)
        // xn2 = rmsnorm(xMid): dx (now w.r.t. xMid) += rmsnorm'ᵀ dxn2
        RMSNorm.backward(dinp: dx, dweight: normGrads ? adapter!.buffer.gradientPointer + adapter!.ffnNormOffsets![l] : nil,
                         dout: dxn, inp: s.xMid, weight: ffnNormWeight(l), rstd: s.rstd2, rows: N, channels: C, workers: w)
        // xMid = xIn + att·Woᵀ (+ LoRA): datt = dx·Wo
        gemm(m: N, n: HD, k: C, a: dx, lda: C, b: wt.wo(l), ldb: HD, c: a.datt, ldc: HD, workers: w)
        loraBackward(l, .o, dy: dx, lddy: C, x: s.att, dx: a.datt, acts: s, arena: a, tokens: N, weightGradients: wg)
        // att = attention(q, k, v) after RoPE
        a.dqkv.update(repeating: 0, count: N * Q)
        let t0 = profileStart()
        Attention.backward(dq: a.dqkv, lddq: Q, dk: a.dqkv + HD, lddk: Q, dv: a.dqkv + HD + c.kvDim, lddv: Q,
                           dout: a.datt, lddout: HD, out: s.att, ldo: HD, lse: s.lse, q: s.qkv, ldq: Q,
                           k: s.qkv + HD, ldk: Q, v: s.qkv + HD + c.kvDim, ldv: Q, sequenceStarts: batch.sequenceStarts,
                           heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, causal: true, workers: w)
        profileEnd(t0, \.attention)
        // q, k = rope(...): inverse rotation; v passes through
        a.dqkvPre.update(repeating: 0, count: N * Q)
        model.ropeCos.withUnsafeBufferPointer { cs in
            model.ropeSin.withUnsafeBufferPointer { sn in
                RoPE.backward(dinp: a.dqkvPre, dout: a.dqkv, ld: Q, positions: positions, rows: N, heads: c.heads + c.kvHeads,
                              headDim: c.headDim, rotaryDim: c.ropeDim, layout: .adjacentPairs, cos: cs.baseAddress!,
                              sin: sn.baseAddress!, tablePositions: c.contextLength, workers: w)
            }
        }
        let vOff = HD + c.kvDim
        for t in 0 ..< N { (a.dqkvPre + t * Q + vOff).update(from: a.dqkv + t * Q + vOff, count: c.kvDim) }
        // qkv = xn1·Wqkvᵀ (+ LoRA): dxn1 = dqkv·Wqkv
        gemm(m: N, n: C, k: Q, a: a.dqkvPre, lda: Q, b: wt.qkv(l), ldb: C, c: dxn, ldc: C, workers: w)
        loraBackward(l, .q, dy: a.dqkvPre, lddy: Q, x: s.xn1, dx: dxn, acts: s, arena: a, tokens: N, weightGradients: wg)
        loraBackward(l, .k, dy: a.dqkvPre + HD, lddy: Q, x: s.xn1, dx: dxn, acts: s, arena: a, tokens: N, weightGradients: wg)
        loraBackward(l, .v, dy: a.dqkvPre + vOff, lddy: Q, x: s.xn1, dx: dxn, acts: s, arena: a, tokens: N, weightGradients: wg)
        // xn1 = rmsnorm(xIn): dx (now w.r.t. xIn) += rmsnorm'ᵀ dxn1
        RMSNorm.backward(dinp: dx, dweight: normGrads ? adapter!.buffer.gradientPointer + adapter!.attnNormOffsets![l] : nil,
                         dout: dxn, inp: s.xIn, weight: attnNormWeight(l), rstd: s.rstd1, rows: N, channels: C, workers: w)
    }

    // MARK: - Profiling

    /// `GEMM.sgemm`, timed into `profile.gemm` when profiling.
    @inline(__always)
    func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
              c: UnsafeMutablePointer<Float>, ldc: Int, workers: Int?) {
        let t0 = profileStart()
        GEMM.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                   beta: beta, c: c, ldc: ldc, workers: workers)
        profileEnd(t0, \.gemm)
    }

    @inline(__always) func profileStart() -> UInt64 { profile == nil ? 0 : DispatchTime.now().uptimeNanoseconds }
    @inline(__always) func profileEnd(_ t0: UInt64, _ field: ReferenceWritableKeyPath<TrainingProfile, Double>) {
        guard let p = profile else { return }
        p[keyPath: field] += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }

    // MARK: - LoRA branch

    /// The branch input: x itself, or dropout(x) = x ⊙ mask / (1 − p) written into `arena.loraX`.
    func loraInput(_ l: Int, _ target: LoRATarget, x: UnsafeMutablePointer<Float>, inDim: Int, arena a: ActivationArena,
                   tokens N: Int) -> UnsafeMutablePointer<Float> {
        guard let ad = adapter, training, ad.config.dropout > 0 else { return x }
        let p = ad.config.dropout, keepScale = 1 / (1 - p), th = DropoutMask.threshold(p)
        let stream = DropoutMask.stream(layer: l, target: target), seed = dropoutSeed, xd = a.loraX
        Parallel.forEach(N, workers: N * inDim >= 1 << 15 ? workers : 1) { t in
            for i in 0 ..< inDim {
                let idx = t * inDim + i
                xd[idx] = DropoutMask.keep(seed: seed, stream: stream, index: idx, threshold: th) ? x[idx] * keepScale : 0
            }
        }
        return xd
    }

    /// y += scale·(dropout(x)·Aᵀ)·Bᵀ, saving t = dropout(x)·Aᵀ (N, r) in `acts.loraT`.
    func loraForward(_ l: Int, _ target: LoRATarget, x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>,
                     ldy: Int, acts: BlockActivations, arena a: ActivationArena, tokens N: Int) {
        guard let ad = adapter, let s = ad.slot(l, target) else { return }
        let r = ad.config.rank, t = acts.loraT! + target.index * N * r
        let xd = loraInput(l, target, x: x, inDim: s.inDim, arena: a, tokens: N)
        gemm(transB: true, m: N, n: r, k: s.inDim, a: xd, lda: s.inDim, b: ad.a(s), ldb: s.inDim, c: t, ldc: r, workers: workers)
        gemm(transB: true, m: N, n: s.outDim, k: r, alpha: ad.scale, a: t, lda: r, b: ad.b(s), ldb: r, beta: 1,
                   c: y, ldc: ldy, workers: workers)
    }

    /// Gradients of `loraForward` given dy (N, out) with row stride `lddy`:
    ///   dB += scale·dyᵀ·t;  dt = scale·dy·B;  dA += dtᵀ·dropout(x);  dx += dropout'(dt·A)
    /// (dA and dB skipped unless `weightGradients`). ACCUMULATES into dx (N, in) and the gradients.
    func loraBackward(_ l: Int, _ target: LoRATarget, dy: UnsafeMutablePointer<Float>, lddy: Int, x: UnsafeMutablePointer<Float>,
                      dx: UnsafeMutablePointer<Float>, acts: BlockActivations, arena a: ActivationArena, tokens N: Int,
                      weightGradients: Bool) {
        guard let ad = adapter, let s = ad.slot(l, target) else { return }
        let r = ad.config.rank, t = acts.loraT! + target.index * N * r, dt = a.loraDT, w = workers
        if weightGradients {
            gemm(transA: true, m: s.outDim, n: r, k: N, alpha: ad.scale, a: dy, lda: lddy, b: t, ldb: r, beta: 1,
                       c: ad.gradB(s), ldc: r, workers: w)
        }
        gemm(m: N, n: r, k: s.outDim, alpha: ad.scale, a: dy, lda: lddy, b: ad.b(s), ldb: r, c: dt, ldc: r, workers: w)
        if weightGradients {
            let xd = loraInput(l, target, x: x, inDim: s.inDim, arena: a, tokens: N)
            gemm(transA: true, m: r, n: s.inDim, k: N, a: dt, lda: r, b: xd, ldb: s.inDim, beta: 1,
                       c: ad.gradA(s), ldc: s.inDim, workers: w)
        }
        if training && ad.config.dropout > 0 {
            // dxd = dt·A, then dx += dxd ⊙ mask / (1 − p)
            let dxd = a.loraX, inDim = s.inDim
            gemm(m: N, n: inDim, k: r, a: dt, lda: r, b: ad.a(s), ldb: inDim, c: dxd, ldc: inDim, workers: w)
            let p = ad.config.dropout, keepScale = 1 / (1 - p), th = DropoutMask.threshold(p)
            let stream = DropoutMask.stream(layer: l, target: target), seed = dropoutSeed
            Parallel.forEach(N, workers: N * inDim >= 1 << 15 ? w : 1) { tk in
                for i in 0 ..< inDim {
                    let idx = tk * inDim + i
                    if DropoutMask.keep(seed: seed, stream: stream, index: idx, threshold: th) { dx[idx] += dxd[idx] * keepScale }
                }
            }
        } else {
            gemm(m: N, n: s.inDim, k: r, a: dt, lda: r, b: ad.a(s), ldb: s.inDim, beta: 1, c: dx, ldc: s.inDim, workers: w)
        }
    }
}
