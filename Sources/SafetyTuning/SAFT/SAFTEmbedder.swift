import Foundation
import Kernels
import Llama
import Tokenization

/// Which token's residual state represents a sample (METHODS.md 2.3 step 2).
public enum EmbeddingPosition: String, Sendable, CaseIterable {
    /// The last token of the prompt and assistant header: the state that predicts the first
    /// response token (SAFT). The model then runs on the prompt only.
    case lastPromptToken = "last-prompt"
    /// The last token of the whole rendered sample, end-of-turn included (HaloScope).
    case lastToken = "last"
    /// The mean over the response tokens.
    case meanResponse = "mean-response"
}

/// Embeddings of samples at one or more blocks: block b holds (rows, dim) row-major floats.
public struct Embeddings: Sendable {
    public var rows: Int
    public var dim: Int
    public var byBlock: [Int: [Float]]
    public var position: EmbeddingPosition
    /// Samples cut to the token limit, and tokens processed.
    public var truncated: Int
    public var tokens: Int
    public var seconds: Double
    /// Per row: tokens run and whether the row was cut (empty when unknown).
    public var rowTokens: [Int] = []
    public var rowTruncated: [Bool] = []
    /// Tokens actually run in `seconds`: fewer than `tokens` when rows came from a cache or began with a
    /// shared prefix (run once).
    public var tokensRun: Int? = nil
    /// Leading tokens common to every row, run once for all of them (counted in `tokens` per row).
    public var sharedPrefixTokens = 0
    public var tokensPerSecond: Double? { seconds > 0 ? Double(tokensRun ?? tokens) / seconds : nil }

    public init(rows: Int, dim: Int, byBlock: [Int: [Float]], position: EmbeddingPosition, truncated: Int = 0,
                tokens: Int = 0, seconds: Double = 0) {
        self.rows = rows; self.dim = dim; self.byBlock = byBlock; self.position = position
        self.truncated = truncated; self.tokens = tokens; self.seconds = seconds
    }
}

public enum SAFTEmbedder {
    /// Runs the model over every sample (no gradients), batched by length up to `batchTokens`
    /// tokens per forward, stopping after the deepest requested block, and returns the residual
    /// state after each block in `blocks` (1...L) at `position`. Samples longer than `maxTokens`
    /// keep their first `maxTokens` tokens (counted in `truncated`).
    public static func embed(_ samples: [Sample], model m: LoadedModel, blocks: [Int], position: EmbeddingPosition,
                             maxTokens: Int = 512, batchTokens: Int = 4096, workers: Int? = nil, sharePrefix: Bool = true,
                             progress: ((Int, Int) -> Void)? = nil) throws -> Embeddings {
        try embed(samples, model: m, reads: [position: blocks], maxTokens: maxTokens, batchTokens: batchTokens,
                  workers: workers, sharePrefix: sharePrefix, progress: progress)[position]!
    }

