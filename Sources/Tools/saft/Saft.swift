import Foundation
import Kernels
import Llama
import RunSupport
import SafetyTuning

/// What `Docs/SAFT.md` measured best on the labeled mixtures (the tables there): combined, the
/// guided score or the published one (pools of one row fall back to guided, which needs no pool).
let defaultMethod = "combined"
/// The guided threshold's default: the benign references' Gaussian 99.9% point, the setting that
/// kept the clean (0%) pool's losses under 2% in Docs/SAFT.md.
let defaultGuideFPR = 0.001
/// Rounds of adapting the guided direction to the pool (Docs/SAFT.md, "Adapted to the pool").
let defaultGuideAdapt = 3

let embeddingOptions: [CommandSpec.Option] = [
    .init("model", "PATH", "GGUF model (the model that will be fine-tuned)"),
    .init("block", "B[,B...]", "blocks to embed: 1...L or relative depths in (0, 1) (default: 0.5 for subspace; 0.33,0.5,0.67,0.75 for guided, combined and --validation)"),
    .init("position", "P", "token: last-prompt (default), last, mean-response"),
    .init("max-tokens", "N", "truncate samples to N tokens (default 512)"),
    .init("batch-tokens", "N", "tokens per forward batch (default 4096)"),
    .init("cache", "DIR", "embedding cache directory: rows already embedded with this model, template, block, position and token limit are read, not recomputed"),
    .init("threads", "N", "worker threads (default: all cores)"),
]
let methodOptions: [CommandSpec.Option] = [
    .init("method", "M", "subspace (the published SAFT score), guided (reference direction) or combined (a row goes when the guided score flags it, or the subspace score does and the guided score is above the benign references' mean); default \(defaultMethod)"),
    .init("guide", "SRC", "reference prompts for guided and combined: builtin (the project's; the default)"),
    .init("guide-harmful", "FILE", "your harmful reference prompts (JSONL with `prompt`, or one per line); needs --guide-benign"),
    .init("guide-benign", "FILE", "your benign reference prompts; needs --guide-harmful"),
    .init("reference-cache", "DIR", "keep the reference prompts' embeddings here between runs, per model and settings (default: "
          + "--cache when given, else $SAFETUNE_CACHE or ~/.cache/safetune, in references/; none: embed them on every run)"),
    .init("guide-direction", "D", "guided: discriminant (default: shrinkage-regularised LDA of the references) or mean (the mean difference)"),
    .init("guide-shrinkage", "L", "guided discriminant: shrinkage λ in (0, 1] toward the identity (default 0.3)"),
    .init("guide-fpr", "F", "guided threshold at benign-reference false-positive rate F (default \(defaultGuideFPR)), or balanced: where both reference classes are equally far"),
    .init("guide-adapt", "N", "guided: rounds of refitting the direction with the pool's own confidently scored rows as extra "
          + "training rows (pseudo-labels from the score, never from labels; default \(defaultGuideAdapt); 0 uses the references alone)"),
    .init("guide-response", "on|off", "guided and combined: also learn a discriminant on the rows' responses (mean response state), "
          + "taught by the guided score's confident rows (co-training), used when it confirms them; a row also goes when the "
          + "joint prompt+response score is above 3.09 sd (default on: more recall, a few % of benign rows; the pool runs "
          + "with its responses, about 3x the time of off)"),
    .init("guide-response-block", "B", "block of the response view (default 0.5: the middle block)"),
    .init("remove-fraction", "F", "subspace: remove the top fraction F of scores"),
    .init("threshold", "T", "subspace: remove scores above T"),
    .init("k", "K", "subspace: singular directions (default 1; with --validation the best of 1...4)"),
    .init("weighting", "W", "subspace: none (default) or sigma: weight directions by their singular values"),
    .init("subspace", "S", "subspace: auto (default), exact or randomized"),
    .init("seed", "S", "seed of the randomized SVD (default 0)"),
]

let mainSpec = CommandSpec(
    name: "saft",
    synopsis: "--model M.gguf --data FILE --out CLEAN [--report R.json] [--scores S.jsonl] [--plot P.svg] [options]\n"
        + "       saft embed --shard i/N ... | saft fit ... | saft score --shard i/N ...   (map/reduce; saft embed --help)",
    details: """
    Filters harmful samples out of a fine-tuning file, label-free, and writes the kept rows to --out in
    the input's own format. Every sample is embedded with the model (chat template applied as
    fine-tuning applies it) and scored by one of:
      subspace  SAFT as published (Choi, Du, Li 2024): squared projections on the top-k singular
                directions of the pool's centred embeddings; threshold by --validation FILE (labeled
                rows, best F1), --remove-fraction F, --threshold T, or a label-free rule;
      guided    projection on a harm direction learnt from reference prompts (--guide builtin,
                or your own files): a regularised discriminant of harmful vs benign references, or
                their mean difference; block and threshold from the references alone, the
                direction then adapted to the pool with its own confidently scored rows;
      combined  (default) a row goes when the guided score flags it, or when the published
                score flags it and the guided score is above the benign references' mean.
    With guided and combined, --guide-response on (the default) embeds the rows a second time with
    their responses and learns a discriminant there from the guided score's confident rows: a row
    also goes when both views together flag it (skipped when the responses do not confirm them).
    Rows with a `label` field are scored against it in the report; labels of --data never influence
    the filter. Docs/SAFT.md explains the choices and the measurements.
    """,
    options: [
        .init("data", "FILE", "fine-tuning data: JSONL or JSON array (Alpaca, prompt/response, or messages)"),
        .init("out", "FILE", "filtered data, same format as --data"),
        .init("report", "FILE", "JSON report"),
        .init("scores", "FILE", "JSONL: index, score, kept (and label)"),
        .init("plot", "FILE", "SVG histogram of the scores with the threshold"),
        .init("validation", "FILE", "subspace (implied): labeled rows (about 100) to choose block, k and threshold by F1"),
        .init("sweep", nil, "with labeled --data: also report AUROC, recall and benign removal of every embedded block and k 1...4 (evaluation only)"),
    ] + embeddingOptions + methodOptions)

