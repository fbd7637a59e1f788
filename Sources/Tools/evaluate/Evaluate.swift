import Foundation
import Kernels
import Llama
import RunSupport
import SafetyTuning

let spec = CommandSpec(
    name: "evaluate",
    synopsis: "--model M.gguf [--adapter DIR] [--harmful FILE] [--over-refusal FILE] [--benign FILE] [--labeled FILE] --judge J.json --out R.json [--samples S.jsonl] [options]\n       evaluate --compare A.json B.json ...",
    details: """
    Measures a model (optionally with a PEFT LoRA adapter merged in):
      --harmful: answers harmful prompts and reports the harmful-answer rate (answers the judge calls
        harmful) with a 95% Wilson interval, and the refusal rate;
      --over-refusal: answers safe prompts that look unsafe (XSTest's safe half) and reports the refusal rate;
      --benign: prompts with reference answers; mean NLL and perplexity of the references under the
        model, and ROUGE-L of the generated answers against them;
      --labeled: no generation; judges labeled (prompt, response) rows and reports its agreement with
        the labels (and the refusal detector's, when rows carry a boolean `refusal`).
    The judge: harmful = the answer is not a refusal (phrase and pattern detector) AND the classifier
    of --judge (trained by train-judge on the judge model's own embeddings) says harmful. The judge
    model is --judge-model, else the base model of --model when it is the judge's model.
    Prompt files: JSONL with "prompt" (or instruction/input, goal) or plain lines; rows with a
    `label` keep only harmful rows for --harmful and benign rows for --over-refusal. FILE:N uses a
    seeded sample of N rows. --compare prints a Markdown table of several reports side by side.
    """,
    options: [
        .init("model", "PATH", "GGUF model or Hugging Face safetensors directory to evaluate"),
        .init("adapter", "DIR", "PEFT LoRA adapter directory merged into --model before evaluating"),
        .init("judge", "FILE", "judge file from train-judge (needed by --harmful; without it --labeled checks only the refusal detector)"),
        .init("judge-model", "PATH", "model the judge embeds with (default: --model without adapter)"),
        .init("harmful", "FILE[:N]", "harmful prompts (repeatable; rates per file and pooled)", repeatable: true),
        .init("over-refusal", "FILE[:N]", "safe prompts that look unsafe", repeatable: true),
        .init("benign", "FILE[:N]", "prompts with reference answers (prompt/response, Alpaca, messages)"),
        .init("labeled", "FILE[:N]", "labeled (prompt, response, label) rows to check the judge against"),
        .init("out", "FILE", "JSON report"),
        .init("samples", "FILE", "JSONL of every prompt, answer and verdict"),
        .init("max-new-tokens", "N", "new tokens per answer (default 128)"),
        .init("batch-size", "N", "prompts generated together (default 32)"),
        .init("temperature", "T", "sampling temperature (default 0 = greedy)"),
        .init("seed", "S", "seed of sampling and of FILE:N samples (default 0)"),
        .init("system", "TEXT", "system prompt (default: the template's own)"),
        .init("batch-tokens", "N", "tokens per forward batch when embedding or scoring (default 4096)"),
        .init("threads", "N", "worker threads (default: all cores)"),
        .init("compare", "A.json B.json ...", "print a Markdown table of evaluate reports and exit"),
    ])

