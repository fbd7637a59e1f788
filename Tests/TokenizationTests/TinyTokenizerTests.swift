import Foundation
import XCTest
import ModelFormats
import Tokenization
import TestSupport

/// Tokenizers built from tiny hand-made vocabularies: known answers derivable by hand, no model file needed.
final class TinyTokenizerTests: XCTestCase {
    /// 256 byte-level tokens, then merged tokens, then one control token.
    static func byteLevelVocabulary(merges: [(String, String)], pre: PreTokenizerKind = .gpt2) -> TokenizerVocabulary {
        var tokens = (0 ..< 256).map { ByteLevel.encode([UInt8($0)]) }
        for (a, b) in merges where !tokens.contains(a + b) { tokens.append(a + b) }
        tokens.append("<|end|>")
        var types = [TokenType](repeating: .normal, count: tokens.count)
        types[types.count - 1] = .control
        return TokenizerVocabulary(model: .byteLevelBPE, tokens: tokens, types: types, merges: merges, preTokenizer: pre,
                                   eosID: tokens.count - 1)
    }

    static let helloMerges: [(String, String)] = [
        ("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld"),
    ]

    func testByteLevelKnownAnswers() throws {
        let t = try Tokenizer(Self.byteLevelVocabulary(merges: Self.helloMerges))
        func id(_ s: String) -> Int { t.id(of: s)! }
        XCTAssertEqual(t.encode("hello world"), [id("hello"), id("Ġworld")])
        XCTAssertEqual(t.encode("hello<|end|>"), [id("hello"), t.eosID!])
        XCTAssertEqual(t.encode("hello<|end|>", parseSpecial: false).count, 1 + 7)
        XCTAssertEqual(t.encode("hellow"), [id("hello"), id("w")])
        XCTAssertEqual(t.encode("\n"), [id("Ċ")])
        XCTAssertEqual(t.encode("é"), [id("Ã"), id("©")], "unmerged multi-byte characters stay as byte tokens")
        for s in trickyCorpus { XCTAssertEqual(t.decode(t.encode(s)), s, s.debugDescription) }
    }

    func testMergeRankOrderDecides() throws {
        let ab = try Tokenizer(Self.byteLevelVocabulary(merges: [("a", "b"), ("b", "c")]))
        XCTAssertEqual(ab.encode("abc"), [ab.id(of: "ab")!, ab.id(of: "c")!])
        let bc = try Tokenizer(Self.byteLevelVocabulary(merges: [("b", "c"), ("a", "b")]))
        XCTAssertEqual(bc.encode("abc"), [bc.id(of: "a")!, bc.id(of: "bc")!])
        // Equal pairs: leftmost first, so "aaa" -> "aa" "a".
        let aa = try Tokenizer(Self.byteLevelVocabulary(merges: [("a", "a")]))
        XCTAssertEqual(aa.encode("aaa"), [aa.id(of: "aa")!, aa.id(of: "a")!])
        XCTAssertEqual(aa.encode(String(repeating: "a", count: 101)),
                       Array(repeating: aa.id(of: "aa")!, count: 50) + [aa.id(of: "a")!], "heap path (long word)")
    }