let embedSpec = CommandSpec(
    name: "saft embed",
    synopsis: "--shard i/N --model M.gguf --data FILE --work DIR [--block ...] [--position P] [--cache DIR]",
    details: """
    Map step: embeds rows [i·n/N, (i+1)·n/N) of --data and writes their embeddings and mergeable
    moments to --work (one file set per shard; Docs/SAFT.md). Run every shard (any scheduler), then
    `saft fit`, then `saft score` per shard.
    """,
    options: [
        .init("shard", "i/N", "which shard (0-based) of how many"),
        .init("data", "FILE", "fine-tuning data (every shard reads the same file)"),
        .init("work", "DIR", "work directory shared by all steps"),
    ] + embeddingOptions)

let fitSpec = CommandSpec(
    name: "saft fit",
    synopsis: "--work DIR --model M.gguf [--method M] [--guide builtin] [--k K] [--report R.json]",
    details: """
    Reduce step: merges the shards' moments into one subspace (exact covariance path), fits the
    guided direction from the reference prompts (embedded here, with the shards' settings), sets the
    thresholds and writes DIR/filter.json. The subspace's label-free threshold and --remove-fraction
    read the shards' embeddings to score every row (k·d flops a row); guided needs only the references.
    """,
    options: [
        .init("work", "DIR", "work directory of `saft embed`"),
        .init("model", "PATH", "the model the shards were embedded with"),
        .init("block", "B", "subspace: which embedded block (default: the lowest; combined: the guided block)"),
        .init("batch-tokens", "N", "tokens per forward batch for the references (default 4096)"),
        .init("cache", "DIR", "embedding cache for the references (see --reference-cache)"),
        .init("threads", "N", "worker threads (default: all cores)"),
        .init("report", "FILE", "JSON report of the fit"),
    ] + methodOptions)

let scoreSpec = CommandSpec(
    name: "saft score",
    synopsis: "--shard i/N --work DIR --data FILE --out CLEAN.i [--scores S.i.jsonl]",
    details: """
    Map step: scores shard i's rows with DIR/filter.json and writes its kept rows, in the input's
    format. Concatenating the shards' JSONL outputs in shard order gives the single-machine output.
    """,
    options: [
        .init("shard", "i/N", "which shard (0-based) of how many"),
        .init("work", "DIR", "work directory (embeddings and filter.json)"),
        .init("data", "FILE", "the data file the shards were embedded from"),
        .init("out", "FILE", "this shard's kept rows"),
        .init("scores", "FILE", "JSONL: index (in --data), score, kept (and label)"),
        .init("report", "FILE", "JSON counts of this shard"),
    ])

// MARK: - Shared pieces

struct EmbeddingSetup {
    var position: EmbeddingPosition
    var maxTokens: Int
    var batchTokens: Int
    var cache: String?
    /// Where the reference prompts' embeddings live between runs (nil: embedded on every run). The
    /// per-user default is looked up (and created) only when references are embedded.
    var referenceCache: String?
    private var referenceCacheIsDefault = false

    init(_ args: ParsedArguments) throws {
        if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
        guard let p = EmbeddingPosition(rawValue: args.string("position") ?? "last-prompt") else {
            throw UsageError("--position must be one of \(EmbeddingPosition.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        position = p
        maxTokens = try args.int("max-tokens", default: 512, range: 8 ... 1 << 20)!
        batchTokens = try args.int("batch-tokens", default: 4096, range: 16 ... 1 << 24)!
        cache = args.string("cache")
        switch args.string("reference-cache") {
        case "none": referenceCache = nil
        case let dir?: referenceCache = dir
        case nil: referenceCache = cache; referenceCacheIsDefault = cache == nil
        }
    }

    /// Embeddings of the reference prompts, through the reference cache.
    mutating func embedReferences(_ samples: [Sample], _ loaded: LoadedModel, modelPath: String, blocks: [Int], what: String,
                                  started: DispatchTime) throws -> (Embeddings, hits: Int) {
        if referenceCacheIsDefault {
            referenceCache = defaultReferenceCache()
            referenceCacheIsDefault = false
        }
        var s = self
        s.cache = referenceCache
        return try s.embed(samples, loaded, modelPath: modelPath, blocks: blocks, what: what, started: started)
    }

    /// Embeddings of `samples`, through the cache when one is given; `hits` = rows read from it.
    func embed(_ samples: [Sample], _ loaded: LoadedModel, modelPath: String, blocks: [Int], what: String,
               started: DispatchTime) throws -> (Embeddings, hits: Int) {
        var lastLog = DispatchTime.now()
        let progress: (Int, Int) -> Void = { done, total in
            if seconds(since: lastLog) > 2 || done == total {
                lastLog = DispatchTime.now()
                log(String(format: "saft: embedded %d/%d %@ (%.0f s)", done, total, what, seconds(since: started)))
            }
        }
        guard let dir = cache else {
            return (try SAFTEmbedder.embed(samples, model: loaded, blocks: blocks, position: position, maxTokens: maxTokens,
                                           batchTokens: batchTokens, progress: progress), 0)
        }
        var c = try EmbeddingCache(directory: dir, modelPath: modelPath, template: templateKey(loaded))
        let r = try c.embed(samples, model: loaded, blocks: blocks, position: position, maxTokens: maxTokens,
                            batchTokens: batchTokens, progress: progress)
        for w in c.warnings { log("saft: warning: \(w)") }
        if r.hits > 0 { log("saft: \(r.hits) of \(samples.count) \(what) read from the cache \(dir)") }
        return r
    }
}

/// The per-user cache of reference embeddings: $SAFETUNE_CACHE (or none), else $XDG_CACHE_HOME/safetune,
/// else ~/.cache/safetune; nil (embed every run) when that directory cannot be written.
func defaultReferenceCache() -> String? {
    let env = ProcessInfo.processInfo.environment
    let root: String
    if let dir = env["SAFETUNE_CACHE"], !dir.isEmpty {
        if dir == "none" { return nil }
        root = dir
    } else if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
        root = xdg + "/safetune"
    } else if let home = env["HOME"], !home.isEmpty {
        root = home + "/.cache/safetune"
    } else {
        return nil
    }
    let dir = root + "/references", probe = dir + "/.write-test-\(getpid())"
    do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: probe))
        try FileManager.default.removeItem(atPath: probe)
        return dir
    } catch {
        log("saft: warning: cannot write the reference cache \(dir) (\(error.localizedDescription)); references are embedded without it")
        return nil
    }
}

