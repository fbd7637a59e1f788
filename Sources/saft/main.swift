import Foundation
import Kernels
import Llama
import RunSupport
import SafetyTuning

let spec = CommandSpec(
    name: "saft",
    synopsis: "--model M.gguf --data FILE --out CLEAN [--report R.json] [--scores S.jsonl] [--plot P.svg] [options]",
    details: """
    SAFT (Choi, Du, Li 2024): embeds every sample with the model (chat template applied as fine-tuning
    applies it), finds the top singular directions of the centred embeddings, scores each sample by its
    squared projections and writes the samples whose score is at most the threshold to --out, in the
    input's own format. Threshold: --validation FILE (labeled rows; best F1, the paper's way),
    --remove-fraction F, --threshold T, or by default a label-free rule (Docs/SAFT.md). Rows with a
    `label` field are scored against it in the report; labels of --data never influence the filter.
    """,
    options: [
        .init("model", "PATH", "GGUF model (the model that will be fine-tuned)"),
        .init("data", "FILE", "fine-tuning data: JSONL or JSON array (Alpaca, prompt/response, or messages)"),
        .init("out", "FILE", "filtered data, same format as --data"),
        .init("report", "FILE", "JSON report"),
        .init("scores", "FILE", "JSONL: index, score, kept (and label)"),
        .init("plot", "FILE", "SVG histogram of the scores with the threshold"),
        .init("validation", "FILE", "labeled rows (about 100) to choose block, k and threshold by F1"),
        .init("remove-fraction", "F", "remove the top fraction F of scores"),
        .init("threshold", "T", "remove scores above T"),
        .init("block", "B", "block to embed: 1...L, or a relative depth in (0, 1) (default 0.5)"),
        .init("position", "P", "token: last-prompt (default), last, mean-response"),
        .init("k", "K", "singular directions (default 1; with --validation the best of 1...4)"),
        .init("weighting", "W", "none (default) or sigma: weight directions by their singular values"),
        .init("subspace", "S", "auto (default), exact or randomized"),
        .init("max-tokens", "N", "truncate samples to N tokens (default 512)"),
        .init("batch-tokens", "N", "tokens per forward batch (default 4096)"),
        .init("threads", "N", "worker threads (default: all cores)"),
        .init("seed", "S", "seed of the randomized SVD (default 0)"),
    ])