    /// The same forward passes read at several positions at once (`reads[p]` lists the blocks read at
    /// position p): one `Embeddings` per position, sharing their token counts and timing. The model
    /// runs on the prompt alone only when `last-prompt` is the only position read. The tokens every
    /// sample starts with (the template's system turn) run once (`SharedPrefix`) unless `sharePrefix`
    /// is false; the states are the same either way.
    public static func embed(_ samples: [Sample], model m: LoadedModel, reads: [EmbeddingPosition: [Int]],
                             maxTokens: Int = 512, batchTokens: Int = 4096, workers: Int? = nil, sharePrefix: Bool = true,
                             progress: ((Int, Int) -> Void)? = nil) throws -> [EmbeddingPosition: Embeddings] {
        let c = m.model.config, C = c.hiddenSize
        let blocks = Array(Set(reads.values.joined())).sorted()
        guard !reads.isEmpty, reads.values.allSatisfy({ !$0.isEmpty }), blocks.allSatisfy({ $0 >= 1 && $0 <= c.layers }) else {
            throw DatasetError("embedding blocks \(reads.values.map { $0 }) must be non-empty and lie in 1...\(c.layers)")
        }
        let positions = reads.keys.sorted { $0.rawValue < $1.rawValue }
        let promptOnly = positions == [.lastPromptToken]
        let start = DispatchTime.now()
        let limit = min(maxTokens, c.contextLength)
        var truncated = 0, totalTokens = 0
        // Token ids to run and, per position and sample, the rows (within its own sequence) to read.
        var inputs: [[Int32]] = [], rowTruncated: [Bool] = []
        var readFrom = [EmbeddingPosition: [Range<Int>]]()
        for s in samples {
            var (ids, promptTokens) = SampleEncoding.encode(s, with: m)
            rowTruncated.append(ids.count > limit)
            if ids.count > limit { ids = Array(ids.prefix(limit)); truncated += 1 }
            let p = max(1, min(promptTokens, ids.count))
            if promptOnly { ids = Array(ids.prefix(p)) }
            for position in positions {
                let range: Range<Int>
                switch position {
                case .lastPromptToken: range = p - 1 ..< p
                case .lastToken: range = ids.count - 1 ..< ids.count
                case .meanResponse: range = p < ids.count ? p ..< ids.count : ids.count - 1 ..< ids.count
                }
                readFrom[position, default: []].append(range)
            }
            inputs.append(ids)
            totalTokens += ids.count
        }
        // The template's opening (system turn, role header) is the same in every sample: run it once
        // (cut before the first row read anywhere).
        let rowTokens = inputs.map(\.count)
        let P = !sharePrefix ? 0 : SharedPrefix.commonLength(inputs, limit: readFrom.values.flatMap { $0.map(\.lowerBound) }.min() ?? 0)
        let prefix = P > 0 ? try m.model.sharedPrefix(Array(inputs[0].prefix(P)), blocks: blocks.max()!, workers: workers) : nil
        if P > 0 {
            for i in inputs.indices { inputs[i].removeFirst(P) }
            for position in positions { readFrom[position] = readFrom[position]!.map { $0.lowerBound - P ..< $0.upperBound - P } }
        }
        var out = [EmbeddingPosition: [Int: [Float]]]()
        for (position, bs) in reads { for b in bs { out[position, default: [:]][b] = [Float](repeating: 0, count: samples.count * C) } }
        // Longest first, so batches hold similar lengths.
        let order = inputs.indices.sorted { inputs[$0].count > inputs[$1].count }
        var done = 0, i = 0
        while i < order.count {
            var batch: [Int] = [], tokens = 0
            while i < order.count && (batch.isEmpty || tokens + inputs[order[i]].count <= batchTokens) {
                batch.append(order[i]); tokens += inputs[order[i]].count; i += 1
            }
            let result = try m.model.forward(batch.map { inputs[$0] },
                                             options: ForwardOptions(logits: .none, captureBlocks: blocks,
                                                                     stopAfterBlock: blocks.max()!, workers: workers, prefix: prefix))
            for position in positions {
                let ranges = readFrom[position]!
                for b in reads[position]! {
                    let h = result.hidden[b]!
                    out[position]![b]!.withUnsafeMutableBufferPointer { dst in
                        for (j, sampleIndex) in batch.enumerated() {
                            let base = result.sequenceStarts[j], rows = ranges[sampleIndex]
                            let d = dst.baseAddress! + sampleIndex * C
                            for r in rows { for x in 0 ..< C { d[x] += h[(base + r) * C + x] } }
                            let scale = 1 / Float(rows.count)
                            if rows.count > 1 { for x in 0 ..< C { d[x] *= scale } }
                        }
                    }
                }
            }
            done += batch.count
            progress?(done, samples.count)
        }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        var result = [EmbeddingPosition: Embeddings]()
        for position in positions {
            var e = Embeddings(rows: samples.count, dim: C, byBlock: out[position]!, position: position, truncated: truncated,
                               tokens: totalTokens, seconds: elapsed)
            e.rowTokens = rowTokens
            e.rowTruncated = rowTruncated
            e.sharedPrefixTokens = P
            e.tokensRun = totalTokens - P * max(samples.count - 1, 0)
            result[position] = e
        }
        return result
    }
}
