import Foundation
import Kernels
import Llama
import Tokenization
import TestSupport
import XCTest

final class GGUFExportTests: XCTestCase {
    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("safetune-\(getpid())-\(name)").path
    }

    /// A tiny model written and loaded back runs the same forward as the weights it was written from,
    /// and its tokenizer and template render a chat with the end-of-turn token as a stop token.
    func testTinyModelRoundTripsThroughGGUF() throws {
        for tied in [true, false] {
            let path = temporaryPath("tiny-\(tied).gguf")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try TinyModel.write(to: path, seed: 9, tied: tied)
            let m = try LlamaLoader.load(path)
            let t = try TinyModel.tokenizer()
            let direct = try LlamaWeights(config: TinyModel.config(vocabSize: t.tokenCount, tied: tied))
            direct.randomize(seed: 9)
            XCTAssertEqual(m.model.config, direct.config)
            XCTAssertEqual(Array(m.model.weights.arena), Array(direct.arena), "F32 export is exact (tied \(tied))")
            XCTAssertEqual(m.template.kind, .chatml)
            let prompt = m.promptTokens("the answer")
            XCTAssertEqual(m.tokenizer.decode(prompt.map(Int.init)), "<|im_start|>user\nthe answer<|im_end|>\n<|im_start|>assistant\n")
            XCTAssertTrue(m.stopTokens.contains(Int32(m.tokenizer.id(of: "<|im_end|>")!)))
        }
    }

    /// Q8_0 and F16 exports reload within the element types' rounding of the weights.
    func testQuantizedExportReloadsWithinRounding() throws {
        let t = try TinyModel.tokenizer()
        let w = try LlamaWeights(config: TinyModel.config(vocabSize: t.tokenCount))
        w.randomize(seed: 4)
        for (type, relBound) in [(GGUFExport.MatrixType.f16, 1e-3), (.q8_0, 1.0 / 127)] {
            let path = temporaryPath("tiny-\(type).gguf")
            defer { try? FileManager.default.removeItem(atPath: path) }
            try GGUFExport.write(w, tokenizer: t, template: ChatTemplate(kind: .chatml), name: "t", matrixType: type, to: path)
            let back = try LlamaLoader.load(path).model.weights
            let c = w.config
            let n = (c.qDim + 2 * c.kvDim) * c.hiddenSize
            let got = Array(UnsafeBufferPointer(start: back.qkv(1), count: n))
            let want = Array(UnsafeBufferPointer(start: w.qkv(1), count: n)).map(Double.init)
            let scale = want.map(abs).max()!
            assertWithinBound(got, want, "qkv of block 1 as \(type)", bound: { _ in relBound * scale })
            XCTAssertNotEqual(got, want.map(Float.init), "\(type) actually rounds")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: back.attnNorm(0), count: c.hiddenSize)),
                           Array(UnsafeBufferPointer(start: w.attnNorm(0), count: c.hiddenSize)), "norms stay F32")
        }
    }
}
