import Foundation
import RunSupport
import SafetyTuning

let spec = CommandSpec(
    name: "make-demo-data",
    synopsis: "--out FILE.jsonl [--rows N] [--harmful-fraction F] [--seed S]",
    details: "Writes a labeled demo fine-tuning mixture (Alpaca-style JSONL): templated benign tasks and templated\nharmful requests with non-actionable 'compliant' answers. The `label` field is for evaluation only.",
    options: [
        .init("out", "FILE", "output JSONL (written atomically)"),
        .init("rows", "N", "rows (default 1000)"),
        .init("harmful-fraction", "F", "share of harmful rows (default 0.2)"),
        .init("seed", "S", "shuffle and template seed (default 0)"),
    ])

/// The `make-demo-data` command; `arguments` are the options after the tool name.
public func makeDemoDataMain(_ arguments: [String]) -> Never {
    runCommand(spec, arguments: arguments) { args in
        let out = try args.require("out")
        let rows = try args.int("rows", default: 1000, range: 1 ... 10_000_000)!
        let fraction = try args.double("harmful-fraction", default: 0.2, range: 0 ... 1)!
        let seed = try args.int("seed", default: 0, range: 0 ... Int.max)!
        let data = DemoData.generate(rows: rows, harmfulFraction: fraction, seed: UInt64(seed))
        let text = try data.map { try jsonLine($0) }.joined(separator: "\n") + "\n"
        try writeAtomically(Data(text.utf8), to: out)
        log("make-demo-data: wrote \(rows) rows (\(data.filter { $0["label"] == "harmful" }.count) harmful) to \(out)")
    }
}
