import Foundation

/// Token kinds, numbered as GGUF `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`).
public enum TokenType: Int, Sendable {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// Which algorithm the vocabulary is for (GGUF `tokenizer.ggml.model`).
public enum TokenizerModelKind: String, Sendable {
    /// Byte-level BPE with merge ranks (GGUF "gpt2").
    case byteLevelBPE = "gpt2"
    /// SentencePiece-style: `▁` for spaces, merges by score (or merge rank), `<0xXX>` byte fallback (GGUF "llama").
    case sentencePiece = "llama"
}

public struct TokenizerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "tokenizer: " + message }
}

/// Read access to tokenizer metadata (`tokenizer.ggml.*` keys). ModelFormats' `GGUFMetadata` has exactly these
/// methods; declare `extension GGUFMetadata: TokenizerMetadataSource {}` where both modules are imported.
public protocol TokenizerMetadataSource {
    func string(_ key: String) -> String?
    func strings(_ key: String) -> [String]?
    func int(_ key: String) -> Int?
    func ints(_ key: String) -> [Int]?
    func floats(_ key: String) -> [Float]?
    func bool(_ key: String) -> Bool?
}

/// Everything a `Tokenizer` is built from, independent of the file it came from.
public struct TokenizerVocabulary: Sendable {
    public var model: TokenizerModelKind
    public var tokens: [String]
    public var types: [TokenType]
    /// SentencePiece scores (higher merges first); ignored when `merges` is non-empty.
    public var scores: [Float]
    /// "left right" pairs in rank order (byte-level BPE, or SentencePiece vocabularies exported with merges).
    public var merges: [(String, String)]
    public var preTokenizer: PreTokenizerKind?
    public var bosID: Int?
    public var eosID: Int?
    public var unknownID: Int?
    public var paddingID: Int?
    /// End-of-turn token (e.g. <|im_end|>, <|eot_id|>) when known.
    public var eotID: Int?
    public var addBOS: Bool
    public var addEOS: Bool
    /// SentencePiece: prefix the first text fragment with a space (▁).
    public var addSpacePrefix: Bool
    /// Emit a pre-token as one token when it is in the vocabulary, without merging (Llama 3).
    public var ignoreMerges: Bool

    public init(model: TokenizerModelKind, tokens: [String], types: [TokenType]? = nil, scores: [Float] = [],
                merges: [(String, String)] = [], preTokenizer: PreTokenizerKind? = nil,
                bosID: Int? = nil, eosID: Int? = nil, unknownID: Int? = nil, paddingID: Int? = nil, eotID: Int? = nil,
                addBOS: Bool? = nil, addEOS: Bool = false, addSpacePrefix: Bool? = nil, ignoreMerges: Bool = false) {
        self.model = model; self.tokens = tokens
        self.types = types ?? [TokenType](repeating: .normal, count: tokens.count)
        self.scores = scores; self.merges = merges; self.preTokenizer = preTokenizer
        self.bosID = bosID; self.eosID = eosID; self.unknownID = unknownID; self.paddingID = paddingID; self.eotID = eotID
        self.addBOS = addBOS ?? (model == .sentencePiece)
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix ?? (model == .sentencePiece)
        self.ignoreMerges = ignoreMerges
    }

    /// Reads `tokenizer.ggml.*` from GGUF metadata. `preTokenizer` overrides `tokenizer.ggml.pre`.
    public init(gguf m: TokenizerMetadataSource, preTokenizer override: PreTokenizerKind? = nil) throws {
        guard let modelName = m.string("tokenizer.ggml.model") else {
            throw TokenizerError("tokenizer.ggml.model is missing")
        }
        guard let model = TokenizerModelKind(rawValue: modelName) else {
            throw TokenizerError("tokenizer.ggml.model \"\(modelName)\" is not supported (gpt2, llama)")
        }
        guard let tokens = m.strings("tokenizer.ggml.tokens"), !tokens.isEmpty else {
            throw TokenizerError("tokenizer.ggml.tokens is missing or not a string array")
        }
        var types: [TokenType]? = nil
        if let raw = m.ints("tokenizer.ggml.token_type") {
            guard raw.count == tokens.count else {
                throw TokenizerError("tokenizer.ggml.token_type has \(raw.count) entries for \(tokens.count) tokens")
            }
            types = raw.map { TokenType(rawValue: $0) ?? .normal }
        }
        var scores: [Float] = []
        if let s = m.floats("tokenizer.ggml.scores") {
            guard s.count == tokens.count else {
                throw TokenizerError("tokenizer.ggml.scores has \(s.count) entries for \(tokens.count) tokens")
            }
            scores = s
        }
        var merges: [(String, String)] = []
        if let ms = m.strings("tokenizer.ggml.merges") {
            merges.reserveCapacity(ms.count)
            for (i, line) in ms.enumerated() {
                guard let sp = line.firstIndex(of: " ") else {
                    throw TokenizerError("tokenizer.ggml.merges[\(i)] \"\(line)\" has no space")
                }
                merges.append((String(line[..<sp]), String(line[line.index(after: sp)...])))
            }
        }
        var pre: PreTokenizerKind? = nil
        if model == .byteLevelBPE {
            guard !merges.isEmpty else { throw TokenizerError("tokenizer.ggml.merges is required for a gpt2 vocabulary") }
            if let o = override { pre = o } else {
                let name = m.string("tokenizer.ggml.pre") ?? "default"
                guard let k = PreTokenizerKind(ggufName: name) else {
                    throw TokenizerError("pre-tokenizer \"\(name)\" is not implemented; pass an override (gpt2, smollm, llama3, qwen2)")
                }
                pre = k
            }
        }
        func id(_ key: String) throws -> Int? {
            guard let v = m.int(key) else { return nil }
            guard v >= 0, v < tokens.count else { throw TokenizerError("\(key) = \(v) is outside the \(tokens.count)-token vocabulary") }
            return v
        }
        self.init(model: model, tokens: tokens, types: types, scores: scores, merges: merges, preTokenizer: pre,
                  bosID: try id("tokenizer.ggml.bos_token_id"), eosID: try id("tokenizer.ggml.eos_token_id"),
                  unknownID: try id("tokenizer.ggml.unknown_token_id"), paddingID: try id("tokenizer.ggml.padding_token_id"),
                  eotID: try id("tokenizer.ggml.eot_token_id"),
                  addBOS: m.bool("tokenizer.ggml.add_bos_token"), addEOS: m.bool("tokenizer.ggml.add_eos_token") ?? false,
                  addSpacePrefix: m.bool("tokenizer.ggml.add_space_prefix"), ignoreMerges: pre == .llama3)
        if eotID == nil, let i = tokens.firstIndex(where: { ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"].contains($0) }) {
            eotID = i
        }
    }
}
