import Foundation

/// Text <-> token ids for byte-level BPE (GPT-2 family: SmolLM, Llama 3, Qwen 2) and SentencePiece-style
/// vocabularies (Llama 2, TinyLlama). Thread-safe; pre-token results are cached.
///
/// Encoding: special/added tokens are matched first (leftmost, longest at a position), the text between them
/// is split by the pre-tokenizer (byte-level BPE) or `▁`-escaped whole (SentencePiece), and each piece is
/// merged with the pair table. See Docs/TOKENIZER.md.
public final class Tokenizer: @unchecked Sendable {
    public let vocabulary: TokenizerVocabulary
    public var model: TokenizerModelKind { vocabulary.model }
    public var preTokenizer: PreTokenizerKind? { vocabulary.preTokenizer }
    public var tokenCount: Int { vocabulary.tokens.count }
    public var bosID: Int? { vocabulary.bosID }
    public var eosID: Int? { vocabulary.eosID }
    public var eotID: Int? { vocabulary.eotID }
    public var unknownID: Int? { vocabulary.unknownID }
    public var addBOS: Bool { vocabulary.addBOS }
    public var addEOS: Bool { vocabulary.addEOS }

    package let merges: MergeTable
    private let tokenToID: [String: Int32]
    /// Token id for each byte (byte-level char for BPE, `<0xXX>` for SentencePiece); -1 when absent.
    private let byteToken: [Int32]
    /// SentencePiece: token id of each single code point token.
    private let charToken: [UInt32: Int32]
    /// Decoded bytes of each token.
    private let pieces: [[UInt8]]
    private let specials: SpecialMatcher
    private let splitter: PreTokenizer?
    private let wholeWord: [[UInt8]: Int32]
    private let cache = PieceCache()

