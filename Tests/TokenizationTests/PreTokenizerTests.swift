import Foundation
import XCTest
import Tokenization
import TestSupport

/// The hand-written split rules against Hugging Face `tokenizers` running the original regexes.
final class PreTokenizerTests: XCTestCase {
    func testSplitsMatchReferenceRegexes() throws {
        let ref = try HFReference.load()
        for kind in PreTokenizerKind.allCases {
            guard let expected = ref.splits[kind.rawValue] else { XCTFail("no reference for \(kind)"); continue }
            XCTAssertEqual(expected.count, ref.texts.count)
            for (text, pieces) in zip(ref.texts, expected) {
                XCTAssertEqual(kind.split(text), pieces, "\(kind) on \(text.debugDescription)")
            }
        }
    }

    func testHandDerivedSplits() {
        XCTAssertEqual(PreTokenizerKind.gpt2.split("Hello  world's 123"), ["Hello", " ", " world", "'s", " 123"])
        XCTAssertEqual(PreTokenizerKind.smollm.split("abc 123"), ["abc", " ", "1", "2", "3"])
        XCTAssertEqual(PreTokenizerKind.llama3.split("12345 I'M"), ["123", "45", " I", "'M"])
        XCTAssertEqual(PreTokenizerKind.qwen2.split("12 a"), ["1", "2", " a"])
        XCTAssertEqual(PreTokenizerKind.llama3.split("a\n\n  b"), ["a", "\n\n", " ", " b"])
        XCTAssertEqual(PreTokenizerKind.gpt2.split("a\n\n  b"), ["a", "\n\n ", " b"])
        for kind in PreTokenizerKind.allCases {
            XCTAssertEqual(kind.split(""), [])
            for s in trickyCorpus { XCTAssertEqual(kind.split(s).joined(), s, "\(kind) loses text of \(s.debugDescription)") }
        }
    }

    func testGGUFNames() {
        XCTAssertEqual(PreTokenizerKind(ggufName: "smollm"), .smollm)
        XCTAssertEqual(PreTokenizerKind(ggufName: "llama-bpe"), .llama3)
        XCTAssertEqual(PreTokenizerKind(ggufName: "qwen2"), .qwen2)
        XCTAssertEqual(PreTokenizerKind(ggufName: "gpt-2"), .gpt2)
        XCTAssertNil(PreTokenizerKind(ggufName: "deepseek-llm"))
    }
}
