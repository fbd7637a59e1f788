import Foundation
import Llama
import Tokenization

/// Samples rendered exactly as fine-tuning sees them: the model's chat template, then its tokenizer.
/// One place for this, so SAFT embeds, the trainers learn and evaluation scores the same token ids.
public enum SampleEncoding {
    /// Token ids of the whole rendered conversation (BOS, prompt, assistant header, response,
    /// end-of-turn) and how many of them belong to the prompt part.
    public static func encode(_ s: Sample, with m: LoadedModel) -> (ids: [Int32], promptTokens: Int) {
        var messages: [ChatMessage] = []
        if let sys = s.system { messages.append(.system(sys)) }
        messages.append(.user(s.prompt))
        messages.append(.assistant(s.response))
        let rendered = m.template.render(messages, addGenerationPrompt: false)
        let enc = m.tokenizer.encodeChat(rendered)
        return (enc.ids.map { Int32($0) }, enc.promptTokens)
    }

    /// A training example: loss on the response tokens through the end-of-turn token (anything the
    /// template adds after it, such as ChatML's trailing newline, is dropped). At most `maxTokens`
    /// tokens are kept; returns nil when the prompt alone leaves no response token to learn.
    public static func trainingSample(_ s: Sample, with m: LoadedModel, maxTokens: Int) -> (sample: TrainingSample?, truncated: Bool) {
        var (ids, promptTokens) = encode(s, with: m)
        let stops = m.stopTokens
        if let end = ids.lastIndex(where: { stops.contains($0) }), end >= promptTokens { ids.removeSubrange(end + 1 ..< ids.count) }
        let limit = max(1, maxTokens)
        let truncated = ids.count > limit
        if truncated { ids.removeSubrange(limit ..< ids.count) }
        guard promptTokens < ids.count else { return (nil, truncated) }
        let mask = (0 ..< ids.count).map { $0 >= promptTokens }
        return (TrainingSample(tokens: ids, lossMask: mask), truncated)
    }

    /// A set of training examples with the bookkeeping a report needs.
    public struct EncodedSet: Sendable {
        public var samples: [TrainingSample]
        /// Index in the input of each element of `samples`.
        public var sourceIndex: [Int]
        /// Inputs cut to `maxTokens` (still used, with a shorter response).
        public var truncated: Int
        /// Inputs whose prompt alone reaches `maxTokens` (left out: nothing to learn).
        public var dropped: [Int]
        public var tokens: Int { samples.reduce(0) { $0 + $1.tokens.count } }
    }

    /// Encodes every sample, never more than `min(maxTokens, context length)` tokens each.
    public static func trainingSet(_ samples: [Sample], with m: LoadedModel, maxTokens: Int) -> EncodedSet {
        let limit = min(maxTokens, m.model.config.contextLength)
        var out = EncodedSet(samples: [], sourceIndex: [], truncated: 0, dropped: [])
        for (i, s) in samples.enumerated() {
            let (x, cut) = trainingSample(s, with: m, maxTokens: limit)
            if cut { out.truncated += 1 }
            if let x { out.samples.append(x); out.sourceIndex.append(i) } else { out.dropped.append(i) }
        }
        return out
    }
}