func templateKey(_ m: LoadedModel) -> String { m.template.kind.rawValue + "|" + (m.template.defaultSystemPrompt ?? "") }

func resolveBlocks(_ text: String?, layers L: Int, defaults: [Double]) throws -> [Int] {
    func one(_ t: String) throws -> Int {
        if let b = Int(t), b >= 1, b <= L { return b }
        if let f = Double(t), f > 0, f < 1 { return max(1, min(L, Int((f * Double(L)).rounded()))) }
        throw UsageError("--block '\(t)': give blocks in 1...\(L) or relative depths in (0, 1), separated by commas")
    }
    let items = try text.map { try $0.split(separator: ",").map { try one(String($0).trimmingCharacters(in: .whitespaces)) } }
        ?? defaults.map { max(1, Int(($0 * Double(L)).rounded())) }
    return Array(Set(items)).sorted()
}

let guidedDepths = [0.33, 0.5, 0.67, 0.75]

func parseMethod(_ args: ParsedArguments) throws -> String {
    // --validation is the published method's threshold policy: it implies --method subspace.
    let m = args.string("method") ?? (args.has("validation") ? "subspace" : defaultMethod)
    guard ["subspace", "guided", "combined"].contains(m) else { throw UsageError("--method must be subspace, guided or combined") }
    if m == "subspace" && (args.has("guide") || args.has("guide-harmful") || args.has("guide-benign")) {
        throw UsageError("--guide* need --method guided or combined")
    }
    return m
}

/// The reference prompts and a name for the report.
func references(_ args: ParsedArguments) throws -> (harmful: [Sample], benign: [Sample], source: String) {
    let h = args.string("guide-harmful"), b = args.string("guide-benign")
    if h != nil || b != nil {
        guard let h, let b else { throw UsageError("--guide-harmful and --guide-benign go together") }
        if args.has("guide") { throw UsageError("give either --guide builtin or --guide-harmful/--guide-benign") }
        let hs = try readPrompts(h), bs = try readPrompts(b)
        guard hs.count >= 2, bs.count >= 2 else { throw DatasetError("reference files need at least 2 prompts each (\(h): \(hs.count), \(b): \(bs.count))") }
        return (hs.map { Sample(prompt: $0, response: "", harmful: true) }, bs.map { Sample(prompt: $0, response: "", harmful: false) },
                "files \(h), \(b)")
    }
    guard (args.string("guide") ?? "builtin") == "builtin" else { throw UsageError("--guide takes builtin (or use --guide-harmful/--guide-benign)") }
    let r = ReferencePrompts.builtinSamples()
    return (r.harmful, r.benign, "builtin")
}

func guidedOptions(_ args: ParsedArguments) throws -> GuidedSAFT.Options {
    var o = GuidedSAFT.Options()
    if args.string("guide-fpr") == "balanced" {
        o.calibration = .balanced
    } else {
        o.calibration = .benignFalsePositiveRate(try args.double("guide-fpr", default: defaultGuideFPR, range: 1e-6 ... 0.49)!)
    }
    switch args.string("guide-direction") ?? "discriminant" {
    case "mean": o.shrinkage = nil
    case "discriminant": o.shrinkage = try args.double("guide-shrinkage", default: 0.3, range: 1e-6 ... 1)!
    default: throw UsageError("--guide-direction must be discriminant or mean")
    }
    o.adaptRounds = try args.int("guide-adapt", default: defaultGuideAdapt, range: 0 ... 20)!
    return o
}

func directionName(_ o: GuidedSAFT.Options) -> String { o.shrinkage.map { "discriminant (shrinkage \($0))" } ?? "mean difference" }

func subspaceOptions(_ args: ParsedArguments, validation: Bool) throws -> SAFT.Options {
    var options = SAFT.Options()
    guard let weighting = SAFT.Weighting(rawValue: args.string("weighting") ?? "none") else { throw UsageError("--weighting must be none or sigma") }
    options.weighting = weighting
    let subspaceName = args.string("subspace") ?? "auto"
    guard let subspace = PrincipalSubspace.Choice(rawValue: subspaceName == "auto" ? "automatic" : subspaceName) else {
        throw UsageError("--subspace must be auto, exact or randomized")
    }
    options.subspace = subspace
    options.seed = UInt64(try args.int("seed", default: 0, range: 0 ... Int.max)!)
    if let k = try args.int("k", range: 1 ... 64) { options.rank = k } else if !validation { options.rank = 1 }
    return options
}

