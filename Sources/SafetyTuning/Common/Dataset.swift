import Foundation

/// A fine-tuning sample as the methods see it: the conversation up to the response, the response,
/// an optional ground-truth label (used only for evaluation reports, never for fitting), and the
/// original record so filtered files keep the input's schema.
public struct Sample: Sendable {
    public var system: String?
    public var prompt: String
    public var response: String
    /// true = harmful, false = benign, nil = unlabeled.
    public var harmful: Bool?
    /// The record's JSON text exactly as it appeared in the input.
    public var raw: String

    public init(system: String? = nil, prompt: String, response: String, harmful: Bool? = nil, raw: String = "") {
        self.system = system; self.prompt = prompt; self.response = response; self.harmful = harmful; self.raw = raw
    }
}

/// Fine-tuning data in the common shapes: JSONL or a JSON array of objects with
///   `instruction` (+ optional `input`) and `output` (Alpaca),
///   `prompt` and `response` (or `completion`/`answer`/`output`),
///   `messages`: [{role, content}] (chat; the last assistant turn is the response).
/// A `label` field ("harmful"/"unsafe"/true/1 vs "benign"/"safe"/false/0) or `is_safe` is read
/// as the ground truth when present.
public struct Dataset: Sendable {
    public enum Layout: String, Sendable { case jsonl, jsonArray }
    public var samples: [Sample]
    public var layout: Layout
    public var path: String

    public init(samples: [Sample], layout: Layout = .jsonl, path: String = "") {
        self.samples = samples
        self.layout = layout
        self.path = path
    }

    public var count: Int { samples.count }
    public var hasLabels: Bool { !samples.isEmpty && samples.allSatisfy { $0.harmful != nil } }

    /// Reads `path`; errors name the file, the line (JSONL) or element (array) and the problem.
    public static func load(_ path: String) throws -> Dataset {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError("cannot read \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let bad = firstInvalidUTF8(data)
            throw DatasetError("\(path): not valid UTF-8 (first bad byte at offset \(bad))")
        }
        let trimmed = text.drop { $0.isWhitespace }
        if trimmed.first == "[" {
            guard let array = try? JSONSerialization.jsonObject(with: data) as? [Any] else {
                throw DatasetError("\(path): starts with '[' but is not a JSON array")
            }
            var samples: [Sample] = []
            for (i, element) in array.enumerated() {
                guard let obj = element as? [String: Any] else { throw DatasetError("\(path): element \(i) is not an object") }
                let raw = String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
                samples.append(try sample(obj, raw: raw, at: "\(path): element \(i)"))
            }
            return Dataset(samples: samples, layout: .jsonArray, path: path)
        }
        var samples: [Sample] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let l = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if l.isEmpty { continue }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(l.utf8))) as? [String: Any] else {
                throw DatasetError("\(path):\(lineNumber): not a JSON object")
            }
            samples.append(try sample(obj, raw: l, at: "\(path):\(lineNumber)"))
        }
        return Dataset(samples: samples, layout: .jsonl, path: path)
    }

    static func sample(_ o: [String: Any], raw: String, at place: String) throws -> Sample {
        let label = try parseLabel(o, at: place)
        if let messages = o["messages"] {
            guard let turns = messages as? [[String: Any]], !turns.isEmpty else {
                throw DatasetError("\(place): \"messages\" must be a non-empty array of {role, content}")
            }
            var system: String?, prompt: [String] = [], response: String?
            for (i, t) in turns.enumerated() {
                guard let role = t["role"] as? String, let content = t["content"] as? String else {
                    throw DatasetError("\(place): message \(i) needs string \"role\" and \"content\"")
                }
                switch role {
                case "system": system = content
                case "user": prompt.append(content)
                case "assistant": if i == turns.count - 1 { response = content } else { prompt.append(content) }
                default: throw DatasetError("\(place): message \(i) has unknown role '\(role)'")
                }
            }
            guard let response else { throw DatasetError("\(place): the last message must be the assistant's response") }
            return Sample(system: system, prompt: prompt.joined(separator: "\n\n"), response: response, harmful: label, raw: raw)
        }
        let prompt: String
        if let ins = o["instruction"] as? String {
            let input = (o["input"] as? String) ?? ""
            prompt = input.isEmpty ? ins : ins + "\n\n" + input
        } else if let p = (o["prompt"] ?? o["question"]) as? String {
            prompt = p
        } else {
            throw DatasetError("\(place): no prompt (expected \"instruction\", \"prompt\", \"question\" or \"messages\")")
        }
        guard let response = (o["output"] ?? o["response"] ?? o["completion"] ?? o["answer"]) as? String else {
            throw DatasetError("\(place): no response (expected \"output\", \"response\", \"completion\" or \"answer\")")
        }
        return Sample(system: o["system"] as? String, prompt: prompt, response: response, harmful: label, raw: raw)
    }

    static func parseLabel(_ o: [String: Any], at place: String) throws -> Bool? {
        if let v = o["label"] {
            if let s = v as? String {
                switch s.lowercased() {
                case "harmful", "unsafe", "1", "true": return true
                case "benign", "safe", "harmless", "0", "false": return false
                default: throw DatasetError("\(place): label '\(s)' is neither harmful/unsafe nor benign/safe")
                }
            }
            if let n = v as? NSNumber { return n.intValue != 0 }
            throw DatasetError("\(place): \"label\" must be a string, number or boolean")
        }
        if let safe = o["is_safe"] as? NSNumber { return safe.intValue == 0 }
        return nil
    }

    /// Writes the records of `indices` (in order) in the input's own layout, atomically via `write`.
    public func serialize(_ indices: [Int]) -> Data {
        switch layout {
        case .jsonl:
            return Data(indices.map { samples[$0].raw + "\n" }.joined().utf8)
        case .jsonArray:
            return Data(("[\n" + indices.map { "  " + samples[$0].raw }.joined(separator: ",\n") + "\n]\n").utf8)
        }
    }

    /// Byte offset near the first invalid UTF-8 sequence (one linear pass).
    static func firstInvalidUTF8(_ data: Data) -> Int {
        struct Counting: IteratorProtocol {
            var base: Data.Iterator, consumed = 0
            mutating func next() -> UInt8? { consumed += 1; return base.next() }
        }
        var it = Counting(base: data.makeIterator())
        var decoder = UTF8()
        while true {
            let before = it.consumed
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return data.count
            case .error: return before
            }
        }
    }
}

public struct DatasetError: Error, CustomStringConvertible {
    public var description: String
    public init(_ message: String) { description = message }
}
