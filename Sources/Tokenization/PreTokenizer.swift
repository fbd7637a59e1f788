import Foundation

/// Pre-tokenizer split rules (the regexes llama.cpp and Hugging Face use per vocabulary type), implemented by
/// hand as single forward scans over code points. Docs/TOKENIZER.md lists the regex each one implements.
public enum PreTokenizerKind: String, Sendable, CaseIterable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// SmolLM / StarCoder: first isolate every `\p{N}` code point, then the GPT-2 rules inside each piece.
    case smollm
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen 2: the Llama 3 rules with `\p{N}` (one digit per piece) instead of `\p{N}{1,3}`.
    case qwen2

    /// Maps GGUF `tokenizer.ggml.pre` names to a kind (nil when we do not implement that one).
    public init?(ggufName: String) {
        switch ggufName {
        case "gpt2", "gpt-2", "default", "mpt", "olmo", "jais": self = .gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b": self = .smollm
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe": self = .llama3
        case "qwen2", "stablelm2", "deepseek-r1-qwen", "megrez": self = .qwen2
        default: return nil
        }
    }
}

/// Character classes the split rules need, one byte per code point.
enum CharClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4

    private static let ascii: [UInt8] = (0 ..< 128).map { classify(UInt32($0)) }

    @inline(__always)
    static func of(_ c: UInt32) -> UInt8 { c < 128 ? ascii[Int(c)] : classify(c) }

    static func classify(_ c: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(c) else { return 0 }
        let p = s.properties
        if p.isWhitespace { return whitespace }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return 0
        }
    }
}

/// Splits `cps[0..<n]` (with classes `cls`) into pieces; appends the end index of each piece to `ends`.
struct PreTokenizer {
    let kind: PreTokenizerKind

    func split(_ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, into ends: inout [Int]) {
        let n = cps.count
        switch kind {
        case .gpt2: gpt2(cps, cls, 0, n, &ends)
        case .smollm:
            // \p{N} isolated first: each digit is its own piece, and no rule may cross it.
            var start = 0
            for i in 0 ..< n where cls[i] == CharClass.number {
                if i > start { gpt2(cps, cls, start, i, &ends) }
                ends.append(i + 1)
                start = i + 1
            }
            if start < n { gpt2(cps, cls, start, n, &ends) }
        case .llama3: llama3(cps, cls, 0, n, maxDigits: 3, &ends)
        case .qwen2: llama3(cps, cls, 0, n, maxDigits: 1, &ends)
        }
    }

    @inline(__always)
    private static func isContractionTail(_ a: UInt32, _ b: UInt32?, caseInsensitive: Bool) -> Int {
        // Returns the number of code points after the apostrophe (1 or 2), or 0.
        var a = a, b = b
        if caseInsensitive {
            if a >= 65 && a <= 90 { a += 32 }
            if let x = b, x >= 65 && x <= 90 { b = x + 32 }
        }
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 1 }          // s t m d
        if let b {
            if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 2 } // re ve ll
        }
        return 0
    }

    /// GPT-2 rules on [lo, hi).
    private func gpt2(_ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int,
                      _ ends: inout [Int]) {
        let L = CharClass.letter, N = CharClass.number, W = CharClass.whitespace
        var pos = lo
        while pos < hi {
            let c = cps[pos]
            if c == 0x27, pos + 1 < hi {
                let k = Self.isContractionTail(cps[pos + 1], pos + 2 < hi ? cps[pos + 2] : nil, caseInsensitive: false)
                if k > 0 { pos += 1 + k; ends.append(pos); continue }
            }
            // Class of the code point after an optional leading space.
            let hasSpace = c == 0x20
            let q = hasSpace ? pos + 1 : pos
            if q < hi {
                let k = cls[q]
                if k == L || k == N {
                    var e = q + 1
                    while e < hi && cls[e] == k { e += 1 }
                    pos = e; ends.append(pos); continue
                }
                if k == 0 {
                    var e = q + 1
                    while e < hi && cls[e] == 0 { e += 1 }
                    pos = e; ends.append(pos); continue
                }
            }
            var w = 0
            while pos + w < hi && cls[pos + w] == W { w += 1 }
            if w > 1 && pos + w < hi { pos += w - 1; ends.append(pos); continue }   // \s+(?!\S)
            if w > 0 { pos += w; ends.append(pos); continue }                        // \s+
            pos += 1; ends.append(pos)
        }
    }

    /// Llama 3 / Qwen 2 rules on [lo, hi).
    private func llama3(_ cps: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int,
                        maxDigits: Int, _ ends: inout [Int]) {
        let L = CharClass.letter, N = CharClass.number, W = CharClass.whitespace
        var pos = lo
        while pos < hi {
            let c = cps[pos], k = cls[pos]
            if c == 0x27, pos + 1 < hi {
                let t = Self.isContractionTail(cps[pos + 1], pos + 2 < hi ? cps[pos + 2] : nil, caseInsensitive: true)
                if t > 0 { pos += 1 + t; ends.append(pos); continue }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(c == 0x0D || c == 0x0A || k == N) {
                if k == L || (pos + 1 < hi && cls[pos + 1] == L) {
                    var e = pos + 1
                    while e < hi && cls[e] == L { e += 1 }
                    pos = e; ends.append(pos); continue
                }
            }
            // \p{N}{1,maxDigits}
            if k == N {
                var e = pos
                while e < hi && cls[e] == N {
                    e += 1
                    if e - pos == maxDigits { break }
                }
                pos = e; ends.append(pos); continue
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            let q = c == 0x20 ? pos + 1 : pos
            if q < hi && cls[q] == 0 {
                var e = q + 1
                while e < hi && cls[e] == 0 { e += 1 }
                while e < hi && (cps[e] == 0x0D || cps[e] == 0x0A) { e += 1 }
                pos = e; ends.append(pos); continue
            }
            var w = 0, lastNL = -1
            while pos + w < hi && cls[pos + w] == W {
                if cps[pos + w] == 0x0D || cps[pos + w] == 0x0A { lastNL = pos + w + 1 }
                w += 1
            }
            if lastNL > 0 { pos = lastNL; ends.append(pos); continue }               // \s*[\r\n]+
            if w > 1 && pos + w < hi { pos += w - 1; ends.append(pos); continue }   // \s+(?!\S)
            if w > 0 { pos += w; ends.append(pos); continue }                        // \s+
            pos += 1; ends.append(pos)
        }
    }
}
