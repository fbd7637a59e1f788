import Kernels

/// A token prefix that every sequence of a forward pass continues (a chat template's system turn,
/// for instance), run once: its post-RoPE query, key and value rows per block are kept, and each
/// sequence then attends to them as if its own tokens followed the prefix. Results equal a forward
/// pass over prefix + sequence (the same products per row); the prefix costs nothing per sequence
/// beyond its share of attention.
public final class SharedPrefix: @unchecked Sendable {
    public let tokens: [Int32]
    /// Blocks computed: a forward pass with this prefix may stop at block `blocks` or earlier.
    public let blocks: Int
    /// Per block, (tokens, qDim + 2·kvDim) fused qkv rows after RoPE.
    let qkv: [[Float]]
    /// The model that ran it: its rows mean nothing to another.
    let model: ObjectIdentifier

    init(model: LlamaModel, tokens: [Int32], blocks: Int, qkv: [[Float]]) {
        self.model = ObjectIdentifier(model)
        self.tokens = tokens
        self.blocks = blocks
        self.qkv = qkv
    }

    public var count: Int { tokens.count }

    /// Length of the token prefix common to every sequence, cut at `limit` (so that what each sequence
    /// needs lies after it); 0 when it is not worth a pass of its own (one sequence, or fewer than
    /// `minimumLength` tokens).
    public static func commonLength(_ sequences: [[Int32]], limit: Int) -> Int {
        guard sequences.count > 1, let first = sequences.first else { return 0 }
        var n = min(first.count, limit)
        for ids in sequences.dropFirst() where n > 0 {
            var i = 0
            let end = min(n, ids.count)
            while i < end && ids[i] == first[i] { i += 1 }
            n = i
        }
        return n >= minimumLength ? n : 0
    }

    public static let minimumLength = 4
}

extension LlamaModel {
    /// Runs `tokens` through blocks 1...`blocks` and keeps what later sequences need to attend to them.
    public func sharedPrefix(_ tokens: [Int32], blocks: Int, workers: Int? = nil) throws -> SharedPrefix {
        let c = config, P = tokens.count, ld = c.qDim + 2 * c.kvDim
        guard P > 0 else { throw LlamaError.invalidInput("a shared prefix needs at least one token") }
        guard P < c.contextLength else {
            throw LlamaError.invalidInput("a shared prefix of \(P) tokens leaves no room in the context length \(c.contextLength)")
        }
        guard blocks >= 1 && blocks <= c.layers else { throw LlamaError.invalidInput("prefix blocks \(blocks) outside 1...\(c.layers)") }
        if let bad = tokens.firstIndex(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw LlamaError.invalidInput("prefix token \(bad) has id \(tokens[bad]) outside the vocabulary 0..<\(c.vocabSize)")
        }
        let state = ForwardState(config: c, tokens: P)
        tokens.withUnsafeBufferPointer { idp in
            Embedding.forward(out: state.x.baseAddress!, ids: idp.baseAddress!, table: weights.embedding,
                              tokens: P, vocab: c.vocabSize, channels: c.hiddenSize, workers: workers)
        }
        let positions = (0 ..< P).map { Int32($0) }
        var saved: [[Float]] = []
        positions.withUnsafeBufferPointer { pos in
            for l in 0 ..< blocks {
                block(l, state: state, positions: pos.baseAddress!, sequenceStarts: [0, P], workers: workers,
                      afterRoPE: { qkv in saved.append(Array(UnsafeBufferPointer(start: qkv, count: P * ld))) })
            }
        }
        return SharedPrefix(model: self, tokens: tokens, blocks: blocks, qkv: saved)
    }

    /// Causal attention of packed sequences that all continue `prefix`: each sequence's rows are laid
    /// after a copy of the prefix rows and attention runs over the joined sequences; only the
    /// sequences' own output rows are kept.
    func attendAfterPrefix(_ l: Int, prefix: SharedPrefix, qkv: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                           sequenceStarts starts: [Int], workers w: Int?) {
        let c = config, ld = c.qDim + 2 * c.kvDim, P = prefix.count, B = starts.count - 1
        var joined = [0]
        for s in 0 ..< B { joined.append(joined[s] + P + starts[s + 1] - starts[s]) }
        let rows = joined[B]
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * (ld + c.qDim + c.heads))
        defer { scratch.deallocate() }
        let jq = scratch.baseAddress!, jo = jq + rows * ld, lse = jo + rows * c.qDim
        prefix.qkv[l].withUnsafeBufferPointer { pq in
            for s in 0 ..< B {
                (jq + joined[s] * ld).update(from: pq.baseAddress!, count: P * ld)
                (jq + (joined[s] + P) * ld).update(from: qkv + starts[s] * ld, count: (starts[s + 1] - starts[s]) * ld)
            }
        }
        Attention.forward(out: jo, ldo: c.qDim, lse: lse, q: jq, ldq: ld, k: jq + c.qDim, ldk: ld, v: jq + c.qDim + c.kvDim,
                          ldv: ld, sequenceStarts: joined, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim,
                          causal: true, workers: w)
        for s in 0 ..< B {
            (att + starts[s] * c.qDim).update(from: jo + (joined[s] + P) * c.qDim, count: (starts[s + 1] - starts[s]) * c.qDim)
        }
    }
}
