import Kernels

/// How a block uses the KV cache: `prefill` writes the keys and values of whole prompts (sequence
/// s into slot `slots[s]`, from position 0) and attends within each prompt; `decode` appends one
/// token per row (row r into slot `slots[r]` at its current length) and attends to the cache.
/// A prefill with `prefix` runs prompts that continue it: the prefix rows go to every slot first.
struct CacheUse {
    enum Mode { case prefill, decode }
    var cache: KVCache
    var mode: Mode
    var slots: [Int]
    var prefix: SharedPrefix? = nil
}

/// Options of `generate`.
public struct GenerationOptions: Sendable {
    public var maxNewTokens: Int = 128
    /// 0 is greedy decoding.
    public var temperature: Float = 0
    public var topK: Int = 0
    public var topP: Float = 1
    public var seed: UInt64 = 0
    /// Generation of a sequence ends after it emits one of these (the stop token is kept in the output).
    public var stopTokens: Set<Int32> = []
    public var workers: Int?
    public init(maxNewTokens: Int = 128, temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0,
                stopTokens: Set<Int32> = [], workers: Int? = nil) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.stopTokens = stopTokens
        self.workers = workers
    }
}

extension LlamaModel {
    /// Writes keys/values into the cache and attends: a whole prompt per sequence (prefill), or one
    /// new token per row against everything cached for its slot (decode).
    func attendWithCache(_ l: Int, cache use: CacheUse, qkv: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                         positions: UnsafePointer<Int32>, sequenceStarts: [Int], lse: UnsafeMutablePointer<Float>, workers w: Int?) {
        let c = config, ldqkv = c.qDim + 2 * c.kvDim, kv = c.kvDim
        let cache = use.cache, keys = cache.keys(l), values = cache.values(l), stride = cache.slotStride
        let rowsPerSeq = sequenceStarts.count - 1
        for s in 0 ..< rowsPerSeq {
            let slot = use.slots[s]
            if let prefix = use.prefix {
                prefix.qkv[l].withUnsafeBufferPointer { pq in
                    for p in 0 ..< prefix.count {
                        (keys + slot * stride + p * kv).update(from: pq.baseAddress! + p * ldqkv + c.qDim, count: kv)
                        (values + slot * stride + p * kv).update(from: pq.baseAddress! + p * ldqkv + c.qDim + kv, count: kv)
                    }
                }
            }
            for r in sequenceStarts[s] ..< sequenceStarts[s + 1] {
                let p = Int(positions[r])
                (keys + slot * stride + p * kv).update(from: qkv + r * ldqkv + c.qDim, count: kv)
                (values + slot * stride + p * kv).update(from: qkv + r * ldqkv + c.qDim + kv, count: kv)
            }
        }
        switch use.mode {
        case .prefill where use.prefix != nil:
            attendAfterPrefix(l, prefix: use.prefix!, qkv: qkv, att: att, sequenceStarts: sequenceStarts, workers: w)
        case .prefill:
            Attention.forward(out: att, ldo: c.qDim, lse: lse, q: qkv, ldq: ldqkv, k: qkv + c.qDim, ldk: ldqkv,
                              v: qkv + c.qDim + kv, ldv: ldqkv, sequenceStarts: sequenceStarts, heads: c.heads,
                              kvHeads: c.kvHeads, headDim: c.headDim, causal: true, workers: w)
        case .decode:
            // One call per run of consecutive slots (the kernel addresses slots by a fixed stride).
            var r0 = 0
            while r0 < rowsPerSeq {
                var r1 = r0 + 1
                while r1 < rowsPerSeq && use.slots[r1] == use.slots[r1 - 1] + 1 { r1 += 1 }
                let lengths = (r0 ..< r1).map { Int(positions[$0]) + 1 }
                Attention.decode(out: att + r0 * c.qDim, ldo: c.qDim, q: qkv + r0 * ldqkv, ldq: ldqkv,
                                 keyCache: keys + use.slots[r0] * stride, valueCache: values + use.slots[r0] * stride,
                                 ldkv: kv, cacheStride: stride, lengths: lengths, heads: c.heads, kvHeads: c.kvHeads,
                                 headDim: c.headDim, workers: w)
                r0 = r1
            }
        }
    }

