/// Every kernel family's benchmark cases, in the order they print. A family adds one line here
/// and its cases in `Cases+Family.swift`.
func allCases(quick: Bool) -> [BenchCase] {
    gemmCases(quick: quick)
        + streamCases(quick: quick)
        + layersCases(quick: quick)
        + attentionCases(quick: quick)
        + linalgCases(quick: quick)
}
