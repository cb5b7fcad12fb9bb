import ArgumentParser
import Delivery
import FoundationEssentials
import Glibc

/// `dropbox-agent status [NAME]`: one request, or a table of all requests in the spool.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show one request, or a table of all, with state, step and progress.")

    @Argument(help: "The request name (default: all requests).")
    var name: String?

    @OptionGroup var spoolOptions: SpoolOptions

    @Flag(name: .long, help: "Print JSON (the status document, or an array of them).")
    var json = false

    @Flag(
        name: .long,
        help:
            "Keep showing the requests, refreshed (a live table with progress bars on a terminal, plain tables on changes otherwise); Ctrl-C ends it."
    )
    var watch = false

    @Option(name: .long, help: "Seconds between refreshes with --watch.")
    var interval: Double = 1

    func validate() throws {
        if watch && json { throw ValidationError("--watch and --json cannot be combined") }
        if !(interval > 0) { throw ValidationError("--interval must be positive") }
    }

    func run() throws {
        let configuration = try spoolOptions.load()
        let spool = configuration.spool.directory!
        if watch { try StatusWatch.run(spool: spool, interval: interval, name: name) }
        if let name {
            let path = spool + "/" + SpoolNames.statusFile(for: name)
            guard SpoolNames.isValidName(name), let data = FileManager.default.contents(atPath: path) else {
                throw fail("no request named \(name) in \(spool)")
            }
            if json {
                StandardStream.write([UInt8](data), to: 1)
                return
            }
            guard let doc = try? StatusDocument.decode(data) else { throw fail("\(path) is not a status document") }
            print(Self.describe(doc))
            return
        }
        let listing: [String]
        do { listing = try FileManager.default.contentsOfDirectory(atPath: spool) } catch {
            throw fail(
                "cannot list the spool \(spool): \(ErrorText.describe(error)) (name the request: dropbox-agent status NAME)"
            )
        }
        let entries = listing.filter { $0.hasSuffix(".status.json") && !$0.hasPrefix(".") }.sorted()
        let docs = entries.compactMap {
            FileManager.default.contents(atPath: spool + "/" + $0).flatMap { try? StatusDocument.decode($0) }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            StandardStream.write([UInt8](try encoder.encode(docs)), to: 1)
            print()
            return
        }
        print(
            Self.pad("NAME", 28) + Self.pad("STATE", 11) + Self.pad("STEP", 15) + Self.pad("PROGRESS", 10) + "UPDATED")
        for d in docs {
            let step = d.step.map { "\($0.number) \($0.name)" } ?? "-"
            let progress = d.progress?.fraction.map { TextEssentials.fixed($0 * 100, fractionDigits: 0) + "%" } ?? "-"
            print(
                Self.pad(d.request, 28) + Self.pad(d.state.rawValue, 11) + Self.pad(step, 15) + Self.pad(progress, 10)
                    + d.updatedAt)
        }
    }

    static func pad(_ s: String, _ n: Int) -> String {
        s.count >= n ? String(s.prefix(n - 1)) + " " : s + String(repeating: " ", count: n - s.count)
    }

    /// A few human lines for one request.
    static func describe(_ d: StatusDocument) -> String {
        var lines = ["request:   \(d.request)", "state:     \(d.state.rawValue)"]
        if let mous = d.mous { lines.append("mous:      \(mous)") }
        if let step = d.step { lines.append("step:      \(step.number)/6 \(step.name)") }
        if let p = d.progress {
            var text = p.fraction.map { TextEssentials.fixed($0 * 100, fractionDigits: 1) + "%" } ?? ""
            if let done = p.bytesDone, let total = p.bytesTotal { text += " (\(done)/\(total) bytes)" }
            if let eta = p.etaSeconds { text += " eta \(Int(eta)) s" }
            if let m = p.message { text += " \(m)" }
            lines.append("progress:  \(text.trimmingWhitespace())")
        }
        if let e = d.error {
            lines.append("error:     [\(e.code)] \(e.message)")
            if let h = e.hint { lines.append("hint:      \(h)") }
        }
        if let r = d.result {
            lines.append("delivered: \(r.deliveryPath) (\(r.sizeBytes) bytes)")
            if let url = r.url { lines.append("url:       \(url)") }
            lines.append("ms:        \(r.measurementSets.joined(separator: ", "))")
        }
        if let link = d.linkedTo { lines.append("linked to: \(link.request)") }
        for n in d.notifications ?? [] {
            lines.append("mail:      \(n.to) \(n.state)" + (n.error.map { " (\($0))" } ?? ""))
        }
        if let f = d.requestFile { lines.append("kept at:   \(f)") }
        lines.append("updated:   \(d.updatedAt)")
        return lines.joined(separator: "\n")
    }
}