    /// Builds the tokenizer; throws on inconsistent vocabularies (bad merge entries, wrong array sizes).
    public init(_ v: TokenizerVocabulary) throws {
        vocabulary = v
        let n = v.tokens.count
        guard n > 0, n < Int(Int32.max), v.types.count == n else {
            throw TokenizerError("vocabulary has \(n) tokens and \(v.types.count) types")
        }
        guard v.scores.isEmpty || v.scores.count == n else { throw TokenizerError("scores count \(v.scores.count) != \(n)") }
        var t2i: [String: Int32] = [:]
        t2i.reserveCapacity(n)
        for (i, t) in v.tokens.enumerated() where t2i[t] == nil { t2i[t] = Int32(i) }
        tokenToID = t2i

        var bt = [Int32](repeating: -1, count: 256)
        var pcs: [[UInt8]] = []
        pcs.reserveCapacity(n)
        switch v.model {
        case .byteLevelBPE:
            for b in 0 ..< 256 {
                if let id = t2i[String(Unicode.Scalar(ByteLevel.byteToScalar[b])!)] { bt[b] = id }
            }
            for (i, t) in v.tokens.enumerated() {
                switch v.types[i] {
                case .control, .userDefined: pcs.append(Array(t.utf8))
                default: pcs.append(ByteLevel.decode(t) ?? Array(t.utf8))
                }
            }
        case .sentencePiece:
            for b in 0 ..< 256 {
                let name = "<0x" + String(format: "%02X", b) + ">"
                if let id = t2i[name] { bt[b] = id }
            }
            for (i, t) in v.tokens.enumerated() {
                if v.types[i] == .byte, t.count == 6, t.hasPrefix("<0x"), let b = UInt8(t.dropFirst(3).prefix(2), radix: 16) {
                    pcs.append([b])
                } else if v.types[i] == .normal || v.types[i] == .userDefined {
                    pcs.append(Array(t.replacingOccurrences(of: "\u{2581}", with: " ").utf8))
                } else {
                    pcs.append(Array(t.utf8))
                }
            }
        }
        byteToken = bt
        pieces = pcs

        // Pair table.
        var table = MergeTable()
        if !v.merges.isEmpty {
            for (rank, (a, b)) in v.merges.enumerated() {
                guard let ia = t2i[a], let ib = t2i[b], let im = t2i[a + b] else { continue }
                table.add(ia, ib, rank: UInt32(rank), merged: im)
            }
            guard table.count > 0 else { throw TokenizerError("no merge refers to tokens of the vocabulary") }
        } else if v.model == .sentencePiece {
            // Every vocabulary piece splittable into two pieces is a merge; higher score merges first.
            let mergeable: (Int) -> Bool = { v.types[$0] == .normal || v.types[$0] == .userDefined }
            // NaN scores sort last; pieces longer than 64 code points are never produced by merging (SentencePiece's
            // max_piece_length is 16), which also bounds the O(length²) split enumeration on hostile vocabularies.
            let score: (Int) -> Float = { i in
                let s = v.scores.isEmpty ? 0 : v.scores[i]
                return s.isNaN ? -.infinity : s
            }
            let order = (0 ..< n).filter(mergeable).sorted {
                let sa = score($0), sb = score($1)
                return sa != sb ? sa > sb : $0 < $1
            }
            var rank: UInt32 = 0
            var lastScore: Float? = nil
            for t in order {
                let s = score(t)
                if let l = lastScore, l != s { rank += 1 }
                lastScore = s
                let scalars = Array(v.tokens[t].unicodeScalars)
                if scalars.count < 2 || scalars.count > 64 { continue }
                for k in 1 ..< scalars.count {
                    var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                    l.append(contentsOf: scalars[..<k]); r.append(contentsOf: scalars[k...])
                    if let il = t2i[String(l)], let ir = t2i[String(r)], mergeable(Int(il)), mergeable(Int(ir)) {
                        table.add(il, ir, rank: rank, merged: Int32(t))
                    }
                }
            }
        } else {
            throw TokenizerError("a byte-level BPE vocabulary needs merges")
        }
        merges = table

        var ct: [UInt32: Int32] = [:]
        if v.model == .sentencePiece {
            for (i, t) in v.tokens.enumerated() where v.types[i] == .normal || v.types[i] == .userDefined {
                let u = t.unicodeScalars
                if u.count == 1, ct[u.first!.value] == nil { ct[u.first!.value] = Int32(i) }
            }
        }
        charToken = ct
        specials = SpecialMatcher(tokens: v.tokens, types: v.types)
        if v.model == .byteLevelBPE {
            guard let p = v.preTokenizer else { throw TokenizerError("a byte-level BPE vocabulary needs a pre-tokenizer") }
            splitter = PreTokenizer(kind: p)
        } else {
            splitter = nil
        }
        var ww: [[UInt8]: Int32] = [:]
        if v.ignoreMerges && v.model == .byteLevelBPE {
            for (i, p) in pcs.enumerated() where v.types[i] == .normal && ww[p] == nil { ww[p] = Int32(i) }
        }
        wholeWord = ww
    }

    /// Convenience: GGUF metadata straight to a tokenizer.
    public convenience init(gguf m: TokenizerMetadataSource, preTokenizer: PreTokenizerKind? = nil) throws {
        try self.init(TokenizerVocabulary(gguf: m, preTokenizer: preTokenizer))
    }

    // MARK: Lookup

    public func id(of token: String) -> Int? { tokenToID[token].map(Int.init) }
    public func token(_ id: Int) -> String? { id >= 0 && id < tokenCount ? vocabulary.tokens[id] : nil }
    public func type(_ id: Int) -> TokenType? { id >= 0 && id < tokenCount ? vocabulary.types[id] : nil }
    /// The bytes `id` stands for when decoded (empty for out-of-range ids).
    public func bytes(of id: Int) -> [UInt8] { id >= 0 && id < tokenCount ? pieces[id] : [] }

    // MARK: Encode

