/// The slow twin of the engine: a naive Llama forward in Double, one sequence at a time.
/// It is the in-repo oracle for the fast forward, KV-cache decoding and gradient checks; the
/// arithmetic lives in `states(_:tokens:trainables:)` (LlamaReference+Training.swift), which
/// also applies LoRA adapters and probes when given.
package enum LlamaReference {
    /// Residual stream after the embedding (index 0) and after every block (1...L), each T x C,
    /// and the logits (T x V) of every position, for the base weights alone.
    package static func forward(_ w: LlamaWeights, tokens: [Int]) -> (hidden: [[Double]], logits: [Double]) {
        states(w, tokens: tokens, trainables: Trainables(adapter: nil, probes: nil))
    }
}