func labelString(_ h: Bool?) -> String? { h.map { $0 ? "harmful" : "benign" } }

func writeScores(_ path: String, _ data: Dataset, indices: [Int], scores: [Float], removed: [Bool]) throws {
    let lines = try indices.enumerated().map { j, i -> String in
        var o: [String: Any] = ["index": i, "score": Double(scores[j]), "kept": !removed[j]]
        if let l = labelString(data.samples[i].harmful) { o["label"] = l }
        return try jsonLine(o)
    }
    try writeAtomically(Data((lines.map { $0 + "\n" }.joined()).utf8), to: path)
}

func restrict(_ e: Embeddings, to block: Int) -> Embeddings {
    var r = e
    r.byBlock = [block: e.byBlock[block]!]
    return r
}

// MARK: - saft (single machine)

func runAll(_ args: ParsedArguments) throws {
    let started = DispatchTime.now()
    let modelPath = try args.require("model"), dataPath = try args.require("data"), outPath = try args.require("out")
    var setup = try EmbeddingSetup(args)
    var method = try parseMethod(args)
    let policies = ["validation", "remove-fraction", "threshold"].filter { args.has($0) }
    if policies.count > 1 { throw UsageError("choose one of --validation, --remove-fraction and --threshold") }
    if method == "guided" && !policies.isEmpty { throw UsageError("--\(policies[0]) applies to the subspace score (--method subspace or combined)") }
    if method != "subspace" && args.has("validation") { throw UsageError("--validation applies to --method subspace") }
    let responseSetting = args.string("guide-response")
    guard [nil, "on", "off"].contains(responseSetting) else { throw UsageError("--guide-response takes on or off") }
    if responseSetting == "on" && method == "subspace" { throw UsageError("--guide-response on needs --method guided or combined") }
    let responseView = method != "subspace" && responseSetting != "off"
    if args.has("guide-response-block") && !responseView { throw UsageError("--guide-response-block needs --guide-response on") }

    let data = try Dataset.load(dataPath)
    guard data.count >= 1 else { throw DatasetError("\(dataPath) has no rows") }
    if data.count == 1 && !args.has("method") && policies.isEmpty {
        log("saft: one row: the subspace score needs two, so the guided score alone filters")
        method = "guided"
    }
    if method != "guided" && data.count < 2 { throw DatasetError("\(dataPath) has \(data.count) row; the subspace score needs at least 2 (guided works on any count)") }
    let validation = try args.string("validation").map { try Dataset.load($0) }
    if let validation, !validation.hasLabels { throw DatasetError("every row of the validation file needs a `label`") }

    let loaded = try LlamaLoader.load(modelPath)
    let L = loaded.model.config.layers
    let blocks = try resolveBlocks(args.string("block"), layers: L,
                                   defaults: method != "subspace" || validation != nil ? guidedDepths : [0.5])
    log("saft: \(data.count) rows from \(dataPath); model \(modelPath) (\(L) blocks, template \(loaded.template.summary)); method \(method); "
        + "\(method == "subspace" ? "embedding blocks" : "candidate blocks") \(blocks) at \(setup.position.rawValue); "
        + "\(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads")

    // Guided part, references first: they alone choose the block, so the pool is run only that deep
    // (every candidate block with --sweep, which reports them all).
    var fits: [GuidedSAFT.Direction] = []
    var refs: (harmful: Embeddings, benign: Embeddings, hits: Int, source: String, fitSeconds: Double)?
    let o = method == "subspace" ? GuidedSAFT.Options() : try guidedOptions(args), cal = o.calibration
    var poolBlocks = blocks
    if method != "subspace" {
        let prompts = try references(args)
        let refStart = DispatchTime.now()
        let (h, hHits) = try setup.embedReferences(prompts.harmful, loaded, modelPath: modelPath, blocks: blocks, what: "harmful references", started: started)
        let (b, bHits) = try setup.embedReferences(prompts.benign, loaded, modelPath: modelPath, blocks: blocks, what: "benign references", started: started)
        fits = try GuidedSAFT.fit(GuidedSAFT.References(harmful: h, benign: b), options: o)
        refs = (h, b, hHits + bHits, prompts.source, seconds(since: refStart) - h.seconds - b.seconds)
        if !args.flag("sweep") && validation == nil && blocks.count > 1 {
            poolBlocks = [fits[0].block]
            log(String(format: "saft: the references choose block %d (cross-validated AUROC %.4f); the rows are embedded there",
                       fits[0].block, fits[0].cvAUROC))
        }
    }

    let (emb, hits) = try setup.embed(data.samples, loaded, modelPath: modelPath, blocks: poolBlocks, what: "rows", started: started)
    if emb.truncated > 0 { log("saft: \(emb.truncated) rows longer than \(setup.maxTokens) tokens were truncated") }

    var report: [String: Any] = [
        "tool": "saft", "method": method, "model": modelPath, "data": dataPath, "output": outPath, "rows": data.count,
        "blocks_embedded": poolBlocks, "position": setup.position.rawValue, "truncated_rows": emb.truncated, "tokens": emb.tokens,
        "max_tokens": setup.maxTokens, "template": loaded.template.summary, "shared_prefix_tokens": emb.sharedPrefixTokens,
    ]
    if let dir = setup.cache { report["cache"] = ["directory": dir, "rows_from_cache": hits, "rows_embedded": data.count - hits] }
    var timings: [String: Any] = ["embed_seconds": emb.seconds, "tokens_embedded": emb.tokensRun ?? emb.tokens,
                                  "tokens_per_second": emb.tokensPerSecond ?? NSNull()]

    var guided: GuidedSAFT.Result?
    if let refs {
        let (h, b) = (refs.harmful, refs.benign)
        let adaptStart = DispatchTime.now()
        guided = try GuidedSAFT.run(pool: emb, fits: fits, calibration: cal,
                                    adapt: (GuidedSAFT.References(harmful: h, benign: b), o))
        timings["reference_embed_seconds"] = h.seconds + b.seconds
        timings["reference_fit_seconds"] = refs.fitSeconds + seconds(since: adaptStart)
        report["guide"] = [
            "source": refs.source, "harmful_references": h.rows, "benign_references": b.rows,
            "reference_cache": setup.referenceCache.map { ["directory": $0, "rows_from_cache": refs.hits] as [String: Any] } ?? NSNull(),
            "reference_tokens": h.tokens + b.tokens, "calibration": cal.name, "direction": directionName(o),
            "reference_blocks_embedded": blocks,
            // Tokens actually run (shared template prefix once, cached rows not at all).
            "reference_tokens_run": (h.tokensRun ?? h.tokens) + (b.tokensRun ?? b.tokens),
            "blocks": fits.map { ["block": $0.block, "cv_auroc": $0.cvAUROC, "cv_separation": $0.cvSeparation, "threshold": Double($0.threshold),
                                  "benign_reference_score": [$0.benignMeanScore, $0.benignSD],
                                  "harmful_reference_score": [$0.harmfulMeanScore, $0.harmfulSD]] as [String: Any] },
            "chosen_block": guided!.block,
            "adaptation": ["rounds": guided!.adaptation.count,
                           "pseudo_labelled_rows": guided!.adaptation.map { ["harmful": $0.harmful, "benign": $0.benign] },
                           "threshold": Double(guided!.direction.threshold), "cv_auroc": guided!.direction.cvAUROC,
                           "benign_reference_score": [guided!.direction.benignMeanScore, guided!.direction.benignSD],
                           "harmful_reference_score": [guided!.direction.harmfulMeanScore, guided!.direction.harmfulSD]] as [String: Any],
        ]
    }

    // Response view (co-training), when asked: the pool again with its responses, down to that block.
    var response: (result: ResponseView.Result?, block: Int, seconds: Double, tokensRun: Int)?
    if responseView, let g = guided {
        let rb = try resolveBlocks(args.string("guide-response-block") ?? "0.5", layers: L, defaults: [])
        guard rb.count == 1 else { throw UsageError("--guide-response-block takes one block") }
        var rs = setup
        rs.position = .meanResponse
        let (re, _) = try rs.embed(data.samples, loaded, modelPath: modelPath, blocks: rb, what: "rows with their responses", started: started)
        let zg = g.scores.map { (Double($0) - g.direction.benignMeanScore) / max(g.direction.benignSD, 1e-12) }
        let r = try ResponseView.score(guidedZ: zg, guidedRemoved: g.removed, response: re.byBlock[rb[0]]!, dim: re.dim)
        response = (r, rb[0], re.seconds, re.tokensRun ?? re.tokens)
        timings["response_embed_seconds"] = re.seconds
    }

    // The references' share of the pool's embedding (both passes when the response view ran).
    if var guide = report["guide"] as? [String: Any], let h = refs?.harmful, let b = refs?.benign {
        let refTokens = (h.tokensRun ?? h.tokens) + (b.tokensRun ?? b.tokens)
        let poolTokens = (emb.tokensRun ?? emb.tokens) + (response?.tokensRun ?? 0)
        let poolSeconds = emb.seconds + (response?.seconds ?? 0)
        guide["reference_embed_cost_vs_pool"] = poolTokens > 0 ? Double(refTokens) / Double(poolTokens) : NSNull()
        guide["reference_embed_time_vs_pool"] = poolSeconds > 0 ? (h.seconds + b.seconds) / poolSeconds : NSNull()
        report["guide"] = guide
    }

    // Subspace part (the published method, unchanged).
    var subspace: SAFT.Result?
    var validationEmbedSeconds = 0.0
    let fitStart = DispatchTime.now()
    if method != "guided" {
        let options = try subspaceOptions(args, validation: validation != nil)
        let policy: SAFT.Policy
        if let validation {
            let v = try setup.embed(validation.samples, loaded, modelPath: modelPath, blocks: blocks, what: "validation rows", started: started).0
            validationEmbedSeconds = v.seconds
            policy = .validation(embeddings: v.byBlock, labels: validation.samples.map { $0.harmful! })
        } else if let f = try args.double("remove-fraction", range: 0 ... 0.999999) {
            policy = .removeFraction(f)
        } else if let t = try args.double("threshold") {
            policy = .threshold(Float(t))
        } else {
            policy = .automatic
        }
        // Combined without an explicit single block: the subspace is fitted at the guided block.
        let pool = method == "combined" && poolBlocks.count > 1 && validation == nil ? restrict(emb, to: guided!.block) : emb
        subspace = try SAFT.run(pool, policy: policy, options: options)
        let s = subspace!
        report["subspace"] = [
            "block": s.block, "k": s.rank, "weighting": options.weighting.rawValue, "threshold": s.threshold.isFinite ? Double(s.threshold) : NSNull(),
            "threshold_policy": s.policy, "threshold_rule": s.thresholdRule, "singular_values": s.singularValues,
            "subspace": s.subspaceMethod, "removed": s.removedCount,
        ] as [String: Any]
        if let f1 = s.validationF1 { report["validation_f1"] = f1 }
    }
    timings["validation_embed_seconds"] = validationEmbedSeconds

    // The score that filters.
    var scores: [Float], removed: [Bool], threshold: Float, rule: String, block: Int, warnings: [String]
    switch method {
    case "subspace":
        let s = subspace!
        (scores, removed, threshold, rule, block, warnings) = (s.scores, s.removed, s.threshold, s.thresholdRule, s.block, s.warnings)
        report["k"] = s.rank
        report["threshold_policy"] = s.policy
    case "guided":
        let g = guided!
        (scores, removed, threshold, rule, block, warnings) = (g.scores, g.removed, g.threshold, g.thresholdRule, g.block, g.warnings)
        report["threshold_policy"] = "guided-references"
    default:
        let c = GuidedSAFT.combine(guided: guided!, subspace: subspace!)
        (scores, removed, threshold, rule, block, warnings) = (c.scores, c.removed, c.threshold, c.thresholdRule, c.block, c.warnings)
        report["threshold_policy"] = "combined"
    }
    if let response {
        // A row also goes when the joint prompt+response score flags it; the reported score is the larger
        // margin (guided: (g - τ)/sd; combined: its own margin; joint: z - 3.09), positive exactly when removed.
        var rv: [String: Any] = ["block": response.block, "embed_seconds": response.seconds]
        if let r = response.result {
            rv["pseudo_labelled_rows"] = ["harmful": r.pseudoHarmful, "benign": r.pseudoBenign]
            rv["agreement_auroc"] = r.agreement
        }
        if let r = response.result, r.applied {
            let g = guided!, o = ResponseView.Options()
            let base = method == "guided" ? g.scores.map { ($0 - g.threshold) / Float(max(g.direction.benignSD, 1e-12)) } : scores
            scores = zip(base, r.jointZ).map { max($0, Float($1 - o.threshold)) }
            let before = removed.filter { $0 }.count
            removed = zip(removed, r.removed).map { $0 || $1 }
            threshold = 0
            rule += String(format: "; or the joint prompt+response score (co-training on block %d's mean response state, "
                           + "taught by %d/%d confidently harmful/benign rows) above %.2f sd", response.block, r.pseudoHarmful,
                           r.pseudoBenign, o.threshold)
            rv["threshold_sd"] = o.threshold
            rv["added_removals"] = removed.filter { $0 }.count - before
        } else {
            let skipped = response.result.map {
                String(format: "the response view does not confirm the guided score's confident rows (AUROC %.3f < %.2f): "
                       + "no harmful cluster to learn from", $0.agreement, ResponseView.Options().minimumAgreement)
            } ?? "fewer than \(2 * ResponseView.Options().folds) rows confidently harmful (or benign) by the guided score"
            rv["skipped"] = skipped
            log("saft: response view not used: \(skipped)")
        }
        report["response_view"] = rv
    }
    timings["fit_and_score_seconds"] = seconds(since: fitStart)
    for w in warnings { log("saft: warning: \(w)") }
    let removedCount = removed.filter { $0 }.count
    report["score_used"] = (method == "subspace" ? "subspace (published SAFT) score at block \(block)"
        : method == "guided" ? "guided reference-direction score at block \(block)" : "combined: guided or subspace score")
        + (response?.result?.applied == true ? ", or the joint prompt+response score (response view)" : "")
    report["block"] = block
    report["threshold"] = threshold.isFinite ? Double(threshold) : NSNull()
    report["threshold_rule"] = rule
    report["removed"] = removedCount
    report["kept"] = data.count - removedCount
    report["warnings"] = warnings

    let kept = removed.indices.filter { !removed[$0] }
    try writeAtomically(data.serialize(kept), to: outPath)
    let labels: [Bool]? = data.hasLabels ? data.samples.map { $0.harmful! } : nil
    if let path = args.string("scores") { try writeScores(path, data, indices: Array(data.samples.indices), scores: scores, removed: removed) }
    if let path = args.string("plot") {
        let title = "SAFT \(method) scores: block \(block), \(setup.position.rawValue); \(removedCount) of \(data.count) removed"
        // The plot is on a log scale: guided and combined scores are shifted to be positive.
        let shift = method == "subspace" ? 0 : max(0, -(scores.min() ?? 0)) + 1e-3
        try writeAtomically(Data(ScorePlot.svg(scores: scores.map { $0 + shift }, labels: labels, threshold: threshold + shift, title: title).utf8), to: path)
    }
    if let labels {
        let q = RemovalQuality(scores: scores, removed: removed, labels: labels)
        for (k, v) in q.json { report[k] = v }
        log(String(format: "saft: against the data's labels: AUROC %.3f, harmful recall %.3f, precision %.3f, benign removed %.1f%%",
                   q.auroc ?? .nan, q.recall, q.precision, q.benignRemovedFraction * 100))
        if args.flag("sweep") { report["sweep"] = try sweep(emb, labels: labels, fits: fits, args: args) }
    }
    timings["total_seconds"] = seconds(since: started)
    report["timings"] = timings
    report["build"] = buildReport()
    if let path = args.string("report") { try writeAtomically(try jsonData(report), to: path) }
    log("saft: removed \(removedCount) of \(data.count) rows by the \(method) score (\(rule)); wrote \(outPath)")
}

