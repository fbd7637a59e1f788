import Foundation

/// Memory figures of this process for reports.
public enum ProcessMemory {
    /// Peak resident set size so far, in bytes (`getrusage`: kilobytes on Linux, bytes on Darwin).
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }
}