/// The `evaluate` command; `arguments` are the options after the tool name.
public func evaluateMain(_ rawArguments: [String]) -> Never {
    // `--compare` takes a list of files, which the option parser does not do: handle it first.
    if let c = rawArguments.firstIndex(of: "--compare") {
        let files = Array(rawArguments[(c + 1)...])
        guard rawArguments.count == files.count + 1, !files.isEmpty, !files.contains(where: { $0.hasPrefix("--") }) else {
            log("evaluate: --compare takes report files and no other options\n\n\(spec.usage)")
            exit(2)
        }
        do {
            print(try CompareTable.markdown(files), terminator: "")
            exit(0)
        } catch {
            log("evaluate: error: \(error)")
            exit(1)
        }
    }

    runCommand(spec, arguments: rawArguments) { args in
        let started = DispatchTime.now()
        let modelPath = try args.require("model")
        let parts = ["harmful", "over-refusal", "benign", "labeled"].filter { args.has($0) }
        guard !parts.isEmpty else { throw UsageError("give at least one of --harmful, --over-refusal, --benign and --labeled") }
        if args.has("harmful") && !args.has("judge") { throw UsageError("--harmful needs --judge") }
        guard args.has("out") || args.has("samples") else { throw UsageError("give --out (and/or --samples): nothing would be written") }
        if let t = try args.int("threads", range: 1 ... 1024) { Parallel.defaultWorkers = t }
        let seed = UInt64(try args.int("seed", default: 0, range: 0 ... Int.max)!)
        let temperature = try args.double("temperature", default: 0, range: 0 ... 100)!
        let maxNew = try args.int("max-new-tokens", default: 128, range: 1 ... 1 << 20)!
        let batchSize = try args.int("batch-size", default: 32, range: 1 ... 4096)!
        let batchTokens = try args.int("batch-tokens", default: 4096, range: 16 ... 1 << 24)!
        let system = args.string("system")
        for name in ["out", "samples"] { if let p = args.string(name) { try checkOutputFolder(p) } }

        // Every input is read and checked before the model loads.
        let harmfulSets = try args.strings("harmful").map { try PromptSet.load($0, keep: .harmful, seed: seed) }
        let overRefusalSets = try args.strings("over-refusal").map { try PromptSet.load($0, keep: .benign, seed: seed) }
        let benign = try args.string("benign").map { arg -> (path: String, samples: [Sample]) in
            let (path, limit) = try splitRowLimit(arg)
            let d = try Dataset.load(path)
            guard !d.samples.isEmpty else { throw DatasetError("\(path) has no rows") }
            let rows = limit.map { PromptSplit.sample(d.count, count: $0, seed: seed) } ?? Array(0 ..< d.count)
            return (path, rows.map { d.samples[$0] })
        }
        let labeled = try args.string("labeled").map { try LabeledSet.load($0, seed: seed) }
        let judgeFile = try args.string("judge").map { try JudgeFile.load($0) }
        if let labeled, labeled.refusals == nil, judgeFile == nil {
            throw DatasetError("\(labeled.path): without --judge, --labeled checks the refusal detector and needs a boolean `refusal` on every row")
        }
        if let adapter = args.string("adapter") {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: adapter, isDirectory: &isDir), isDir.boolValue else {
                throw DatasetError("--adapter \(adapter) is not a directory")
            }
        }

        let base = try LlamaLoader.load(modelPath)
        var model = base
        if let dir = args.string("adapter") {
            let adapter = try LoRAAdapter.loadPEFT(from: dir, modelConfig: base.model.config)
            model.model = LlamaModel(weights: try adapter.merged(into: base.model.weights))
            log("evaluate: merged adapter \(dir) (rank \(adapter.config.rank), targets \(adapter.config.targets.map(\.rawValue).joined(separator: ",")))")
        }
        var judge: HarmJudge?, judgeModel: LoadedModel?
        if let judgeFile {
            let j = HarmJudge(file: judgeFile)
            if let path = args.string("judge-model") {
                judgeModel = try LlamaLoader.load(path)
            } else {
                judgeModel = base
            }
            do { try j.check(model: judgeModel!) } catch {
                throw DatasetError("\(error)\(args.has("judge-model") ? "" : "; pass --judge-model with the judge's model")")
            }
            judge = j
        }
        let c = model.model.config
        log("evaluate: model \(modelPath) (\(c.layers) blocks, width \(c.hiddenSize)); template \(model.template.summary); parts \(parts); "
            + "\(BuildInfo.isa) build, \(Parallel.defaultWorkers) threads")

        var options = GenerationOptions(maxNewTokens: maxNew, temperature: Float(temperature), seed: seed)
        options.stopTokens = model.stopTokens
        var generation = GenerationStats()
        var lastPart = GenerationStats()
        func answer(_ prompts: [String], part: String) throws -> [(text: String, tokens: Int)] {
            var out: [(String, Int)] = []
            let t0 = DispatchTime.now()
            for b in stride(from: 0, to: prompts.count, by: batchSize) {
                let batch = Array(prompts[b ..< min(prompts.count, b + batchSize)])
                let ids = try model.model.generate(batch.map { model.promptTokens($0, system: system) }, options: options)
                for a in ids { out.append((model.responseText(a), a.count)); generation.newTokens += a.count }
                let done = out.count, dt = seconds(since: t0)
                log(String(format: "evaluate: %@: answered %d/%d (%.1f answers/min, ETA %.0f s)", part, done, prompts.count,
                           Double(done) / dt * 60, dt / Double(done) * Double(prompts.count - done)))
            }
            lastPart = GenerationStats(answers: prompts.count, newTokens: out.reduce(0) { $0 + $1.1 }, seconds: seconds(since: t0))
            generation.answers += prompts.count
            generation.seconds += lastPart.seconds
            return out
        }

        var report: [String: Any] = [
            "tool": "evaluate", "model": modelPath, "adapter": args.string("adapter") ?? NSNull(), "template": model.template.summary,
            "rule": JudgeFile.ruleText, "build": buildReport(),
        ]
        if let judgeFile {
            report["judge"] = ["file": args.string("judge")!, "model": judgeFile.model.name, "model_fingerprint": judgeFile.model.fingerprint,
                               "judge_model_path": args.string("judge-model") ?? modelPath,
                               "block": judgeFile.embedding.block, "blocks": judgeFile.embedding.featureBlocks, "position": judgeFile.embedding.position,
                               "last_token_blocks": judgeFile.embedding.lastTokenBlocks ?? [], "threshold": judgeFile.threshold,
                               "held_out": judgeFile.heldOut.map { ["source": $0.source, "classifier": $0.classifier.json, "rule": $0.rule.json] }]
        }
        var samples: [String] = []
        let detector = RefusalDetector()

        // Harmful prompts: harmful-answer rate per file and pooled.
        if !harmfulSets.isEmpty, let judge, let judgeModel {
            var sets: [[String: Any]] = [], pooledHarmful = 0, pooledRefused = 0, pooledN = 0
            for set in harmfulSets {
                let answers = try answer(set.prompts, part: "harmful \(set.name)")
                let genStats = lastPart.json
                let verdicts = try judge.judge(prompts: set.prompts, answers: answers.map(\.text), model: judgeModel, batchTokens: batchTokens)
                let harmful = verdicts.filter(\.harmful).count, refused = verdicts.filter { $0.refusal != nil }.count, n = verdicts.count
                pooledHarmful += harmful; pooledRefused += refused; pooledN += n
                sets.append(rateSection(set, n: n, count: harmful, key: "harmful_rate") + rateSection(set, n: n, count: refused, key: "refusal_rate")
                            + ["mean_harm_probability": verdicts.compactMap(\.probability).reduce(0, +) / Double(max(1, n)), "generation": genStats])
                for (i, v) in verdicts.enumerated() {
                    samples.append(try jsonLine(["part": "harmful", "file": set.path, "index": set.rows[i], "prompt": set.prompts[i],
                                                 "answer": answers[i].text, "tokens": answers[i].tokens, "refused": v.refusal != nil,
                                                 "refusal_rule": v.refusal ?? NSNull(), "harm_probability": v.probability ?? NSNull(),
                                                 "harmful": v.harmful]))
                }
                log(String(format: "evaluate: harmful %@: %d of %d answers judged harmful (%.1f%%), %d refusals", set.name, harmful, n,
                           100 * Double(harmful) / Double(n), refused))
            }
            let ci = EvaluationMetrics.wilson(successes: pooledHarmful, n: pooledN)
            let rci = EvaluationMetrics.wilson(successes: pooledRefused, n: pooledN)
            report["harmful"] = ["sets": sets, "n": pooledN, "harmful": pooledHarmful, "harmful_rate": Double(pooledHarmful) / Double(pooledN),
                                 "harmful_rate_ci95": [ci.low, ci.high], "refusal_rate": Double(pooledRefused) / Double(pooledN),
                                 "refusal_rate_ci95": [rci.low, rci.high]]
            report["harmful_rate"] = Double(pooledHarmful) / Double(pooledN)
            report["harmful_rate_ci95"] = [ci.low, ci.high]
            report["n_harmful"] = pooledN
        }

        // Safe prompts that look unsafe: refusal rate.
        if !overRefusalSets.isEmpty {
            var sets: [[String: Any]] = [], refusedTotal = 0, nTotal = 0
            for set in overRefusalSets {
                let answers = try answer(set.prompts, part: "over-refusal \(set.name)")
                let rules = answers.map { detector.match($0.text) }
                let refused = rules.filter { $0 != nil }.count
                refusedTotal += refused; nTotal += answers.count
                sets.append(rateSection(set, n: answers.count, count: refused, key: "over_refusal_rate") + ["generation": lastPart.json])
                for i in answers.indices {
                    samples.append(try jsonLine(["part": "over_refusal", "file": set.path, "index": set.rows[i], "prompt": set.prompts[i],
                                                 "answer": answers[i].text, "tokens": answers[i].tokens, "refused": rules[i] != nil,
                                                 "refusal_rule": rules[i] ?? NSNull()]))
                }
                log(String(format: "evaluate: over-refusal %@: %d of %d answers refuse (%.1f%%)", set.name, refused, answers.count,
                           100 * Double(refused) / Double(answers.count)))
            }
            let ci = EvaluationMetrics.wilson(successes: refusedTotal, n: nTotal)
            report["over_refusal"] = ["sets": sets, "n": nTotal, "refusals": refusedTotal, "over_refusal_rate": Double(refusedTotal) / Double(nTotal),
                                      "over_refusal_rate_ci95": [ci.low, ci.high]]
            report["over_refusal_rate"] = Double(refusedTotal) / Double(nTotal)
            report["over_refusal_rate_ci95"] = [ci.low, ci.high]
            report["n_over_refusal"] = nTotal
        }

        // Prompts with references: NLL of the references, ROUGE-L of the generated answers.
        if let benign {
            let t0 = DispatchTime.now()
            let nll = try ResponseNLL.score(benign.samples, model: model, batchTokens: batchTokens)
            let nllSeconds = seconds(since: t0)
            log(String(format: "evaluate: benign: reference NLL %.4f nats/token (perplexity %.2f) over %d tokens in %.1f s", nll.meanNLL,
                       nll.perplexity, nll.tokens, nllSeconds))
            let prompts = benign.samples.map(\.prompt)
            let answers = try answer(prompts, part: "benign")
            let rouge = zip(answers, benign.samples).map { EvaluationMetrics.rougeL(candidate: $0.text, reference: $1.response) }
            let meanRouge = rouge.reduce(0, +) / Double(rouge.count)
            let sd = (rouge.map { ($0 - meanRouge) * ($0 - meanRouge) }.reduce(0, +) / Double(max(1, rouge.count - 1))).squareRoot()
            let scored = nll.perSample.compactMap { $0 }
            let half = 1.96 * sd / Double(rouge.count).squareRoot()
            let refusals = answers.filter { detector.isRefusal($0.text) }.count
            var section: [String: Any] = ["file": benign.path, "n": benign.samples.count, "benign_nll": nll.meanNLL]
            section["benign_perplexity"] = nll.perplexity
            section["mean_sample_nll"] = scored.reduce(0, +) / Double(max(1, scored.count))
            section["nll_tokens"] = nll.tokens
            section["nll_samples"] = scored.count
            section["truncated"] = nll.truncated
            section["rouge_l"] = meanRouge
            section["rouge_l_ci95"] = [max(0, meanRouge - half), min(1, meanRouge + half)]
            section["refusal_rate"] = Double(refusals) / Double(answers.count)
            section["nll_seconds"] = nllSeconds
            section["generation"] = lastPart.json
            report["benign"] = section
            report["benign_nll"] = nll.meanNLL
            report["benign_perplexity"] = nll.perplexity
            report["rouge_l"] = meanRouge
            report["n_benign"] = benign.samples.count
            for i in benign.samples.indices {
                samples.append(try jsonLine(["part": "benign", "file": benign.path, "prompt": prompts[i], "reference": benign.samples[i].response,
                                             "answer": answers[i].text, "tokens": answers[i].tokens, "rouge_l": rouge[i],
                                             "reference_nll": nll.perSample[i] ?? NSNull()]))
            }
            log(String(format: "evaluate: benign: ROUGE-L %.4f over %d answers", meanRouge, rouge.count))
        }

        // Labeled answers: how far the judge agrees with the labels.
        if let labeled {
            var section: [String: Any] = ["file": labeled.path, "n": labeled.labels.count]
            var verdicts: [Verdict]
            if let judge, let judgeModel {
                verdicts = try judge.judge(prompts: labeled.prompts, answers: labeled.answers, model: judgeModel, batchTokens: batchTokens)
                let classifier = EvaluationMetrics.agreement(predicted: verdicts.map { $0.probability! > judge.file.threshold }, labels: labeled.labels)
                let rule = EvaluationMetrics.agreement(predicted: verdicts.map(\.harmful), labels: labeled.labels)
                section["classifier"] = classifier.json
                section["rule"] = rule.json
                section["always_benign_accuracy"] = 1 - Double(rule.positives) / Double(rule.n)
                log(String(format: "evaluate: labeled %@: rule accuracy %.3f, precision %.3f, recall %.3f, F1 %.3f (n %d, %d harmful)",
                           labeled.path, rule.accuracy, rule.precision, rule.recall, rule.f1, rule.n, rule.positives))
            } else {
                // Without a judge file only the refusal detector is checked.
                verdicts = labeled.answers.map { a in
                    let r = detector.match(a)
                    return Verdict(refusal: r, probability: nil, harmful: false)
                }
            }
            if let refusalLabels = labeled.refusals {
                let a = EvaluationMetrics.agreement(predicted: verdicts.map { $0.refusal != nil }, labels: refusalLabels)
                section["refusal_detector"] = a.json
                log(String(format: "evaluate: labeled %@: refusal detector accuracy %.3f, precision %.3f, recall %.3f (n %d, %d refusals)",
                           labeled.path, a.accuracy, a.precision, a.recall, a.n, a.positives))
            }
            report["labeled"] = section
            for (i, v) in verdicts.enumerated() {
                var o: [String: Any] = ["part": "labeled", "file": labeled.path, "index": labeled.rows[i], "prompt": labeled.prompts[i],
                                        "answer": labeled.answers[i], "label": labeled.labels[i] ? "harmful" : "benign",
                                        "refused": v.refusal != nil, "refusal_rule": v.refusal ?? NSNull()]
                if judge != nil { o["harm_probability"] = v.probability ?? NSNull(); o["harmful"] = v.harmful }
                if let r = labeled.refusals { o["refusal_label"] = r[i] }
                samples.append(try jsonLine(o))
            }
        }

        if generation.answers > 0 {
            report["generation"] = ["answers": generation.answers, "new_tokens": generation.newTokens, "seconds": generation.seconds,
                                    "answers_per_minute": Double(generation.answers) / generation.seconds * 60,
                                    "new_tokens_per_second": Double(generation.newTokens) / generation.seconds,
                                    "max_new_tokens": maxNew, "batch_size": batchSize,
                                    "decoding": temperature == 0 ? "greedy" : "temperature \(temperature), seed \(seed)"]
        }
        report["seconds"] = seconds(since: started)
        // Outputs are written only after every part succeeded.
        if let path = args.string("samples") { try writeAtomically(Data(samples.map { $0 + "\n" }.joined().utf8), to: path) }
        if let path = args.string("out") { try writeAtomically(try jsonData(report), to: path) }
        log(String(format: "evaluate: done in %.0f s", seconds(since: started)))
    }
}
