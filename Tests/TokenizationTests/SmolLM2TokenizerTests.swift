import Foundation
import XCTest
import ModelFormats
import Tokenization
import TestSupport

/// CPU seconds of the calling thread (robust to other processes sharing the machine).
func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// The real SmolLM2 vocabulary (skipped when the model file is absent).
final class SmolLM2TokenizerTests: XCTestCase {
    func testVocabularyFromGGUF() throws {
        let (t, _) = try SmolLM2.load()
        XCTAssertEqual(t.model, .byteLevelBPE)
        XCTAssertEqual(t.preTokenizer, .smollm)
        XCTAssertEqual(t.tokenCount, 49152)
        XCTAssertEqual(t.merges.count, 48900, "every merge resolves to vocabulary tokens")
        XCTAssertEqual(t.bosID, 1)
        XCTAssertEqual(t.eosID, 2)
        XCTAssertEqual(t.eotID, 2)
        XCTAssertFalse(t.addBOS)
        XCTAssertEqual(t.token(1), "<|im_start|>")
        XCTAssertEqual(t.type(1), .control)
        XCTAssertEqual(t.type(100), .normal)
    }

    /// Start-up cost: mapping + parsing the GGUF header and building the tokenizer (printed).
    func testLoadTime() throws {
        guard let path = smolLM2Path() else { throw XCTSkip(smolLM2MissingMessage) }
        let c0 = threadCPUSeconds()
        let f = try GGUFFile(path: path)
        let c1 = threadCPUSeconds()
        let t = try Tokenizer(gguf: f.metadata)
        let c2 = threadCPUSeconds()
        _ = try ChatTemplate(gguf: f.metadata)
        XCTAssertEqual(t.tokenCount, 49152)
        print(String(format: "load: GGUF header+metadata %.3f s CPU, tokenizer build %.3f s CPU (%@ build)",
                     c1 - c0, c2 - c1, isReleaseBuild ? "release" : "debug"))
    }