/// Evaluation only (labels never fit anything): the published score at every embedded block and
/// k in 1...4 with its label-free threshold, and the guided score at every block.
func sweep(_ emb: Embeddings, labels: [Bool], fits: [GuidedSAFT.Direction], args: ParsedArguments) throws -> [[String: Any]] {
    var out: [[String: Any]] = []
    var options = try subspaceOptions(args, validation: false)
    for b in emb.byBlock.keys.sorted() {
        for k in 1 ... min(4, emb.rows - 1, emb.dim) {
            options.rank = k
            let r = try SAFT.run(restrict(emb, to: b), policy: .automatic, options: options)
            var o = RemovalQuality(scores: r.scores, removed: r.removed, labels: labels).json
            o["method"] = "subspace"; o["block"] = b; o["k"] = k; o["removed"] = r.removedCount
            out.append(o)
        }
    }
    for f in fits where emb.byBlock[f.block] != nil {
        let s = f.scores(emb.byBlock[f.block]!, rows: emb.rows)
        let removed = s.map { $0 > f.threshold }
        var o = RemovalQuality(scores: s, removed: removed, labels: labels).json
        o["method"] = "guided"; o["block"] = f.block; o["cv_auroc"] = f.cvAUROC; o["removed"] = removed.filter { $0 }.count
        out.append(o)
    }
    return out
}

