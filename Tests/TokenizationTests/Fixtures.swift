import Foundation
import XCTest
import ModelFormats
import Tokenization
import TestSupport

extension GGUFMetadata: TokenizerMetadataSource {}

/// Reference data recorded with Hugging Face `tokenizers` (Tests/Fixtures/Generators/hf_tokenizer_fixtures.py).
struct HFReference: Decodable {
    let texts: [String]
    let smollm2_ids: [[Int]]
    let splits: [String: [[String]]]

    static func load() throws -> HFReference {
        let url = fixtureURL("tokenizer/hf-reference.json")
        return try JSONDecoder().decode(HFReference.self, from: Data(contentsOf: url))
    }
}

/// The SmolLM2 tokenizer and its GGUF metadata, loaded once per test process.
enum SmolLM2 {
    nonisolated(unsafe) private static var cached: (Tokenizer, GGUFMetadata)?
    private static let lock = NSLock()

    static func load() throws -> (tokenizer: Tokenizer, metadata: GGUFMetadata) {
        guard let path = smolLM2Path() else { throw XCTSkip(smolLM2MissingMessage) }
        lock.lock(); defer { lock.unlock() }
        if let c = cached { return c }
        let f = try GGUFFile(path: path)
        let t = try Tokenizer(gguf: f.metadata)
        cached = (t, f.metadata)
        return (t, f.metadata)
    }
}

/// Strings that stress pre-tokenization, merging, special tokens and UTF-8 handling.
let trickyCorpus: [String] = [
    "", " ", "  ", "\n", "\t", "\r\n", " \n ", "a", "A", "0", "00", "007", "3.14", "1,000,000", "-42",
    "Hello world", "Hello  world", "Hello\tworld", "Hello\n\nworld", "   leading", "trailing   ", "x    \n    y",
    "I'm", "I'M", "you're", "we'VE", "'s", "''", "'", "rock'n'roll", "don't've", "l'été",
    "café", "naïve", "e\u{301}", "Zoë Saldaña", "straße", "İstanbul", "ǅ", "ﬁne", "Ａ", "½", "Ⅻ", "²³",
    "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "a😀b", " 😀 ", "😀😀😀😀😀😀😀😀",
    "日本語のテキスト", "中文，标点。", "한국어 텍스트", "ภาษาไทย", "עברית", "العربية ١٢٣", "हिन्दी", "Ελληνικά", "Кириллица",
    "\u{0}", "\u{1}\u{2}\u{7f}", "\u{200b}", "\u{feff}bom", "\u{a0}", "\u{3000}", "\u{2028}", "\u{85}", "\u{fffd}",
    "<|im_start|>", "<|im_end|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n", "x<|endoftext|>y",
    "<|im_start", "|im_start|>", "<<|im_end|>>", "<|im_end|><|im_end|>", "<repo_name>a<file_sep>b",
    "func main() {\n\tprint(\"hi\")\n}\n", "    def f(self):\n        return None\n", "a_b-c.d/e\\f",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct", "x = y ** 2 + 3*z // 4",
    String(repeating: "a", count: 300), String(repeating: " ", count: 70), String(repeating: "ab ", count: 50),
    String(repeating: "\n", count: 40), String(repeating: "9", count: 64), String(repeating: "é", count: 80),
]
