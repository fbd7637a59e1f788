import Foundation

/// Reads prompts from a file: JSONL whose objects carry a `prompt` field (or `instruction`
/// plus optional `input`, or `goal`), or plain text with one prompt per line. Blank lines are skipped.
public func readPrompts(_ path: String) throws -> [String] {
    try readPromptRows(path).map(\.prompt)
}

/// Prompts with the `label` string of each JSONL row (nil for plain text or rows without one).
public func readPromptRows(_ path: String) throws -> [(prompt: String, label: String?)] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw OutputError("cannot read prompts file \(path)")
    }
    guard let text = String(data: data, encoding: .utf8) else {
        throw OutputError("\(path) is not valid UTF-8")
    }
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    let firstContent = lines.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
    let isJSONL = firstContent?.trimmingCharacters(in: .whitespaces).hasPrefix("{") ?? false
    var prompts: [(prompt: String, label: String?)] = []
    for (i, raw) in lines.enumerated() {
        let line = raw.trimmingCharacters(in: .whitespaces)
        if line.isEmpty { continue }
        if !isJSONL { prompts.append((String(raw), nil)); continue }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw OutputError("\(path):\(i + 1): not a JSON object")
        }
        let label = (obj["label"] as? String) ?? (obj["label"] as? NSNumber)?.stringValue
        if let p = obj["prompt"] as? String {
            prompts.append((p, label))
        } else if let ins = obj["instruction"] as? String {
            let input = (obj["input"] as? String) ?? ""
            prompts.append((input.isEmpty ? ins : ins + "\n\n" + input, label))
        } else if let g = obj["goal"] as? String {
            prompts.append((g, label))
        } else {
            throw OutputError("\(path):\(i + 1): no \"prompt\" (or \"instruction\") string field")
        }
    }
    return prompts
}

/// "FILE:N" → (FILE, N) for options that take a seeded sample of N rows; a suffix that is not an
/// integer stays part of the path.
public func splitRowLimit(_ arg: String) throws -> (path: String, limit: Int?) {
    if let colon = arg.lastIndex(of: ":"), let n = Int(arg[arg.index(after: colon)...]) {
        guard n > 0 else { throw UsageError("'\(arg)': the row count after ':' must be positive") }
        return (String(arg[..<colon]), n)
    }
    return (arg, nil)
}