runCommand(spec) { args in
    let started = DispatchTime.now()
    let modelPath = try args.require("model"), dataPath = try args.require("data"), outPath = try args.require("out")
    if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
    let policies = ["validation", "remove-fraction", "threshold"].filter { args.has($0) }
    if policies.count > 1 { throw UsageError("choose one of --validation, --remove-fraction and --threshold") }
    guard let position = EmbeddingPosition(rawValue: args.string("position") ?? "last-prompt") else {
        throw UsageError("--position must be one of \(EmbeddingPosition.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    guard let weighting = SAFT.Weighting(rawValue: args.string("weighting") ?? "none") else { throw UsageError("--weighting must be none or sigma") }
    let subspaceName = args.string("subspace") ?? "auto"
    guard let subspace = PrincipalSubspace.Choice(rawValue: subspaceName == "auto" ? "automatic" : subspaceName) else {
        throw UsageError("--subspace must be auto, exact or randomized")
    }
    let maxTokens = try args.int("max-tokens", default: 512, range: 8 ... 1 << 20)!
    let batchTokens = try args.int("batch-tokens", default: 4096, range: 16 ... 1 << 24)!

    let data = try Dataset.load(dataPath)
    guard data.count >= 2 else { throw DatasetError("\(dataPath) has \(data.count) rows; SAFT needs at least 2") }
    let validation = try args.string("validation").map { try Dataset.load($0) }
    if let validation, !validation.hasLabels { throw DatasetError("every row of the validation file needs a `label`") }

    let loaded = try LlamaLoader.load(modelPath)
    let L = loaded.model.config.layers
    func resolveBlock(_ text: String) throws -> Int {
        if let b = Int(text), b >= 1, b <= L { return b }
        if let f = Double(text), f > 0, f < 1 { return max(1, min(L, Int((f * Double(L)).rounded()))) }
        throw UsageError("--block '\(text)': give a block in 1...\(L) or a relative depth in (0, 1)")
    }
    let blocks: [Int] = try args.string("block").map { [try resolveBlock($0)] }
        ?? (validation != nil ? Array(Set([0.33, 0.5, 0.67, 0.75].map { max(1, Int(($0 * Double(L)).rounded())) })).sorted()
                              : [max(1, Int((0.5 * Double(L)).rounded()))])
    log("saft: \(data.count) rows from \(dataPath); model \(modelPath) (\(L) blocks, template \(loaded.template.summary)); "
        + "embedding blocks \(blocks) at \(position.rawValue); \(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads")

    var lastLog = DispatchTime.now()
    let emb = try SAFTEmbedder.embed(data.samples, model: loaded, blocks: blocks, position: position, maxTokens: maxTokens,
                                     batchTokens: batchTokens) { done, total in
        if seconds(since: lastLog) > 2 || done == total {
            lastLog = DispatchTime.now()
            let dt = seconds(since: started)
            log(String(format: "saft: embedded %d/%d rows (%.0f s, ETA %.0f s)", done, total, dt, dt / Double(done) * Double(total - done)))
        }
    }
    var options = SAFT.Options()
    options.weighting = weighting
    options.subspace = subspace
    options.seed = UInt64(try args.int("seed", default: 0, range: 0 ... Int.max)!)
    if let k = try args.int("k", range: 1 ... 64) { options.rank = k } else if validation == nil { options.rank = 1 }
    let policy: SAFT.Policy
    var validationEmbedSeconds = 0.0
    if let validation {
        let v = try SAFTEmbedder.embed(validation.samples, model: loaded, blocks: blocks, position: position,
                                       maxTokens: maxTokens, batchTokens: batchTokens)
        validationEmbedSeconds = v.seconds
        policy = .validation(embeddings: v.byBlock, labels: validation.samples.map { $0.harmful! })
    } else if let f = try args.double("remove-fraction", range: 0 ... 0.999999) {
        policy = .removeFraction(f)
    } else if let t = try args.double("threshold") {
        policy = .threshold(Float(t))
    } else {
        policy = .automatic
    }
    let fitStart = DispatchTime.now()
    let result = try SAFT.run(emb, policy: policy, options: options)
    let fitSeconds = seconds(since: fitStart)
    for w in result.warnings { log("saft: warning: \(w)") }

    let kept = result.removed.indices.filter { !result.removed[$0] }
    try writeAtomically(data.serialize(kept), to: outPath)
    let labels: [Bool]? = data.hasLabels ? data.samples.map { $0.harmful! } : nil
    if let path = args.string("scores") {
        let lines = try data.samples.indices.map { i -> String in
            var o: [String: Any] = ["index": i, "score": Double(result.scores[i]), "kept": !result.removed[i]]
            if let h = data.samples[i].harmful { o["label"] = h ? "harmful" : "benign" }
            return try jsonLine(o)
        }
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: path)
    }
    if let path = args.string("plot") {
        let title = "SAFT scores: block \(result.block), k \(result.rank), \(position.rawValue); \(result.removedCount) of \(data.count) removed"
        try writeAtomically(Data(ScorePlot.svg(scores: result.scores, labels: labels, threshold: result.threshold, title: title).utf8), to: path)
    }
    var report: [String: Any] = [
        "tool": "saft", "method": "subspace", "model": modelPath, "data": dataPath, "output": outPath,
        "rows": data.count, "removed": result.removedCount, "kept": kept.count,
        "block": result.block, "blocks_embedded": blocks, "position": position.rawValue, "k": result.rank,
        "weighting": weighting.rawValue, "threshold": result.threshold.isFinite ? Double(result.threshold) : NSNull(),
        "threshold_policy": result.policy, "threshold_rule": result.thresholdRule,
        "singular_values": result.singularValues, "subspace": result.subspaceMethod,
        "truncated_rows": emb.truncated, "tokens": emb.tokens, "template": loaded.template.summary,
        "timings": ["embed_seconds": emb.seconds, "validation_embed_seconds": validationEmbedSeconds, "fit_and_score_seconds": fitSeconds,
                    "total_seconds": seconds(since: started), "tokens_per_second": Double(emb.tokens) / emb.seconds],
        "warnings": result.warnings, "build": ["isa": BuildInfo.isa, "threads": Parallel.defaultWorkers],
    ]
    if let f1 = result.validationF1 { report["validation_f1"] = f1 }
    if let labels {
        let q = RemovalQuality(scores: result.scores, removed: result.removed, labels: labels)
        for (k, v) in q.json { report[k] = v }
        log(String(format: "saft: against the data's labels: AUROC %.3f, harmful recall %.3f, precision %.3f, benign removed %.1f%%",
                   q.auroc ?? .nan, q.recall, q.precision, q.benignRemovedFraction * 100))
    }
    if let path = args.string("report") { try writeAtomically(try jsonData(report), to: path) }
    log("saft: removed \(result.removedCount) of \(data.count) rows (\(result.thresholdRule)); wrote \(outPath)")
}
