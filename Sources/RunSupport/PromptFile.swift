import Foundation

/// Reads prompts from a file: JSONL whose objects carry a `prompt` field (or `instruction`
/// plus optional `input`, or `goal`), or plain text with one prompt per line. Blank lines are skipped.
public func readPrompts(_ path: String) throws -> [String] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw OutputError("cannot read prompts file \(path)")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw OutputError("\(path) is not valid UTF-8")
    }
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    let firstContent = lines.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    let isJSONL = firstContent?.trimmingCharacters(in: .whitespaces).hasPrefix("{") ?? false
    var prompts: [String] = []
    for (i, raw) in lines.enumerated() {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty { continue }
        if !isJSONL { prompts.append(String(raw)); continue }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw OutputError("\(path):\(i + 1): not a JSON object")
        }
        if let p = obj["prompt"] as? String {
            prompts.append(p)
        } else if let ins = obj["instruction"] as? String {
            let input = (obj["input"] as? String) ?? ""
            prompts.append(input.isEmpty ? ins : ins + "\n\n" + input)
        } else if let g = obj["goal"] as? String {
            prompts.append(g)
        } else {
            throw OutputError("\(path):\(i + 1): no \"prompt\" (or \"instruction\") string field")
        }
    }
    return prompts
}
