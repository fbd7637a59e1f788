import Foundation

extension TokenizerVocabulary {
    /// Reads a Hugging Face `tokenizer.json` (model type BPE) and optionally `tokenizer_config.json`
    /// (bos/eos tokens, add_bos_token/add_eos_token, chat_template).
    ///
    /// Byte-level vocabularies are recognised by a `ByteLevel` pre-tokenizer or decoder; the split rules by the
    /// pre-tokenizer configuration (Digits + ByteLevel: smollm; Split regex with `\p{N}{1,3}`: llama3; with
    /// `\p{N}` and the Llama-3 letter rule: qwen2; ByteLevel alone: gpt2), unless `preTokenizer` is given.
    /// Vocabularies with `byte_fallback` and a `▁` normalizer / Metaspace are SentencePiece-style.
    public init(huggingFaceJSON data: Data, config: Data? = nil, preTokenizer override: PreTokenizerKind? = nil) throws {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TokenizerError("tokenizer.json is not a JSON object")
        }
        guard let model = root["model"] as? [String: Any] else { throw TokenizerError("tokenizer.json has no model") }
        let mtype = model["type"] as? String ?? "BPE"
        guard mtype == "BPE" else { throw TokenizerError("tokenizer.json model type \(mtype) is not supported (BPE only)") }
        guard let vocab = model["vocab"] as? [String: Any] else { throw TokenizerError("model.vocab missing") }
        let added = root["added_tokens"] as? [[String: Any]] ?? []

        var maxID = -1
        var pairs: [(String, Int)] = []
        pairs.reserveCapacity(vocab.count)
        for (t, v) in vocab {
            guard let id = (v as? NSNumber)?.intValue, id >= 0 else { throw TokenizerError("vocab entry \(t) has a bad id") }
            pairs.append((t, id)); maxID = max(maxID, id)
        }
        for a in added {
            guard let id = (a["id"] as? NSNumber)?.intValue, id >= 0, a["content"] is String else {
                throw TokenizerError("added_tokens entry without id/content")
            }
            maxID = max(maxID, id)
        }
        let limit = 4 * (vocab.count + added.count) + 1024
        guard maxID >= 0, maxID < limit else { throw TokenizerError("token id \(maxID) is absurd for \(vocab.count) entries") }
        var tokens = [String](repeating: "", count: maxID + 1)
        var types = [TokenType](repeating: .unused, count: maxID + 1)
        for (t, id) in pairs { tokens[id] = t; types[id] = .normal }
        for a in added {
            let id = (a["id"] as! NSNumber).intValue
            tokens[id] = a["content"] as! String
            types[id] = (a["special"] as? Bool ?? false) ? .control : .userDefined
        }

        var merges: [(String, String)] = []
        for (i, m) in (model["merges"] as? [Any] ?? []).enumerated() {
            if let s = m as? String, let sp = s.firstIndex(of: " ") {
                merges.append((String(s[..<sp]), String(s[s.index(after: sp)...])))
            } else if let a = m as? [String], a.count == 2 {
                merges.append((a[0], a[1]))
            } else {
                throw TokenizerError("model.merges[\(i)] is neither \"a b\" nor [a, b]")
            }
        }

        // Flatten pre-tokenizer / normalizer / decoder configs.
        func flatten(_ any: Any?, key: String) -> [[String: Any]] {
            guard let d = any as? [String: Any] else { return [] }
            if let inner = d[key] as? [Any] { return inner.flatMap { flatten($0, key: key) } }
            return [d]
        }
        let pres = flatten(root["pre_tokenizer"], key: "pretokenizers")
        let norms = flatten(root["normalizer"], key: "normalizers")
        let decs = flatten(root["decoder"], key: "decoders")
        let hasByteLevel = pres.contains { $0["type"] as? String == "ByteLevel" } || decs.contains { $0["type"] as? String == "ByteLevel" }
        let kind: TokenizerModelKind = hasByteLevel ? .byteLevelBPE : .sentencePiece