// MARK: - saft embed / fit / score (map/reduce)

func runEmbed(_ args: ParsedArguments) throws {
    let started = DispatchTime.now()
    let (i, n) = try SAFTShards.parse(try args.require("shard"))
    let modelPath = try args.require("model"), dataPath = try args.require("data"), work = try args.require("work")
    let setup = try EmbeddingSetup(args)
    let data = try Dataset.load(dataPath)
    guard data.count >= 1 else { throw DatasetError("\(dataPath) has no rows") }
    let loaded = try LlamaLoader.load(modelPath)
    let blocks = try resolveBlocks(args.string("block"), layers: loaded.model.config.layers, defaults: guidedDepths)
    let range = SAFTShards.rows(shard: i, of: n, total: data.count)
    log("saft embed: shard \(i)/\(n): rows \(range.lowerBound)..<\(range.upperBound) of \(data.count); blocks \(blocks) at \(setup.position.rawValue)")
    let (emb, _) = try setup.embed(Array(data.samples[range]), loaded, modelPath: modelPath, blocks: blocks, what: "rows", started: started)
    let m = SAFTShards.Manifest(shard: i, shards: n, firstRow: range.lowerBound, rows: range.count, dataRows: data.count, dim: emb.dim,
                                blocks: blocks, position: setup.position.rawValue, maxTokens: setup.maxTokens,
                                modelIdentity: try EmbeddingCache.identity(ofModel: modelPath), template: templateKey(loaded),
                                tokens: emb.tokens, truncated: emb.truncated, embedSeconds: emb.seconds)
    try SAFTShards.write(emb, manifest: m, to: work)
    log(String(format: "saft embed: wrote shard %d/%d to %@ (%d rows, %d truncated, %.1f s)", i, n, work, range.count, emb.truncated, seconds(since: started)))
}