    /// Token ids of `text`. `addSpecial` adds BOS/EOS according to the vocabulary's flags; `parseSpecial`
    /// lets control tokens written in the text (e.g. "<|im_start|>") become their ids. User-defined added
    /// tokens are always matched.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 4)
        if addSpecial, addBOS, let b = bosID { out.append(Int32(b)) }
        var bytes = Array(text.utf8)
        bytes.withUnsafeMutableBufferPointer { buf in
            let u = UnsafeBufferPointer(buf)
            var prevSpecial = true
            var start = 0, i = 0
            while i < u.count {
                if let (len, id) = specials.match(u, at: i, parseSpecial: parseSpecial) {
                    if i > start { encodeRaw(UnsafeBufferPointer(rebasing: u[start ..< i]), prevSpecial: prevSpecial, &out) }
                    out.append(id)
                    prevSpecial = true
                    i += len; start = i
                    continue
                }
                i += 1
            }
            if start < u.count { encodeRaw(UnsafeBufferPointer(rebasing: u[start...]), prevSpecial: prevSpecial, &out) }
        }
        if addSpecial, addEOS, let e = eosID { out.append(Int32(e)) }
        return out.map(Int.init)
    }

    private func encodeRaw(_ bytes: UnsafeBufferPointer<UInt8>, prevSpecial: Bool, _ out: inout [Int32]) {
        switch model {
        case .byteLevelBPE: encodeByteLevel(bytes, &out)
        case .sentencePiece: encodeSentencePiece(bytes, prevSpecial: prevSpecial, &out)
        }
    }

    /// Decodes valid UTF-8 into code points and their byte offsets (offsets.count == cps.count + 1).
    static func codePoints(_ b: UnsafeBufferPointer<UInt8>, _ cps: inout [UInt32], _ offsets: inout [Int]) {
        var i = 0
        while i < b.count {
            offsets.append(i)
            let c = UInt32(b[i])
            if c < 0x80 { cps.append(c); i += 1 }
            else if c < 0xE0, i + 1 < b.count { cps.append((c & 0x1F) << 6 | UInt32(b[i + 1] & 0x3F)); i += 2 }
            else if c < 0xF0, i + 2 < b.count {
                cps.append((c & 0x0F) << 12 | UInt32(b[i + 1] & 0x3F) << 6 | UInt32(b[i + 2] & 0x3F)); i += 3
            } else if i + 3 < b.count {
                cps.append((c & 0x07) << 18 | UInt32(b[i + 1] & 0x3F) << 12 | UInt32(b[i + 2] & 0x3F) << 6 | UInt32(b[i + 3] & 0x3F)); i += 4
            } else { cps.append(0xFFFD); i = b.count }
        }
        offsets.append(b.count)
    }

    private func encodeByteLevel(_ bytes: UnsafeBufferPointer<UInt8>, _ out: inout [Int32]) {
        var cps: [UInt32] = [], offs: [Int] = []
        cps.reserveCapacity(bytes.count); offs.reserveCapacity(bytes.count + 1)
        Tokenizer.codePoints(bytes, &cps, &offs)
        let cls = cps.map(CharClass.of)
        var ends: [Int] = []
        ends.reserveCapacity(cps.count / 3 + 1)
        cps.withUnsafeBufferPointer { c in cls.withUnsafeBufferPointer { k in splitter!.split(c, k, into: &ends) } }
        var s = 0
        for e in ends {
            let word = UnsafeBufferPointer(rebasing: bytes[offs[s] ..< offs[e]])
            s = e
            encodeWord(word, &out)
        }
    }

    /// One pre-token through the cache and the merge loop.
    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, _ out: inout [Int32]) {
        if word.count == 1 {
            let t = byteToken[Int(word[0])]
            if t >= 0 { out.append(t) } else if let u = unknownID { out.append(Int32(u)) }
            return
        }
        let h = PieceCache.hash(word)
        if cache.get(word, hash: h, into: &out) { return }
        var syms: [Int32]
        if !wholeWord.isEmpty, let w = wholeWord[Array(word)] {
            syms = [w]
        } else {
            syms = []
            syms.reserveCapacity(word.count)
            for b in word {
                let t = byteToken[Int(b)]
                if t >= 0 { syms.append(t) } else if let u = unknownID { syms.append(Int32(u)) }
            }
            merges.merge(&syms)
        }
        cache.put(word, hash: h, syms)
        out.append(contentsOf: syms)
    }

    private func encodeSentencePiece(_ bytes: UnsafeBufferPointer<UInt8>, prevSpecial: Bool, _ out: inout [Int32]) {
        var cps: [UInt32] = [], offs: [Int] = []
        cps.reserveCapacity(bytes.count + 1); offs.reserveCapacity(bytes.count + 2)
        if vocabulary.addSpacePrefix && prevSpecial { cps.append(0x20) }
        Tokenizer.codePoints(bytes, &cps, &offs)
        // Symbols: single-character token ids; unknown characters as -(code point + 1), which never merge.
        var syms = cps.map { c -> Int32 in
            let c2 = c == 0x20 ? 0x2581 : c
            return charToken[c2] ?? -Int32(c2) - 1
        }
        merges.merge(&syms)
        for s in syms {
            if s >= 0 { out.append(s); continue }
            let scalar = UInt32(-(s + 1))
            var ch = Unicode.Scalar(scalar).map { Array(String($0).utf8) } ?? [0xEF, 0xBF, 0xBD]
            if ch.isEmpty { ch = [0xEF, 0xBF, 0xBD] }
            for b in ch {
                let t = byteToken[Int(b)]
                if t >= 0 { out.append(t) } else if let u = unknownID { out.append(Int32(u)) }
            }
        }
    }

    // MARK: Decode

    /// Raw bytes of `ids` (may end inside a UTF-8 sequence when streaming). `skipSpecial` drops control tokens.
    public func decodeBytes(_ ids: [Int], skipSpecial: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        var first = true
        for id in ids where id >= 0 && id < tokenCount {
            let t = vocabulary.types[id]
            if skipSpecial && t == .control { continue }
            var p = pieces[id]
            if first && model == .sentencePiece && vocabulary.addSpacePrefix && t != .control && p.first == 0x20 {
                p.removeFirst()
            }
            if t != .control { first = false }
            out.append(contentsOf: p)
        }
        return out
    }

    /// Text of `ids` (invalid UTF-8 repaired with U+FFFD).
    public func decode(_ ids: [Int], skipSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }

    /// Number of cached pre-tokens (for tests and benchmarks).
    public var cachedPieceCount: Int { cache.count }
}

/// Special and added tokens indexed by first byte, longest first.
struct SpecialMatcher {
    private var byFirst: [[(bytes: [UInt8], id: Int32, control: Bool)]] = Array(repeating: [], count: 256)

    init(tokens: [String], types: [TokenType]) {
        for (i, t) in tokens.enumerated() where types[i] == .control || types[i] == .userDefined {
            let b = Array(t.utf8)
            guard !b.isEmpty else { continue }
            byFirst[Int(b[0])].append((b, Int32(i), types[i] == .control))
        }
        for k in 0 ..< 256 where byFirst[k].count > 1 { byFirst[k].sort { $0.bytes.count > $1.bytes.count } }
    }

    @inline(__always)
    func match(_ u: UnsafeBufferPointer<UInt8>, at i: Int, parseSpecial: Bool) -> (Int, Int32)? {
        let cands = byFirst[Int(u[i])]
        if cands.isEmpty { return nil }
        for c in cands where (parseSpecial || !c.control) && c.bytes.count <= u.count - i {
            var ok = true
            for k in 1 ..< c.bytes.count where u[i + k] != c.bytes[k] { ok = false; break }
            if ok { return (c.bytes.count, c.id) }
        }
        return nil
    }
}
