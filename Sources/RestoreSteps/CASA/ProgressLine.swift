/// The progress protocol CASA programs speak on standard output: one line `PROGRESS <done> <total> <free text>`.
enum ProgressLine {
    /// The progress a line announces, or nil if it is not a well-formed `PROGRESS` line.
    static func parse(_ line: some StringProtocol) -> StepProgress? {
        var text = Substring(line)
        while let last = text.last, last.isNewline { text.removeLast() }
        let parts = text.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == "PROGRESS", let done = Int64(parts[1]), let total = Int64(parts[2]),
            done >= 0, total >= 0
        else { return nil }
        let fraction: Double? = total > 0 ? min(1, Double(done) / Double(total)) : nil
        let message = parts.count == 4 ? String(parts[3]) : nil
        return StepProgress(fraction: fraction, message: message)
    }
}
