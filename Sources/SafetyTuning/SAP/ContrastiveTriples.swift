import Foundation
import Llama

/// One SAP contrastive example: a safety-critical prompt with a safe (chosen) and a harmful
/// (rejected) response.
public struct Triple: Sendable, Equatable {
    public var system: String?
    public var prompt: String
    public var chosen: String
    public var rejected: String

    public init(system: String? = nil, prompt: String, chosen: String, rejected: String) {
        self.system = system; self.prompt = prompt; self.chosen = chosen; self.rejected = rejected
    }
}

/// Contrastive triples: JSONL (or a JSON array) of {"prompt", "chosen", "rejected"} objects
/// (the layout of ../shared/data `*triples.jsonl`; SAP's parquet columns prompt, llama3_output,
/// response are also accepted). Errors name the file, line or element, and field.
public enum ContrastiveTriples {
    public static func load(_ path: String) throws -> [Triple] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError("cannot read triples file \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw DatasetError("\(path): not valid UTF-8") }
        var out: [Triple] = []
        if text.drop(while: { $0.isWhitespace }).first == "[" {
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw DatasetError("\(path): starts with '[' but is not a JSON array")
            }
            for (i, e) in array.enumerated() {
                guard let o = e as? [String: Any] else { throw DatasetError("\(path): element \(i) is not an object") }
                out.append(try triple(o, at: "\(path): element \(i)"))
            }
        } else {
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let l = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if l.isEmpty { continue }
                guard let o = (try? JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any] else {
                    throw DatasetError("\(path):\(n + 1): not a JSON object")
                }
                out.append(try triple(o, at: "\(path):\(n + 1)"))
            }
        }
        guard !out.isEmpty else { throw DatasetError("\(path) holds no triples (expected JSONL of {\"prompt\", \"chosen\", \"rejected\"})") }
        return out
    }

    static func triple(_ o: [String: Any], at place: String) throws -> Triple {
        func field(_ names: [String]) throws -> String {
            for n in names { if let s = o[n] as? String { return s } }
            throw DatasetError("\(place): missing string field \"\(names[0])\"")
        }
        let t = Triple(system: o["system"] as? String, prompt: try field(["prompt"]),
                       chosen: try field(["chosen", "llama3_output"]), rejected: try field(["rejected", "response"]))
        if t.chosen.isEmpty || t.rejected.isEmpty { throw DatasetError("\(place): \"chosen\" and \"rejected\" must be non-empty") }
        return t
    }

    /// Encoded pairs (chosen, rejected) as fine-tuning sees them, at most `maxTokens` tokens each.
    /// A triple whose prompt leaves no response token in either sequence is dropped (listed).
    public static func encode(_ triples: [Triple], with m: LoadedModel, maxTokens: Int)
        -> (pairs: [(chosen: TrainingSample, rejected: TrainingSample)], dropped: [Int], truncated: Int) {
        let limit = min(maxTokens, m.model.config.contextLength)
        var pairs: [(chosen: TrainingSample, rejected: TrainingSample)] = [], dropped: [Int] = [], truncated = 0
        for (i, t) in triples.enumerated() {
            let (c, cutC) = SampleEncoding.trainingSample(Sample(system: t.system, prompt: t.prompt, response: t.chosen), with: m, maxTokens: limit)
            let (r, cutR) = SampleEncoding.trainingSample(Sample(system: t.system, prompt: t.prompt, response: t.rejected), with: m, maxTokens: limit)
            if cutC || cutR { truncated += 1 }
            if let c, let r { pairs.append((c, r)) } else { dropped.append(i) }
        }
        return (pairs, dropped, truncated)
    }
}