    /// Ids recorded with Hugging Face `tokenizers` on the same vocabulary and merges.
    func testMatchesHuggingFaceReference() throws {
        let (t, _) = try SmolLM2.load()
        let ref = try HFReference.load()
        XCTAssertEqual(ref.texts.count, ref.smollm2_ids.count)
        var mismatches = 0
        for (text, ids) in zip(ref.texts, ref.smollm2_ids) {
            let ours = t.encode(text, addSpecial: false)
            if ours != ids {
                mismatches += 1
                XCTFail("\(text.debugDescription): ours \(ours) reference \(ids)")
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    /// llama.cpp ids, when the fixture produced by the llama.cpp branch is present.
    func testMatchesLlamaCppFixtureWhenPresent() throws {
        let url = fixtureURL("tokenizer/smollm2-ids.json")
        guard let data = try? Data(contentsOf: url) else {
            throw XCTSkip("Tests/Fixtures/tokenizer/smollm2-ids.json (llama.cpp token ids) not present yet")
        }
        let texts = try? Data(contentsOf: fixtureURL("tokenizer/texts.json"))
        let (t, _) = try SmolLM2.load()
        let cases = try Self.parseCases(data, texts: texts)
        XCTAssertFalse(cases.isEmpty, "fixture has no cases")
        var mismatches = 0
        for c in cases {
            let ours = t.encode(c.text, addSpecial: false, parseSpecial: c.parseSpecial)
            if ours != c.ids {
                mismatches += 1
                XCTFail("\(c.text.debugDescription) parseSpecial=\(c.parseSpecial): ours \(ours) llama.cpp \(c.ids)")
            }
        }
        print("llama.cpp fixture: \(cases.count) cases, \(mismatches) mismatches")
    }

    /// Accepts the llama.cpp branch's layout (`{"parseSpecial": [[ids]], "noParseSpecial": [[ids]]}` with the
    /// texts in texts.json), `[{"text", "ids"}]`, `{"cases": [...]}` or `{"texts": [...], "ids": [[...]]}`.
    static func parseCases(_ data: Data, texts: Data? = nil) throws -> [(text: String, ids: [Int], parseSpecial: Bool)] {
        let any = try JSONSerialization.jsonObject(with: data)
        func fromList(_ l: [Any]) -> [(String, [Int], Bool)] {
            l.compactMap { e in
                guard let d = e as? [String: Any], let text = (d["text"] ?? d["prompt"]) as? String,
                      let ids = (d["ids"] ?? d["tokens"]) as? [Int] else { return nil }
                return (text, ids, d["parse_special"] as? Bool ?? true)
            }
        }
        if let l = any as? [Any] { return fromList(l) }
        guard let d = any as? [String: Any] else { return [] }
        if let l = d["cases"] as? [Any] { return fromList(l) }
        if let texts = d["texts"] as? [String], let ids = d["ids"] as? [[Int]] {
            return zip(texts, ids).map { ($0, $1, d["parse_special"] as? Bool ?? true) }
        }
        if let texts, let list = (try? JSONSerialization.jsonObject(with: texts)) as? [String] {
            var out: [(String, [Int], Bool)] = []
            if let p = d["parseSpecial"] as? [[Int]] {
                XCTAssertEqual(p.count, list.count, "parseSpecial ids per text")
                out += zip(list, p).map { ($0, $1, true) }
            }
            if let n = d["noParseSpecial"] as? [[Int]] {
                XCTAssertEqual(n.count, list.count, "noParseSpecial ids per text")
                out += zip(list, n).map { ($0, $1, false) }
            }
            return out
        }
        return []
    }

    /// Known answers read from the vocabulary by hand: common words are single tokens, the space is 'Ġ',
    /// digits are always split one per token, and special tokens are matched before BPE.
    func testKnownAnswers() throws {
        let (t, _) = try SmolLM2.load()
        func id(_ s: String) -> Int { t.id(of: s)! }
        XCTAssertEqual(t.encode("Hello", addSpecial: false), [id("Hello")])
        XCTAssertEqual(t.encode("Hello world", addSpecial: false), [id("Hello"), id("Ġworld")])
        XCTAssertEqual(t.encode(" the", addSpecial: false), [id("Ġthe")])
        XCTAssertEqual(t.encode("2024", addSpecial: false), [id("2"), id("0"), id("2"), id("4")])
        XCTAssertEqual(t.encode("a 1", addSpecial: false), [id("a"), id("Ġ"), id("1")])
        XCTAssertEqual(t.encode("\n", addSpecial: false), [id("Ċ")])
        XCTAssertEqual(t.encode("<|im_start|>user\nHi<|im_end|>", addSpecial: false),
                       [1, id("user"), id("Ċ"), id("Hi"), 2])
        // Without parseSpecial the control token text is ordinary text.
        let plain = t.encode("<|im_start|>", addSpecial: false, parseSpecial: false)
        XCTAssertFalse(plain.contains(1))
        XCTAssertEqual(t.decode(plain), "<|im_start|>")
        XCTAssertEqual(t.encode("Hi", addSpecial: true), [id("Hi")], "SmolLM2 does not add BOS")
    }

    func testRoundTripTrickyCorpus() throws {
        let (t, _) = try SmolLM2.load()
        let ref = try HFReference.load()
        for s in trickyCorpus + ref.texts {
            let ids = t.encode(s, addSpecial: false)
            XCTAssertEqual(t.decode(ids), s, "round trip of \(s.debugDescription) via \(ids)")
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && $0 < t.tokenCount })
        }
        // Byte-level: any token sequence decodes to its exact bytes, so splitting a multi-byte character across
        // tokens and concatenating the bytes restores it.
        let ids = t.encode("👨‍👩‍👧‍👦 日本", addSpecial: false)
        XCTAssertEqual(String(decoding: ids.flatMap { t.bytes(of: $0) }, as: UTF8.self), "👨‍👩‍👧‍👦 日本")
        XCTAssertEqual(t.decode([1, id(t, "Hi"), 2], skipSpecial: true), "Hi")
    }

    private func id(_ t: Tokenizer, _ s: String) -> Int { t.id(of: s)! }

    /// The GGUF vocabulary exported as a Hugging Face tokenizer.json must tokenize identically.
    func testHuggingFaceJSONConstructorAgreesWithGGUF() throws {
        let (t, m) = try SmolLM2.load()
        let tokens = m.strings("tokenizer.ggml.tokens")!, types = m.ints("tokenizer.ggml.token_type")!
        var vocab: [String: Int] = [:]
        for (i, s) in tokens.enumerated() { vocab[s] = i }
        let json: [String: Any] = [
            "added_tokens": tokens.indices.filter { types[$0] == 3 }.map { ["id": $0, "content": tokens[$0], "special": true] },
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Digits", "individual_digits": true],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]]],
            "decoder": ["type": "ByteLevel"],
            "model": ["type": "BPE", "vocab": vocab, "merges": m.strings("tokenizer.ggml.merges")!],
        ]
        let config = #"{"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": false}"#
        let hf = try Tokenizer(huggingFaceJSON: JSONSerialization.data(withJSONObject: json), config: Data(config.utf8))
        XCTAssertEqual(hf.preTokenizer, .smollm)
        XCTAssertEqual(hf.bosID, 1)
        XCTAssertEqual(hf.eosID, 2)
        for s in trickyCorpus { XCTAssertEqual(hf.encode(s), t.encode(s), s.debugDescription) }
    }

    /// Heap merge, incremental scan and the O(n²) reference agree on real words of every length.
    func testMergeStrategiesAgree() throws {
        let (t, _) = try SmolLM2.load()
        var rng = SeededRNG(seed: 11)
        let alphabet = Array("etaoinshrdlu ETAOIN.,'\n\u{e9}\u{65e5}")
        for trial in 0 ..< 300 {
            let n = trial < 100 ? Int.random(in: 2 ... 12, using: &rng) : Int.random(in: 40 ... 160, using: &rng)
            let word = String((0 ..< n).map { _ in alphabet.randomElement(using: &rng)! })
            let start: [Int32] = Array(word.utf8).map { Int32(t.id(of: ByteLevel.encode([$0]))!) }
            var a = start, b = start, c = start
            t.merges.mergeHeap(&a); t.merges.mergeScan(&b); t.merges.mergeReference(&c)
            XCTAssertEqual(a, c, word.debugDescription)
            XCTAssertEqual(b, c, word.debugDescription)
        }
    }

    /// 100k short samples; prints throughput (release builds also bound it).
    func testSpeed100kSamples() throws {
        let (t0, m) = try SmolLM2.load()
        _ = t0
        let t = try Tokenizer(gguf: m) // fresh, empty cache
        let words = ["the", "model", "should", "refuse", "harmful", "requests", "and", "answer", "helpful", "ones",
                     "How", "do", "I", "bake", "bread", "?", "Explain", "quantum", "physics", "simply", "2024", "safety"]
        var rng = SeededRNG(seed: 5)
        let count = isReleaseBuild ? 100_000 : 5_000
        let samples: [String] = (0 ..< count).map { i in
            let n = Int.random(in: 8 ... 30, using: &rng)
            return (0 ..< n).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ") + " #\(i)."
        }
        let chars = samples.reduce(0) { $0 + $1.utf8.count }
        let start = DispatchTime.now().uptimeNanoseconds
        let cpu0 = threadCPUSeconds()
        var tokens = 0
        for s in samples { tokens += t.encode(s).count }
        let cpu = threadCPUSeconds() - cpu0
        let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "tokenizer speed: %d samples, %d bytes, %d tokens in %.3f s wall, %.3f s CPU (%.0f samples/s, %.2f MB/s by CPU time, %@ build)",
                     count, chars, tokens, secs, cpu, Double(count) / cpu, Double(chars) / cpu / 1e6,
                     isReleaseBuild ? "release" : "debug"))
        if isReleaseBuild { XCTAssertLessThan(secs, 10, "100k samples must tokenize in seconds") }
    }

    /// Real prompts and responses from /work/shared/data (all *.normalized.jsonl), rendered with the ChatML
    /// template, tokenized by a fresh tokenizer (cold cache). Prints samples/s.
    func testSpeedOnRealData() throws {
        guard let dir = sharedDataDirectory() else { throw XCTSkip("shared data directory not found") }
        let (_, m) = try SmolLM2.load()
        let t = try Tokenizer(gguf: m)
        let tmpl = try ChatTemplate(gguf: m)
        var samples: [String] = []
        let files = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.lastPathComponent.hasSuffix(".normalized.jsonl") }
        for f in files.sorted(by: { $0.path < $1.path }) {
            guard let text = try? String(contentsOf: f, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let p = o["prompt"] as? String else { continue }
                let r = o["response"] as? String ?? ""
                samples.append(tmpl.render(r.isEmpty ? [.user(p)] : [.user(p), .assistant(r)]).text)
            }
        }
        if !isReleaseBuild { samples = Array(samples.prefix(2000)) }
        XCTAssertGreaterThan(samples.count, 100)
        let bytes = samples.reduce(0) { $0 + $1.utf8.count }
        let start = DispatchTime.now().uptimeNanoseconds
        let cpu0 = threadCPUSeconds()
        var tokens = 0
        for s in samples { tokens += t.encode(s).count }
        let cpu = threadCPUSeconds() - cpu0
        let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "tokenizer speed (real data, cold cache): %d samples, %.1f MB, %d tokens in %.3f s wall, %.3f s CPU = %.0f samples/s, %.2f MB/s, %.0f tokens/s by CPU time (%@ build)",
                     samples.count, Double(bytes) / 1e6, tokens, secs, cpu, Double(samples.count) / cpu, Double(bytes) / cpu / 1e6,
                     Double(tokens) / cpu, isReleaseBuild ? "release" : "debug"))
    }
}
