internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Reads the `PROGRESS` lines a job appends to its output log, from where the last read stopped (after a
/// restart: from the start, so progress resumes at the job's latest line).
struct ProgressFollower {
    let path: String
    private var offset: UInt64 = 0
    private var partial = ""

    init(path: String) { self.path = path }

    /// The newest progress in what was appended since the last call, if any.
    mutating func poll() -> StepProgress? {
        guard let data = FileReader(path: path)?.readToEnd(from: offset), !data.isEmpty else {
            return nil
        }
        offset += UInt64(data.count)
        var latest: StepProgress?
        let text = partial + String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        partial = String(lines.removeLast())
        for line in lines where line.hasPrefix("PROGRESS ") {
            if let p = ProgressLine.parse(line) { latest = p }
        }
        return latest
    }
}
