import Delivery
import FoundationEssentials
import Glibc

/// Writes `index.html` and `requests/<name>.html` under the dashboard directory, each replaced atomically (temp
/// file, fsync, rename), from what the agent published (``DashboardFeed``), never from the status files.
///
/// A refresh costs what changed: the pages of the requests whose document changed since the last refresh, the
/// running requests' pages (progress, log excerpt) and the index; with nothing live and nothing changed, the index
/// is rewritten once a minute (its 24-hour cards and histograms move with the clock) and nothing else.
struct DashboardWriter {
    let indexPath: String
    let refreshSeconds: Int
    let feed: DashboardFeed
    private var renderedGeneration = -1
    private var renderedAt = -Double.infinity
    private var renderedMinute = -1
    /// The running requests whose pages were written at the last refresh (rewritten while they run).
    private var runningPages: Set<String> = []

    init(indexPath: String, feed: DashboardFeed, refreshSeconds: Int) {
        self.indexPath = indexPath
        self.feed = feed
        self.refreshSeconds = refreshSeconds
    }

    var directory: String { PathString.deletingLastComponent(indexPath) }
    private var pages: String { directory + "/requests" }

    /// Every status document of the spool, read from the status files: for readers of the output
    /// (`status --watch`), never for the agent itself.
    static func readDocuments(spool: String) -> [StatusDocument] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []
        return names.filter { $0.hasSuffix(".status.json") && !$0.hasPrefix(".") }.compactMap {
            StatusPublisher.existing(at: spool + "/" + $0)
        }
    }

    /// Once at start-up: takes in the records of the job store (the state, ``StatusRecords``), writes the pages
    /// that are missing and removes the pages of requests without a record.
    mutating func seed(records: StatusRecords) throws {
        try FileManager.default.createDirectory(atPath: pages, withIntermediateDirectories: true)
        var known = Set<String>()
        for file in (try? FileManager.default.contentsOfDirectory(atPath: records.directory)) ?? []
        where file.hasSuffix(".json") && !file.hasPrefix(".") {
            let name = String(file.dropLast(5))
            guard SpoolNames.isValidName(name), let doc = records.read(name) else { continue }
            known.insert(name + ".html")
            feed.apply(doc)
        }
        for stale in ((try? FileManager.default.contentsOfDirectory(atPath: pages)) ?? [])
        where stale.hasSuffix(".html") && !known.contains(stale) {
            try? FileManager.default.removeItem(atPath: pages + "/" + stale)
        }
        // The pages of finished requests that are already there stay (they were written from the same records).
        renderPages(existingFinishedKept: true)
    }

    /// Whether a refresh is due at `now`: something changed (at most once a second), something is live (every
    /// `refreshSeconds`), or the 24-hour counts moved to another minute.
    func due(now: Double) -> Bool {
        let elapsed = now - renderedAt
        if feed.generation != renderedGeneration { return elapsed >= 1 }
        if elapsed < Double(refreshSeconds) { return false }
        return !runningPages.isEmpty || hasLive || Int(now / 60) != renderedMinute
    }

    private var hasLive = false

    /// Writes the pages that changed and the index.
    mutating func write(now: Date = Date()) throws {
        try FileManager.default.createDirectory(atPath: pages, withIntermediateDirectories: true)
        renderedGeneration = feed.generation
        renderedAt = now.timeIntervalSince1970
        renderedMinute = Int(renderedAt / 60)
        let written = renderPages(existingFinishedKept: false, now: now)
        try AtomicFile.write(Data(renderer(written.index, now: now).index().utf8), to: indexPath, mode: 0o644)
        hasLive = !written.index.live.isEmpty
    }

    private func renderer(_ index: DashboardIndex, now: Date) -> DashboardRenderer {
        DashboardRenderer(
            state: index, now: now, refreshSeconds: refreshSeconds, host: AgentIdentity.current.host,
            pid: AgentIdentity.current.pid, version: DropboxAgentCommand.version)
    }

    /// Writes the pending pages (and those of the running requests), removes the removed ones.
    @discardableResult
    private mutating func renderPages(existingFinishedKept: Bool, now: Date = Date()) -> (index: DashboardIndex, Int) {
        let snapshot = feed.snapshot(now: now)
        let renderer = renderer(snapshot.index, now: now)
        var pending = [String: StatusDocument]()
        for d in snapshot.write { pending[d.request] = d }
        // Running requests every refresh (progress, ETA, log excerpt), the rest once per change.
        let running = snapshot.index.live.values.filter { $0.state == .running }
        for d in running where pending[d.request] == nil { pending[d.request] = d }
        runningPages = Set(running.map(\.request))
        var count = 0
        for d in pending.values where SpoolNames.isValidName(d.request) {
            let path = pages + "/" + d.request + ".html"
            if existingFinishedKept, d.state.isTerminal, FileManager.default.fileExists(atPath: path) { continue }
            do {
                try AtomicFile.write(
                    Data(renderer.requestPage(d, logExcerpt: Self.logExcerpt(d)).utf8), to: path, mode: 0o644)
                count += 1
            } catch {
                continue  // the next change of the request writes it again
            }
        }
        for name in snapshot.remove where SpoolNames.isValidName(name) {
            unlink(pages + "/" + name + ".html")
        }
        return (snapshot.index, count)
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