func runFit(_ args: ParsedArguments) throws {
    let started = DispatchTime.now()
    let work = try args.require("work"), modelPath = try args.require("model")
    if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
    let method = try parseMethod(args)
    if args.has("validation") { throw UsageError("--validation is not available in the sharded fit; use the single-machine saft") }
    if args.string("guide-response") == "on" {
        throw UsageError("--guide-response on is not available in the sharded fit (the shards hold prompt states only); use the single-machine saft")
    }
    if args.has("remove-fraction") && args.has("threshold") { throw UsageError("choose one of --remove-fraction and --threshold") }
    if method == "guided" && (args.has("remove-fraction") || args.has("threshold")) { throw UsageError("--remove-fraction/--threshold apply to the subspace score") }
    let ms = try SAFTShards.manifests(work)
    let m0 = ms[0]
    guard try EmbeddingCache.identity(ofModel: modelPath) == m0.modelIdentity else {
        throw DatasetError("\(modelPath) is not the model the shards were embedded with")
    }
    let total = ms.reduce(0) { $0 + $1.rows }
    guard let position = EmbeddingPosition(rawValue: m0.position) else { throw DatasetError("shard manifest: unknown position \(m0.position)") }
    var filter = SAFTFilter(method: method, position: m0.position, maxTokens: m0.maxTokens, modelIdentity: m0.modelIdentity,
                            guided: nil, guidedRule: nil, subspace: nil, warnings: [])
    var report: [String: Any] = ["tool": "saft fit", "method": method, "work": work, "rows": total, "shards": ms.count]
    if method != "subspace" { report["response_view"] = "not available in the sharded fit (the shards hold prompt states): prompt view only" }
    if method != "subspace" {
        let loaded = try LlamaLoader.load(modelPath)
        guard templateKey(loaded) == m0.template else { throw DatasetError("the model's chat template differs from the shards'") }
        var setup = try EmbeddingSetup(args)
        setup.position = position; setup.maxTokens = m0.maxTokens
        let refs = try references(args), o = try guidedOptions(args), cal = o.calibration
        let (h, _) = try setup.embedReferences(refs.harmful, loaded, modelPath: modelPath, blocks: m0.blocks, what: "harmful references", started: started)
        let (b, _) = try setup.embedReferences(refs.benign, loaded, modelPath: modelPath, blocks: m0.blocks, what: "benign references", started: started)
        let references = GuidedSAFT.References(harmful: h, benign: b)
        let fits = try GuidedSAFT.fit(references, options: o)
        var direction = fits[0], rounds: [(harmful: Int, benign: Int)] = []
        if o.adaptRounds > 0 {
            // The same pool rows as a single-machine run: an even stride over the shards in order.
            let rows = GuidedSAFT.adaptationRows(total, options: o)
            var sample: [Float] = [], next = 0, offset = 0
            sample.reserveCapacity(rows.count * m0.dim)
            for m in ms {
                let x = try SAFTShards.embeddings(work, m, blocks: [direction.block])[direction.block]!
                while next < rows.count && rows[next] < offset + m.rows {
                    let r = rows[next] - offset
                    sample += x[r * m0.dim ..< (r + 1) * m0.dim]; next += 1
                }
                offset += m.rows
            }
            (direction, rounds) = try GuidedSAFT.adapt(fits[0], references: references, pool: sample, rows: rows.count, options: o)
        }
        filter.guided = direction
        filter.guidedRule = String(format: "guided: block %d by cross-validated reference AUROC %.4f%@; threshold %@", direction.block, fits[0].cvAUROC,
                                   rounds.isEmpty ? "" : ", adapted to the pool in \(rounds.count) rounds", cal.name)
        report["guide"] = ["source": refs.source, "chosen_block": fits[0].block, "cv_auroc": fits[0].cvAUROC, "direction": directionName(o),
                           "adaptation_rounds": rounds.count, "pseudo_labelled_rows": rounds.map { ["harmful": $0.harmful, "benign": $0.benign] }]
    }
    if method != "guided" {
        let options = try subspaceOptions(args, validation: false)
        let block = try args.int("block").map { b -> Int in
            guard m0.blocks.contains(b) else { throw UsageError("--block \(b) was not embedded (shards hold \(m0.blocks))") }
            return b
        } ?? (method == "combined" ? filter.guided!.block : m0.blocks[0])
        let stats = try SAFTShards.mergedStats(work, ms, block: block)
        guard stats.count >= 2 else { throw DatasetError("the subspace score needs at least 2 rows, the shards hold \(stats.count)") }
        let k = min(options.rank ?? 1, m0.dim, stats.count - 1)
        let pcs = stats.principalComponents(k)
        let weights = (0 ..< k).map { options.weighting == .sigma ? Float(pcs.singularValues[$0]) : 1 }
        var sub = SAFTFilter.Subspace(block: block, rank: k, weights: weights, mean: pcs.mean, basis: pcs.basis,
                                      singularValues: pcs.singularValues, threshold: .infinity, rule: "", rootScale: 1)
        var all: [Float] = []
        for m in ms { all += sub.scores(try SAFTShards.embeddings(work, m, blocks: [block])[block]!, rows: m.rows) }
        sub.rootScale = SAFTFilter.rootScale(all)
        if let t = try args.double("threshold") {
            sub.threshold = Float(t); sub.rule = "fixed threshold \(t)"
        } else if let f = try args.double("remove-fraction", range: 0 ... 0.999999) {
            let removeCount = Int((Double(total) * f).rounded()), sorted = all.sorted(by: >)
            sub.threshold = removeCount == 0 ? .infinity : (removeCount >= sorted.count ? -.infinity : sorted[removeCount])
            sub.rule = "remove the top \(removeCount) of \(total) scores (fraction \(f))"
        } else {
            let auto = ScoreThreshold.automatic(all)
            sub.threshold = auto.threshold; sub.rule = auto.rule
            if let w = auto.warning { filter.warnings.append(w) }
        }
        filter.subspace = sub
        report["subspace"] = ["block": block, "k": k, "threshold": sub.threshold.isFinite ? Double(sub.threshold) : NSNull(), "rule": sub.rule,
                              "singular_values": pcs.singularValues, "subspace": "exact (merged moments)"] as [String: Any]
    }
    try writeAtomically(try filter.encoded(), to: work + "/filter.json")
    for w in filter.warnings { log("saft fit: warning: \(w)") }
    report["warnings"] = filter.warnings
    report["seconds"] = seconds(since: started)
    if let path = args.string("report") { try writeAtomically(try jsonData(report), to: path) }
    log(String(format: "saft fit: %@ filter over %d rows in %d shards written to %@/filter.json (%.1f s)", method, total, ms.count, work, seconds(since: started)))
}

