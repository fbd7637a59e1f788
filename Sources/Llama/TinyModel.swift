import Foundation
import Tokenization

/// A complete, tiny Llama model file (random weights, byte-level BPE tokenizer, ChatML template) for
/// tests and smoke runs of every runner: it loads through the same path as a real GGUF, renders chats
/// and trains in milliseconds. Its answers are noise; its shapes and file layout are real.
public enum TinyModel {
    /// Merges of a few frequent English pairs, so that tokenization exercises merging.
    static let merges: [(String, String)] = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("a", "n"),
                                             ("o", "n"), ("Ġ", "a"), ("r", "e"), ("Ġ", "s"), ("e", "s"), ("o", "u")]
    public static let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    /// 256 byte tokens, the merged tokens, then the ChatML control tokens (end of turn = `<|im_end|>`).
    public static func tokenizer() throws -> Tokenizer {
        var tokens = (0 ..< 256).map { ByteLevel.encode([UInt8($0)]) }
        for (a, b) in merges where !tokens.contains(a + b) { tokens.append(a + b) }
        let first = tokens.count
        tokens += specials
        var types = [TokenType](repeating: .normal, count: tokens.count)
        for i in first ..< tokens.count { types[i] = .control }
        return try Tokenizer(TokenizerVocabulary(model: .byteLevelBPE, tokens: tokens, types: types, merges: merges,
                                                 preTokenizer: .gpt2, bosID: first + 1, eosID: first + 2, eotID: first + 2,
                                                 addBOS: false))
    }

    /// The shape of a tiny model over `vocabSize` tokens (grouped-query attention, two blocks by default).
    public static func config(vocabSize: Int, layers: Int = 2, hidden: Int = 32, contextLength: Int = 1024,
                              tied: Bool = true) -> LlamaConfig {
        LlamaConfig(vocabSize: vocabSize, hiddenSize: hidden, layers: layers, heads: 4, kvHeads: 2, headDim: hidden / 4,
                    ffnSize: 2 * hidden, rmsEps: 1e-5, ropeBase: 10_000, contextLength: contextLength, tiedEmbeddings: tied)
    }

    /// Writes a tiny model with seeded random weights to `path` (GGUF, F32 unless `matrixType` says otherwise).
    public static func write(to path: String, seed: UInt64 = 1, layers: Int = 2, hidden: Int = 32, contextLength: Int = 1024,
                             tied: Bool = true, matrixType: GGUFExport.MatrixType = .f32) throws {
        let t = try tokenizer()
        let weights = try LlamaWeights(config: config(vocabSize: t.tokenCount, layers: layers, hidden: hidden,
                                                      contextLength: contextLength, tied: tied))
        weights.randomize(seed: seed)
        try GGUFExport.write(weights, tokenizer: t, template: ChatTemplate(kind: .chatml), name: "safetune-tiny",
                             matrixType: matrixType, to: path)
    }
}
