import Delivery
import FoundationEssentials
import Glibc
import Synchronization

/// Process-wide "something changed" counter: status transitions bump it and the dashboard is rewritten at once
/// instead of at the next refresh.
enum DashboardTrigger {
    private static let changes = Atomic<Int>(0)
    static func poke() { changes.add(1, ordering: .relaxed) }
    static var generation: Int { changes.load(ordering: .relaxed) }
}

/// Writes `index.html` and `requests/<name>.html` under the dashboard directory, each replaced atomically (temp
/// file, fsync, rename), from the spool's status files.
struct DashboardWriter {
    let indexPath: String
    let spoolDirectory: String
    let refreshSeconds: Int
    /// Request pages already written, by their status's `updatedAt` (unchanged finished requests are not rewritten).
    private var written: [String: String] = [:]

    init(indexPath: String, spoolDirectory: String, refreshSeconds: Int) {
        self.indexPath = indexPath
        self.spoolDirectory = spoolDirectory
        self.refreshSeconds = refreshSeconds
    }

    var directory: String { PathString.deletingLastComponent(indexPath) }

    static func readDocuments(spool: String) -> [StatusDocument] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []
        return names.filter { $0.hasSuffix(".status.json") && !$0.hasPrefix(".") }.compactMap {
            StatusPublisher.existing(at: spool + "/" + $0)
        }
    }

    mutating func write(now: Date = Date()) throws {
        let documents = Self.readDocuments(spool: spoolDirectory)
        let renderer = DashboardRenderer(
            documents: documents, now: now, refreshSeconds: refreshSeconds, host: AgentIdentity.current.host,
            pid: AgentIdentity.current.pid, version: DropboxAgentCommand.version)
        let pages = directory + "/requests"
        try FileManager.default.createDirectory(atPath: pages, withIntermediateDirectories: true)
        var keep = Set<String>()
        for d in documents where SpoolNames.isValidName(d.request) {
            let file = d.request + ".html"
            keep.insert(file)
            // Live requests every time (progress, log); finished ones once per change.
            if d.state.isTerminal, written[d.request] == d.updatedAt,
                FileManager.default.fileExists(atPath: pages + "/" + file)
            {
                continue
            }
            try AtomicFile.write(
                Data(renderer.requestPage(d, logExcerpt: Self.logExcerpt(d)).utf8), to: pages + "/" + file, mode: 0o644)
            written[d.request] = d.updatedAt
        }
        for stale in ((try? FileManager.default.contentsOfDirectory(atPath: pages)) ?? [])
        where stale.hasSuffix(".html") && !keep.contains(stale) {
            try? FileManager.default.removeItem(atPath: pages + "/" + stale)
            written[String(stale.dropLast(5))] = nil
        }
        try AtomicFile.write(Data(renderer.index().utf8), to: indexPath, mode: 0o644)
    }

    /// The last 40 lines (at most 16 KiB) of the newest log in the request's `logs` directory.
    static func logExcerpt(_ d: StatusDocument) -> String? {
        guard let dir = d.logs, let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else {
            return nil
        }
        let newest = names.filter { !$0.hasPrefix(".") }.compactMap { name -> (String, Date)? in
            let path = dir + "/" + name
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
                attrs[.type] as? FileAttributeType == .typeRegular,
                let date = attrs[.modificationDate] as? Date
            else { return nil }
            return (path, date)
        }.max { $0.1 < $1.1 }
        guard let path = newest?.0, let reader = FileReader(path: path) else { return nil }
        let size = reader.size
        let text = String(decoding: reader.readToEnd(from: size > 16384 ? size - 16384 : 0) ?? [], as: UTF8.self)
        return "\(PathString.lastComponent(path)):\n"
            + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(40).joined(separator: "\n")
    }
}