func runScore(_ args: ParsedArguments) throws {
    let (i, n) = try SAFTShards.parse(try args.require("shard"))
    let work = try args.require("work"), dataPath = try args.require("data"), outPath = try args.require("out")
    let filterPath = work + "/filter.json"
    guard let fd = FileManager.default.contents(atPath: filterPath) else { throw DatasetError("no \(filterPath): run `saft fit` first") }
    let filter = try SAFTFilter.decode(fd, path: filterPath)
    let m = try SAFTShards.manifest(work, shard: i, of: n)
    let data = try Dataset.load(dataPath)
    guard data.count == m.dataRows else { throw DatasetError("\(dataPath) has \(data.count) rows; the shards were embedded from \(m.dataRows)") }
    let x = try SAFTShards.embeddings(work, m, blocks: filter.blocks)
    let (scores, removed, _) = try filter.apply(x, rows: m.rows)
    let indices = Array(m.firstRow ..< m.firstRow + m.rows)
    try writeAtomically(data.serialize(zip(indices, removed).filter { !$0.1 }.map(\.0)), to: outPath)
    if let path = args.string("scores") { try writeScores(path, data, indices: indices, scores: scores, removed: removed) }
    let removedCount = removed.filter { $0 }.count
    if let path = args.string("report") {
        try writeAtomically(try jsonData(["tool": "saft score", "shard": i, "shards": n, "rows": m.rows, "removed": removedCount,
                                          "method": filter.method, "first_row": m.firstRow] as [String: Any]), to: path)
    }
    log("saft score: shard \(i)/\(n): removed \(removedCount) of \(m.rows) rows by the \(filter.method) score; wrote \(outPath)")
}

/// `saft [embed|fit|score] OPTIONS` (the arguments after the tool name).
public func saftMain(_ arguments: [String]) -> Never {
    switch arguments.first {
    case "embed": runCommand(embedSpec, arguments: Array(arguments.dropFirst())) { try runEmbed($0) }
    case "fit": runCommand(fitSpec, arguments: Array(arguments.dropFirst())) { try runFit($0) }
    case "score": runCommand(scoreSpec, arguments: Array(arguments.dropFirst())) { try runScore($0) }
    default: runCommand(mainSpec, arguments: arguments) { try runAll($0) }
    }
}
