import Foundation
import RunSupport
import SafetyTuning

/// Prompts of one --harmful or --over-refusal file, after the label filter and the FILE:N sample.
struct PromptSet {
    enum Keep { case harmful, benign }
    var path: String
    var prompts: [String]
    /// Row of each prompt among the file's prompts (for --samples).
    var rows: [Int]
    /// Rows of the file left out because their label is the other kind.
    var skippedByLabel: Int

    var name: String { URL(fileURLWithPath: path).lastPathComponent }

    static func load(_ arg: String, keep: Keep, seed: UInt64) throws -> PromptSet {
        let (path, limit) = try splitRowLimit(arg)
        let rows = try readPromptRows(path)
        var kept: [Int] = []
        for (i, r) in rows.enumerated() {
            guard let label = r.label else { kept.append(i); continue }
            switch label.lowercased() {
            case "harmful", "unsafe", "1", "true": if keep == .harmful { kept.append(i) }
            case "benign", "safe", "harmless", "0", "false": if keep == .benign { kept.append(i) }
            default: throw DatasetError("\(path): prompt \(i + 1) has label '\(label)', neither harmful/unsafe nor benign/safe")
            }
        }
        guard !kept.isEmpty else {
            throw DatasetError("\(path) has no \(keep == .harmful ? "harmful" : "benign") prompts (\(rows.count) rows)")
        }
        let skipped = rows.count - kept.count
        if let limit { kept = PromptSplit.sample(kept.count, count: limit, seed: seed).map { kept[$0] } }
        return PromptSet(path: path, prompts: kept.map { rows[$0].prompt }, rows: kept, skippedByLabel: skipped)
    }
}

/// Rows of --labeled: (prompt, response, label) and optionally a boolean `refusal` on every row.
struct LabeledSet {
    var path: String
    var prompts: [String], answers: [String], labels: [Bool], rows: [Int]
    var refusals: [Bool]?

    static func load(_ arg: String, seed: UInt64) throws -> LabeledSet {
        let (path, limit) = try splitRowLimit(arg)
        let d = try Dataset.load(path)
        guard !d.samples.isEmpty else { throw DatasetError("\(path) has no rows") }
        if let bad = d.samples.firstIndex(where: { $0.harmful == nil }) {
            throw DatasetError("\(path): row \(bad + 1) has no `label` (--labeled needs harmful/benign labels)")
        }
        let rows = limit.map { PromptSplit.sample(d.count, count: $0, seed: seed) } ?? Array(0 ..< d.count)
        let refusalFields: [Bool?] = rows.map { r in
            guard let o = try? JSONSerialization.jsonObject(with: Data(d.samples[r].raw.utf8)) as? [String: Any] else { return nil }
            return (o["refusal"] as? NSNumber)?.boolValue
        }
        return LabeledSet(path: path, prompts: rows.map { d.samples[$0].prompt }, answers: rows.map { d.samples[$0].response },
                          labels: rows.map { d.samples[$0].harmful! }, rows: rows,
                          refusals: refusalFields.allSatisfy { $0 != nil } ? refusalFields.map { $0! } : nil)
    }
}

struct GenerationStats {
    var answers = 0, newTokens = 0
    var seconds = 0.0

    var json: [String: Any] {
        ["answers": answers, "new_tokens": newTokens, "seconds": seconds, "answers_per_minute": Double(answers) / max(seconds, 1e-9) * 60,
         "new_tokens_per_second": Double(newTokens) / max(seconds, 1e-9)]
    }
}

/// `key`, `key_ci95`, `n` and the file of one rate.
func rateSection(_ set: PromptSet, n: Int, count: Int, key: String) -> [String: Any] {
    let ci = EvaluationMetrics.wilson(successes: count, n: n)
    return ["file": set.path, "n": n, "skipped_by_label": set.skippedByLabel, key: Double(count) / Double(max(1, n)),
            key + "_ci95": [ci.low, ci.high]]
}

func + (a: [String: Any], b: [String: Any]) -> [String: Any] { a.merging(b) { x, _ in x } }

/// `evaluate --compare`: several reports side by side.
enum CompareTable {
    static func markdown(_ paths: [String]) throws -> String {
        var reports: [[String: Any]] = []
        for p in paths {
            guard let data = FileManager.default.contents(atPath: p) else { throw DatasetError("cannot read report \(p)") }
            guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any], o["tool"] as? String == "evaluate" else {
                throw DatasetError("\(p) is not an evaluate report (JSON object with \"tool\": \"evaluate\")")
            }
            reports.append(o)
        }
        func number(_ o: [String: Any], _ key: String) -> Double? { (o[key] as? NSNumber)?.doubleValue }
        func rate(_ o: [String: Any], _ key: String) -> String {
            guard let v = number(o, key) else { return "–" }
            if let ci = o[key + "_ci95"] as? [NSNumber], ci.count == 2 {
                return String(format: "%.1f%% [%.1f, %.1f]", v * 100, ci[0].doubleValue * 100, ci[1].doubleValue * 100)
            }
            return String(format: "%.1f%%", v * 100)
        }
        func plain(_ o: [String: Any], _ key: String, _ format: String) -> String { number(o, key).map { String(format: format, $0) } ?? "–" }
        func count(_ o: [String: Any], _ key: String) -> String { (o[key] as? NSNumber).map { "\($0.intValue)" } ?? "–" }
        func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }
        let rows: [(String, ([String: Any]) -> String)] = [
            ("model", { URL(fileURLWithPath: $0["model"] as? String ?? "?").lastPathComponent }),
            ("adapter", { ($0["adapter"] as? String).map { URL(fileURLWithPath: $0).lastPathComponent } ?? "none" }),
            ("harmful-answer rate [95% CI]", { rate($0, "harmful_rate") }),
            ("harmful prompts (n)", { count($0, "n_harmful") }),
            ("over-refusal rate [95% CI]", { rate($0, "over_refusal_rate") }),
            ("over-refusal prompts (n)", { count($0, "n_over_refusal") }),
            ("benign reference NLL (nats/token)", { plain($0, "benign_nll", "%.4f") }),
            ("benign perplexity", { plain($0, "benign_perplexity", "%.2f") }),
            ("ROUGE-L", { plain($0, "rouge_l", "%.4f") }),
            ("benign rows (n)", { count($0, "n_benign") }),
            ("answers/minute", { (($0["generation"] as? [String: Any]).flatMap { number($0, "answers_per_minute") }).map { String(format: "%.1f", $0) } ?? "–" }),
        ]
        var s = "| | " + paths.map { cell(URL(fileURLWithPath: $0).lastPathComponent) }.joined(separator: " | ") + " |\n"
        s += "|---|" + String(repeating: "---|", count: paths.count) + "\n"
        for (name, f) in rows { s += "| \(name) | " + reports.map { cell(f($0)) }.joined(separator: " | ") + " |\n" }
        return s
    }
}
