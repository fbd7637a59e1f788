import Foundation

/// Hyperparameters of a Llama-family Hugging Face checkpoint, parsed from `config.json`.
public struct HFLlamaConfig: Sendable, Equatable {
    public var modelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    /// `head_dim` when given, else hidden_size / num_attention_heads.
    public var headDim: Int
    public var bosTokenID: Int?
    /// The first id when `eos_token_id` is a list.
    public var eosTokenID: Int?
    public var eosTokenIDs: [Int]

    /// Parses and validates `config.json` bytes. Required: hidden_size, intermediate_size, num_hidden_layers,
    /// num_attention_heads, vocab_size. Defaults follow transformers' LlamaConfig.
    public init(json data: Data) throws {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw FormatError(.invalidValue, "config.json", "not valid JSON: \(error.localizedDescription)")
        }
        guard let d = any as? [String: Any] else { throw FormatError(.invalidValue, "config.json", "not a JSON object") }
        func int(_ k: String) throws -> Int? {
            guard let v = d[k], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, !(String(cString: n.objCType) == "c"), n.doubleValue.rounded() == n.doubleValue else {
                throw FormatError(.typeMismatch, k, "expected an integer, found \(v)")
            }
            return n.intValue
        }
        func req(_ k: String) throws -> Int {
            guard let v = try int(k) else { throw FormatError(.missing, k, "required in config.json") }
            guard v > 0 else { throw FormatError(.invalidValue, k, "must be positive, is \(v)") }
            return v
        }
        func double(_ k: String, _ def: Double) throws -> Double {
            guard let v = d[k], !(v is NSNull) else { return def }
            guard let n = v as? NSNumber else { throw FormatError(.typeMismatch, k, "expected a number, found \(v)") }
            return n.doubleValue
        }
        modelType = d["model_type"] as? String ?? "llama"
        hiddenSize = try req("hidden_size")
        intermediateSize = try req("intermediate_size")
        numHiddenLayers = try req("num_hidden_layers")
        numAttentionHeads = try req("num_attention_heads")
        numKeyValueHeads = try int("num_key_value_heads") ?? numAttentionHeads
        vocabSize = try req("vocab_size")
        maxPositionEmbeddings = try int("max_position_embeddings") ?? 2048
        rmsNormEps = try double("rms_norm_eps", 1e-6)
        ropeTheta = try double("rope_theta", 10000)
        tieWordEmbeddings = (d["tie_word_embeddings"] as? Bool) ?? false
        headDim = try int("head_dim") ?? (hiddenSize / numAttentionHeads)
        bosTokenID = try int("bos_token_id")
        if let list = d["eos_token_id"] as? [Any] {
            eosTokenIDs = list.compactMap { ($0 as? NSNumber)?.intValue }
        } else {
            eosTokenIDs = try int("eos_token_id").map { [$0] } ?? []
        }
        eosTokenID = eosTokenIDs.first
        guard numKeyValueHeads > 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw FormatError(.invalidValue, "num_key_value_heads", "\(numKeyValueHeads) does not divide \(numAttentionHeads) heads")
        }
        guard headDim > 0, headDim % 2 == 0 else {
            throw FormatError(.invalidValue, "head_dim", "head dimension \(headDim) must be positive and even (RoPE pairs)")
        }
        guard rmsNormEps > 0, ropeTheta > 0 else {
            throw FormatError(.invalidValue, "rms_norm_eps/rope_theta", "must be positive")
        }
    }

    public init(path: String) throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw FormatError(.io, path, "cannot read: \(error.localizedDescription)")
        }
        try self.init(json: data)
    }
}
