import Delivery
import FoundationEssentials
import Glibc

/// `dropbox-agent status --watch`: the dashboard in a terminal. On a TTY the screen is redrawn every interval with
/// a progress bar per running request; otherwise (a pipe, a log file) a plain table is printed whenever it changes.
/// Ctrl-C ends it.
enum StatusWatch {
    static func run(spool: String, interval: Double, name: String?) throws -> Never {
        let tty = isatty(STDOUT_FILENO) == 1
        var previous = ""
        while true {
            var docs = DashboardWriter.readDocuments(spool: spool)
            if let name { docs = docs.filter { $0.request == name } }
            let table = render(docs, now: Date(), colour: tty)
            if tty {
                let header = "dropbox-agent status --watch · \(spool) · \(Timestamp.now()) · Ctrl-C to stop\n\n"
                StandardStream.write("\u{1B}[H\u{1B}[2J" + header + table, to: 1)
            } else if table != previous {
                StandardStream.write("-- \(Timestamp.now())\n" + table, to: 1)
                previous = table
            }
            NativeThread.sleep(seconds: interval)
        }
    }

    /// Running first (with a bar), then queued and waiting in order, then the last 20 finished.
    static func render(_ docs: [StatusDocument], now: Date, colour: Bool) -> String {
        let order: [RequestState: Int] = [.running: 0, .queued: 1, .waiting: 2]
        let live = docs.filter { !$0.state.isTerminal }.sorted {
            (order[$0.state] ?? 9, $0.submittedAt ?? "") < (order[$1.state] ?? 9, $1.submittedAt ?? "")
        }
        let finished = docs.filter { $0.state.isTerminal }.sorted { ($0.finishedAt ?? "") > ($1.finishedAt ?? "") }
            .prefix(20)
        var out =
            StatusCommand.pad("NAME", 28) + StatusCommand.pad("STATE", 11) + StatusCommand.pad("STEP", 16)
            + StatusCommand.pad("PROGRESS", 30) + "ETA / ERROR\n"
        for d in live + finished {
            let step = d.step.map { "\($0.number)/6 \($0.name)" } ?? "-"
            var progress = "-"
            if d.state == .running {
                let f = d.progress?.fraction ?? 0
                let filled = Int((f * 20).rounded())
                progress =
                    "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 20 - filled) + "] "
                    + TextEssentials.fixed(f * 100, fractionDigits: 0, width: 3) + "%"
            }
            let tail =
                d.state == .running
                ? (d.progress?.etaSeconds.map { "eta " + DashboardRenderer.humanDuration($0) } ?? "")
                : (d.error.map { "[\($0.code)]" } ?? "")
            var state = StatusCommand.pad(d.state.rawValue, 11)
            if colour {
                let code =
                    switch d.state {
                    case .succeeded: "32"
                    case .failed, .rejected: "31"
                    case .running: "34"
                    case .cancelled: "33"
                    default: "0"
                    }
                state = "\u{1B}[\(code)m" + state + "\u{1B}[0m"
            }
            out +=
                StatusCommand.pad(d.request, 28) + state + StatusCommand.pad(step, 16) + StatusCommand.pad(progress, 30)
                + tail + "\n"
        }
        if docs.isEmpty { out += "(no requests)\n" }
        return out
    }
}