        var pre: PreTokenizerKind? = nil
        var spacePrefix = false
        if kind == .byteLevelBPE {
            if let o = override { pre = o } else {
                let patterns = pres.compactMap { p -> String? in
                    guard p["type"] as? String == "Split", let pat = p["pattern"] as? [String: Any] else { return nil }
                    return (pat["Regex"] as? String) ?? (pat["String"] as? String)
                }
                let digits = pres.contains { $0["type"] as? String == "Digits" && ($0["individual_digits"] as? Bool ?? false) }
                if let pat = patterns.first {
                    if pat.contains("\\p{N}{1,3}") { pre = .llama3 }
                    else if pat.contains("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+") && pat.contains("\\p{N}|") { pre = .qwen2 }
                    else if pat.contains(" ?\\p{L}+| ?\\p{N}+") { pre = digits ? .smollm : .gpt2 }
                } else if pres.contains(where: { $0["type"] as? String == "ByteLevel" && ($0["use_regex"] as? Bool ?? true) }) {
                    pre = digits ? .smollm : .gpt2
                }
                guard pre != nil else {
                    throw TokenizerError("pre-tokenizer configuration not recognised; pass an override (gpt2, smollm, llama3, qwen2)")
                }
            }
        } else {
            for (i, t) in tokens.enumerated() where types[i] == .normal && t.count == 6 && t.hasPrefix("<0x") && t.hasSuffix(">") {
                types[i] = .byte
            }
            spacePrefix = norms.contains { $0["type"] as? String == "Prepend" && ($0["prepend"] as? String) == "\u{2581}" }
                || pres.contains { $0["type"] as? String == "Metaspace" && ($0["prepend_scheme"] as? String ?? "always") != "never" }
            if let unk = model["unk_token"] as? String, let i = tokens.firstIndex(of: unk) { types[i] = .unknown }
        }

        // Special ids from tokenizer_config.json, else from the post-processor template.
        var bos: Int? = nil, eos: Int? = nil, addBOS: Bool? = nil, addEOS = false
        func tokenString(_ v: Any?) -> String? {
            if let s = v as? String { return s }
            if let d = v as? [String: Any] { return d["content"] as? String }
            return nil
        }
        let index = Dictionary(tokens.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        if let config, let c = (try? JSONSerialization.jsonObject(with: config)) as? [String: Any] {
            bos = tokenString(c["bos_token"]).flatMap { index[$0] }
            eos = tokenString(c["eos_token"]).flatMap { index[$0] }
            addBOS = c["add_bos_token"] as? Bool
            addEOS = c["add_eos_token"] as? Bool ?? false
        }
        if bos == nil, let pp = root["post_processor"] as? [String: Any], let single = pp["single"] as? [[String: Any]],
           let first = single.first?["SpecialToken"] as? [String: Any], let name = first["id"] as? String {
            bos = index[name]
            if addBOS == nil { addBOS = bos != nil }
        }
        let unk = (model["unk_token"] as? String).flatMap { index[$0] }
        self.init(model: kind, tokens: tokens, types: types, merges: merges, preTokenizer: pre,
                  bosID: bos, eosID: eos, unknownID: unk, addBOS: addBOS ?? (kind == .sentencePiece),
                  addEOS: addEOS, addSpacePrefix: spacePrefix, ignoreMerges: model["ignore_merges"] as? Bool ?? false)
        if let i = tokens.firstIndex(where: { ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>"].contains($0) }) {
            eotID = i
        }
    }
}

extension Tokenizer {
    /// Convenience: `tokenizer.json` (+ optional `tokenizer_config.json`) straight to a tokenizer.
    public convenience init(huggingFaceJSON data: Data, config: Data? = nil, preTokenizer: PreTokenizerKind? = nil) throws {
        try self.init(TokenizerVocabulary(huggingFaceJSON: data, config: config, preTokenizer: preTokenizer))
    }
}

extension PreTokenizerKind {
    /// Splits `text` into pre-tokens with these rules (for tests and inspection; the encoder works on bytes).
    public func split(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var cps: [UInt32] = [], offs: [Int] = []
        bytes.withUnsafeBufferPointer { Tokenizer.codePoints($0, &cps, &offs) }
        let cls = cps.map(CharClass.of)
        var ends: [Int] = []
        cps.withUnsafeBufferPointer { c in cls.withUnsafeBufferPointer { k in PreTokenizer(kind: self).split(c, k, into: &ends) } }
        var out: [String] = []
        var s = 0
        for e in ends {
            out.append(String(decoding: bytes[offs[s] ..< offs[e]], as: UTF8.self)); s = e
        }
        return out
    }
}
