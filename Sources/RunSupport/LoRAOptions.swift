import Llama

extension ParsedArguments {
    /// `--targets`: comma-separated projections (q, k, v, o, gate, up, down, or PEFT names), or `all`.
    public func loraTargets(default d: String) throws -> [LoRATarget] {
        let (targets, unknown) = LoRATarget.parseList(string("targets") ?? d)
        if let unknown {
            throw UsageError(unknown.isEmpty ? "--targets is empty" : "--targets: '\(unknown)' is not one of q, k, v, o, gate, up, down")
        }
        return targets
    }
}