    func testHuggingFaceJSONByteLevel() throws {
        let v = Self.byteLevelVocabulary(merges: Self.helloMerges)
        var vocab: [String: Int] = [:]
        for (i, s) in v.tokens.enumerated() where v.types[i] == .normal { vocab[s] = i }
        // Newer tokenizers write merges as pairs; both forms are accepted.
        let mergesAsPairs = Self.helloMerges.map { [$0.0, $0.1] }
        for merges in [Self.helloMerges.map { "\($0.0) \($0.1)" } as [Any], mergesAsPairs as [Any]] {
            let json: [String: Any] = [
                "added_tokens": [["id": v.tokens.count - 1, "content": "<|end|>", "special": true]],
                "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
                "decoder": ["type": "ByteLevel"],
                "model": ["type": "BPE", "vocab": vocab, "merges": merges],
            ]
            let cfg = #"{"eos_token": {"content": "<|end|>"}, "add_bos_token": false}"#
            let t = try Tokenizer(huggingFaceJSON: JSONSerialization.data(withJSONObject: json), config: Data(cfg.utf8))
            XCTAssertEqual(t.preTokenizer, .gpt2)
            XCTAssertEqual(t.eosID, v.tokens.count - 1)
            XCTAssertEqual(t.type(v.tokens.count - 1), .control)
            XCTAssertEqual(t.encode("hello world<|end|>"), [t.id(of: "hello")!, t.id(of: "Ġworld")!, v.tokens.count - 1])
        }
        XCTAssertThrowsError(try Tokenizer(huggingFaceJSON: Data("[]".utf8)))
        XCTAssertThrowsError(try Tokenizer(huggingFaceJSON: Data(#"{"model": {"type": "Unigram", "vocab": []}}"#.utf8)))
    }

    // MARK: SentencePiece-style

    static func spmVocabulary() -> TokenizerVocabulary {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [TokenType] = [.unknown, .control, .control]
        var scores: [Float] = [0, 0, 0]
        for b in 0 ..< 256 { tokens.append(String(format: "<0x%02X>", b)); types.append(.byte); scores.append(0) }
        let pieces: [(String, Float)] = [
            ("▁", -1), ("h", -2), ("e", -2), ("l", -2), ("o", -2), ("w", -2), ("r", -2), ("d", -2),
            ("ll", -1), ("he", -2), ("hell", -1.5), ("hello", -1.2), ("▁hello", -1.1), ("▁w", -5), ("wo", -4),
            ("or", -3), ("ld", -2.5), ("wor", -3.5), ("world", -3.6), ("▁world", -3.7),
        ]
        for (p, s) in pieces { tokens.append(p); types.append(.normal); scores.append(s) }
        return TokenizerVocabulary(model: .sentencePiece, tokens: tokens, types: types, scores: scores,
                                   bosID: 1, eosID: 2, unknownID: 0)
    }

    func testSentencePieceKnownAnswers() throws {
        let t = try Tokenizer(Self.spmVocabulary())
        func id(_ s: String) -> Int { t.id(of: s)! }
        XCTAssertTrue(t.addBOS)
        // Hand-derived merge order: ll, he, hell, hello, ▁hello, ld, or, wor, world, ▁world.
        XCTAssertEqual(t.encode("hello world"), [1, id("▁hello"), id("▁world")])
        XCTAssertEqual(t.encode("hello world", addSpecial: false), [id("▁hello"), id("▁world")])
        // Byte fallback for characters outside the vocabulary.
        XCTAssertEqual(t.encode("hello 😀", addSpecial: false),
                       [id("▁hello"), id("▁"), id("<0xF0>"), id("<0x9F>"), id("<0x98>"), id("<0x80>")])
        XCTAssertEqual(t.encode("\n", addSpecial: false), [id("▁"), id("<0x0A>")])
        // A control token in the text; the fragment after it gets the space prefix again.
        XCTAssertEqual(t.encode("<s>hello", addSpecial: false), [1, id("▁hello")])
        for s in trickyCorpus where !s.isEmpty {
            let ids = t.encode(s, addSpecial: false, parseSpecial: false)
            XCTAssertEqual(t.decode(ids), s, s.debugDescription)
        }
        XCTAssertEqual(t.decode(t.encode("hello world"), skipSpecial: true), "hello world")
    }

    func testSentencePieceFromGGUFMetadata() throws {
        let v = Self.spmVocabulary()
        var w = GGUFWriter()
        w.set("tokenizer.ggml.model", .string("llama"))
        w.set("tokenizer.ggml.tokens", .strings(v.tokens))
        w.set("tokenizer.ggml.scores", .float32s(v.scores))
        w.set("tokenizer.ggml.token_type", .int32s(v.types.map { Int32($0.rawValue) }))
        w.set("tokenizer.ggml.bos_token_id", .uint32(1))
        w.set("tokenizer.ggml.eos_token_id", .uint32(2))
        w.set("tokenizer.ggml.unknown_token_id", .uint32(0))
        let f = try GGUFFile(data: w.serialize())
        let t = try Tokenizer(gguf: f.metadata)
        XCTAssertEqual(t.model, .sentencePiece)
        XCTAssertEqual(t.encode("hello world"), [1, t.id(of: "▁hello")!, t.id(of: "▁world")!])

        var bad = w
        bad.set("tokenizer.ggml.bos_token_id", .uint32(99999))
        XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(data: bad.serialize()).metadata))
        bad = w
        bad.set("tokenizer.ggml.scores", .float32s([1, 2]))
        XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(data: bad.serialize()).metadata))
        bad = w
        bad.set("tokenizer.ggml.model", .string("bert"))
        XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(data: bad.serialize()).metadata))
    }

    /// Hostile or inconsistent vocabularies throw (or degrade) instead of crashing.
    func testHostileVocabularies() throws {
        func gguf(_ edit: (inout GGUFWriter) -> Void) throws -> GGUFMetadata {
            var w = GGUFWriter()
            w.set("tokenizer.ggml.model", .string("gpt2"))
            w.set("tokenizer.ggml.pre", .string("gpt2"))
            w.set("tokenizer.ggml.tokens", .strings((0 ..< 256).map { ByteLevel.encode([UInt8($0)]) } + ["ab"]))
            w.set("tokenizer.ggml.merges", .strings(["a b"]))
            edit(&w)
            return try GGUFFile(data: w.serialize()).metadata
        }
        XCTAssertEqual(try Tokenizer(gguf: gguf { _ in }).encode("ab"), [256])
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.merges", .strings(["ab"])) }))
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.merges", .strings(["x y"])) }))
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.merges", .array(.string, [])) }))
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.tokens", .array(.string, [])) }))
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.tokens", .int32s([1, 2])) }))
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.token_type", .int32s([1])) }))
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.pre", .string("mystery")) }))
        XCTAssertNoThrow(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.pre", .string("mystery")) }, preTokenizer: .gpt2))
        XCTAssertThrowsError(try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.eos_token_id", .int32(-1)) }))
        // Unknown token types read as normal; out-of-range ids in decode are ignored.
        let t = try Tokenizer(gguf: gguf { $0.set("tokenizer.ggml.token_type", .int32s([Int32](repeating: 42, count: 257))) })
        XCTAssertEqual(t.decode([-5, 256, 1_000_000]), "ab")
        // SentencePiece: NaN scores and a very long piece.
        var v = Self.spmVocabulary()
        v.scores = v.scores.map { $0 == -2 ? .nan : $0 }
        v.tokens.append(String(repeating: "l", count: 100_000)); v.types.append(.normal); v.scores.append(10)
        let spm = try Tokenizer(v)
        let ids = spm.encode("hello world", addSpecial: false)
        XCTAssertEqual(spm.decode(ids), "hello world")
    }

    func testByteLevelTable() {
        XCTAssertEqual(ByteLevel.byteToScalar[0x20], 0x120)   // ' ' -> 'Ġ'
        XCTAssertEqual(ByteLevel.byteToScalar[0x0A], 0x10A)   // '\n' -> 'Ċ'
        XCTAssertEqual(ByteLevel.byteToScalar[0x41], 0x41)
        XCTAssertEqual(Set(ByteLevel.byteToScalar).count, 256)
        let all = (0 ..< 256).map { UInt8($0) }
        XCTAssertEqual(ByteLevel.decode(ByteLevel.encode(all)), all)
        XCTAssertNil(ByteLevel.decode("日"))
    }
}
