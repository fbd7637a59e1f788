import Foundation
import Kernels
import Llama
import TestSupport
import XCTest

/// The engine against llama.cpp on the same weights (fixtures in Tests/Fixtures/reference, see their README):
/// token ids of the text, greedy top-1 agreement and perplexity at n_ctx 256.
final class LlamaCppAgreementTests: XCTestCase {
    func fixture(_ name: String) throws -> [String: Any] {
        let url = checkoutDirectory().appendingPathComponent("Tests/Fixtures/reference/\(name)")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    func testTopOneAgreementAndPerplexityMatchLlamaCpp() throws {
        guard isReleaseBuild else { throw XCTSkip("6,912 tokens through 30 blocks need a release build") }
        guard let path = smolLM2Path() else { throw XCTSkip(smolLM2MissingMessage) }
        guard let shared = sharedDataDirectory() else { throw XCTSkip("../shared/data not found: the perplexity text is built from it") }
        let alpaca = try JSONSerialization.jsonObject(with: Data(contentsOf: shared.appendingPathComponent("stanford_alpaca/alpaca_5000.json"))) as! [[String: Any]]
        let text = alpaca.prefix(128).map { $0["output"] as! String }.joined(separator: "\n\n")
        let m = try LlamaLoader.load(path)
        let top = try fixture("top1.json"), ppl = try fixture("perplexity.json")
        let expectedIds = top["inputIds"] as! [Int], top1 = top["top1"] as! [Int]
        let nCtx = top["nCtx"] as! Int, chunks = top["nChunks"] as! Int, first = top["first"] as! Int
        let ids = m.tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        XCTAssertEqual(Array(ids.prefix(chunks * nCtx)), expectedIds, "tokenization of the perplexity text")
        var ties = [Int: Int]()
        for t in top["nearTies"] as! [[Any]] { ties[t[0] as! Int] = t[1] as! Int }
        var agree = 0, total = 0, nll = 0.0
        let V = m.model.config.vocabSize
        for c in 0 ..< chunks {
            let chunk = expectedIds[c * nCtx ..< (c + 1) * nCtx].map { Int32($0) }
            let logits = try m.model.forward([chunk], options: ForwardOptions(logits: .allTokens)).logits
            for p in first ..< nCtx - 1 {
                let row = logits[p * V ..< (p + 1) * V]
                var best = row.startIndex
                for i in row.indices where row[i] > row[best] { best = i }
                let id = best - p * V, index = c * (nCtx - 1 - first) + (p - first)
                if id == top1[index] || ties[index] == id { agree += 1 }
                total += 1
                let mx = Double(row[best])
                let lse = mx + log(row.reduce(0.0) { $0 + exp(Double($1) - mx) })
                nll += lse - Double(row[p * V + Int(chunk[p + 1])])
            }
        }
        let agreement = Double(agree) / Double(total)
        let perplexity = exp(nll / Double(total))
        let reference = ((ppl["results"] as! [[String: Any]]).first { $0["weights"] as? String == "F32" }!["perplexity"] as! Double)
        print("llama.cpp agreement: top-1 \(agreement) over \(total) positions; perplexity \(perplexity) vs \(reference)")
        XCTAssertEqual(total, 3429)
        XCTAssertGreaterThanOrEqual(agreement, 0.99)
        XCTAssertEqual(perplexity, reference, accuracy: 0.01 * reference)
    }
}
