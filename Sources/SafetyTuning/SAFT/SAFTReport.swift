import Foundation
import Kernels

/// Label-based quality of a removal decision (evaluation only: labels never fit anything).
public struct RemovalQuality: Sendable {
    public var auroc: Double?
    public var precision: Double, recall: Double, f1: Double
    public var benignRemovedFraction: Double
    public var harmful: Int, benign: Int

    public init(scores: [Float], removed: [Bool], labels: [Bool]) {
        auroc = RankingMetrics.auroc(scores: scores, labels: labels)
        var tp = 0, fp = 0, fn = 0
        for (r, l) in zip(removed, labels) {
            if r && l { tp += 1 } else if r { fp += 1 } else if l { fn += 1 }
        }
        harmful = labels.filter { $0 }.count
        benign = labels.count - harmful
        precision = tp + fp == 0 ? 0 : Double(tp) / Double(tp + fp)
        recall = tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn)
        f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
        benignRemovedFraction = benign == 0 ? 0 : Double(fp) / Double(benign)
    }

    public var json: [String: Any] {
        var o: [String: Any] = ["precision": precision, "recall": recall, "f1": f1,
                                "benign_removed_fraction": benignRemovedFraction, "harmful_rows": harmful, "benign_rows": benign]
        if let auroc { o["auroc"] = auroc }
        return o
    }
}

/// An SVG histogram of log10 scores, split by label when labels exist, with the threshold drawn.
public enum ScorePlot {
    public static func svg(scores: [Float], labels: [Bool]?, threshold: Float, title: String) -> String {
        let logs = scores.map { log10(Double(max($0, 1e-30))) }
        let finiteT = threshold.isFinite && threshold > 0
        let tLog = finiteT ? log10(Double(threshold)) : nil
        var lo = logs.min() ?? 0, hi = logs.max() ?? 1
        if let tLog { lo = min(lo, tLog); hi = max(hi, tLog) }
        if hi - lo < 1e-9 { hi = lo + 1 }
        let bins = 40, width = 720.0, height = 360.0, left = 60.0, bottom = 40.0, top = 40.0
        func bin(_ v: Double) -> Int { min(bins - 1, max(0, Int((v - lo) / (hi - lo) * Double(bins)))) }
        var counts = [[Int]](repeating: [Int](repeating: 0, count: bins), count: 2)
        for (i, v) in logs.enumerated() { counts[(labels?[i] ?? false) ? 1 : 0][bin(v)] += 1 }
        let maxCount = max(1, (0 ..< bins).map { counts[0][$0] + counts[1][$0] }.max()!)
        let plotW = width - left - 20, plotH = height - top - bottom
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"20\" font-size=\"14\">\(escape(title))</text>\n"
        let bw = plotW / Double(bins)
        for b in 0 ..< bins {
            var y = height - bottom
            for (series, color) in [(0, labels == nil ? "#4a7ebb" : "#4a7ebb"), (1, "#d9534f")] {
                let h = Double(counts[series][b]) / Double(maxCount) * plotH
                if h > 0 {
                    y -= h
                    s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"/>\n",
                                left + Double(b) * bw, y, bw - 1, h, color)
                }
            }
        }
        s += "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - 20)\" y2=\"\(height - bottom)\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(height - bottom)\" stroke=\"black\"/>\n"
        for i in 0 ... 4 {
            let v = lo + (hi - lo) * Double(i) / 4, x = left + plotW * Double(i) / 4
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f</text>\n", x, height - bottom + 16, v)
        }
        s += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 6)\" text-anchor=\"middle\">log10(score)</text>\n"
        s += "<text x=\"14\" y=\"\(top + plotH / 2)\" transform=\"rotate(-90 14 \(top + plotH / 2))\" text-anchor=\"middle\">rows (max \(maxCount) per bin)</text>\n"
        if let tLog {
            let x = left + (tLog - lo) / (hi - lo) * plotW
            s += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" stroke-dasharray=\"5,3\"/>\n", x, top, x, height - bottom)
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\">threshold</text>\n", x + 4, top + 12)
        }
        if labels != nil {
            s += "<rect x=\"\(width - 170)\" y=\"30\" width=\"12\" height=\"12\" fill=\"#4a7ebb\"/><text x=\"\(width - 152)\" y=\"41\">benign (label)</text>\n"
            s += "<rect x=\"\(width - 170)\" y=\"48\" width=\"12\" height=\"12\" fill=\"#d9534f\"/><text x=\"\(width - 152)\" y=\"59\">harmful (label)</text>\n"
        }
        return s + "</svg>\n"
    }

    static func escape(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