    /// Continues every prompt until it emits a stop token or `maxNewTokens` new tokens, all prompts
    /// batched together (prefill packed without padding, then one decode row per live sequence).
    /// Sequence i samples with seed `options.seed + i`, so its tokens do not depend on the batch.
    /// `onToken(i, token)` is called as tokens are produced. Returns the new tokens of each prompt.
    public func generate(_ prompts: [[Int32]], options: GenerationOptions,
                         onToken: ((_ sequence: Int, _ token: Int32) -> Void)? = nil) throws -> [[Int32]] {
        let c = config, B = prompts.count
        if B == 0 { return [] }
        guard options.maxNewTokens >= 0 else { throw LlamaError.invalidInput("maxNewTokens must be >= 0") }
        let longest = prompts.map(\.count).max()!
        guard longest + options.maxNewTokens <= c.contextLength else {
            throw LlamaError.invalidInput("a prompt of \(longest) tokens plus \(options.maxNewTokens) new tokens exceeds the context length \(c.contextLength)")
        }
        var results = [[Int32]](repeating: [], count: B)
        if options.maxNewTokens == 0 { return results }
        let cache = try KVCache(config: c, slots: B, capacity: longest + options.maxNewTokens)
        var samplers = (0 ..< B).map { Sampler(temperature: options.temperature, topK: options.topK, topP: options.topP,
                                               seed: options.seed &+ UInt64($0)) }
        // Prefill: logits of each prompt's last token. The prompts' common opening (a chat template's
        // system turn) runs once; each prompt keeps at least its last token.
        let P = SharedPrefix.commonLength(prompts, limit: prompts.map(\.count).min()! - 1)
        let prefix = P > 0 ? try sharedPrefix(Array(prompts[0].prefix(P)), blocks: c.layers, workers: options.workers) : nil
        let first = try run(P > 0 ? prompts.map { Array($0.dropFirst(P)) } : prompts,
                            cache: CacheUse(cache: cache, mode: .prefill, slots: Array(0 ..< B), prefix: prefix), workers: options.workers)
        for s in 0 ..< B { cache.lengths[s] = prompts[s].count }
        var live: [Int] = []
        var next: [Int32] = []
        first.withUnsafeBufferPointer { lp in
            for s in 0 ..< B {
                let t = samplers[s].sample(lp.baseAddress! + s * c.vocabSize, count: c.vocabSize)
                results[s].append(t)
                onToken?(s, t)
                if !options.stopTokens.contains(t) && options.maxNewTokens > 1 { live.append(s); next.append(t) }
            }
        }
        while !live.isEmpty {
            let logits = try run(next.map { [$0] }, cache: CacheUse(cache: cache, mode: .decode, slots: live), workers: options.workers)
            var stillLive: [Int] = [], nextTokens: [Int32] = []
            logits.withUnsafeBufferPointer { lp in
                for (r, s) in live.enumerated() {
                    cache.lengths[s] += 1
                    let t = samplers[s].sample(lp.baseAddress! + r * c.vocabSize, count: c.vocabSize)
                    results[s].append(t)
                    onToken?(s, t)
                    if !options.stopTokens.contains(t) && results[s].count < options.maxNewTokens {
                        stillLive.append(s); nextTokens.append(t)
                    }
                }
            }
            live = stillLive
            next = nextTokens
        }
        return results
    }

    /// Forward over packed rows with the cache; returns last-token logits per sequence (prefill) or per row (decode).
    func run(_ sequences: [[Int32]], cache use: CacheUse, workers w: Int?) throws -> [Float] {
        let c = config
        var starts = [0], positions: [Int32] = []
        for (i, seq) in sequences.enumerated() {
            starts.append(starts.last! + seq.count)
            let base = use.mode == .decode ? use.cache.lengths[use.slots[i]] : use.prefix?.count ?? 0
            for t in 0 ..< seq.count { positions.append(Int32(base + t)) }
        }
        let N = starts.last!
        let ids = sequences.flatMap { $0 }
        let state = ForwardState(config: c, tokens: N)
        ids.withUnsafeBufferPointer { idp in
            Embedding.forward(out: state.x.baseAddress!, ids: idp.baseAddress!, table: weights.embedding,
                              tokens: N, vocab: c.vocabSize, channels: c.hiddenSize, workers: w)
        }
        positions.withUnsafeBufferPointer { pos in
            for l in 0 ..< c.layers {
                block(l, state: state, positions: pos.baseAddress!, sequenceStarts: starts, workers: w, cache: use)
            }
        }
        return logits(of: state.x, rows: starts.dropFirst().map { $0 - 1 }, workers: w)
    }
}
