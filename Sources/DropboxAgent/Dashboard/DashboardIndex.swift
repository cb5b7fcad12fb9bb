import FoundationEssentials

/// What the dashboard shows, kept in memory and updated from the documents the agent publishes (never from the
/// status files): full documents for the live requests (waiting, queued, running) and for the most recent finished
/// ones, counters per minute for the last 24 hours, and the pages to rewrite since the last render.
///
/// Memory is bounded by what is in flight plus ``finishedKept`` documents plus 1 440 minute counters; applying a
/// document costs O(``finishedKept``) at most, whatever the number of requests the spool has seen.
struct DashboardIndex {
    /// Finished requests shown with a row (and kept as documents).
    static let finishedKept = 50
    /// How long the per-minute counters are kept (the 24-hour cards and histograms).
    static let window: Double = 86400

    /// Requests whose counts in one minute.
    struct Counts: Equatable {
        var succeeded = 0
        var failedOrRejected = 0
    }

    /// Waiting, queued and running requests by name.
    private(set) var live: [String: StatusDocument] = [:]
    /// The most recently finished requests, newest first (by `finishedAt`), at most ``finishedKept``.
    private(set) var finished: [StatusDocument] = []
    /// Finished requests per minute since the epoch (by `finishedAt`), for the last ``window``.
    private(set) var perMinute: [Int: Counts] = [:]
    /// Documents whose page is to be rewritten (the newest of each), taken by ``takePendingPages()``.
    private(set) var pendingPages: [String: StatusDocument] = [:]
    /// Requests whose page is to be removed (their record and status file were removed).
    private(set) var pendingRemovals: Set<String> = []
    /// Bumped at every change that shows on the index.
    private(set) var generation = 0

    /// Takes in a document the agent has just published for its request.
    ///
    /// - Parameter amends: the document changes a concluded request without concluding it again (mail, delivery
    ///   expiry): it replaces the row but is not counted a second time.
    mutating func apply(_ doc: StatusDocument, amends: Bool = false) {
        let name = doc.request
        let previous = live[name] ?? finished.first { $0.request == name }
        if let previous, (previous.sequence ?? 0) >= (doc.sequence ?? 0), doc.sequence != nil {
            return  // an older document than the one shown (writes from several threads)
        }
        pendingPages[name] = doc
        pendingRemovals.remove(name)
        generation &+= 1
        guard doc.state.isTerminal else {
            finished.removeAll { $0.request == name }
            live[name] = doc
            return
        }
        live[name] = nil
        // A dictionary keeps the capacity a burst made it grow to (10 000 queued documents: megabytes): once most
        // of it is empty, the live requests move to one of their size (amortised: at most once per halving).
        if live.capacity > 64 && live.count < live.capacity / 8 {
            var smaller = [String: StatusDocument](minimumCapacity: live.count)
            for (key, value) in live { smaller[key] = value }
            live = smaller
        }
        let concludedBefore = previous.map { $0.state.isTerminal && $0.finishedAt == doc.finishedAt } ?? false
        if !amends && !concludedBefore { count(doc) }
        finished.removeAll { $0.request == name }
        let key = Self.finishKey(doc)
        let at = finished.firstIndex { Self.finishKey($0) < key } ?? finished.endIndex
        if at < Self.finishedKept {
            finished.insert(doc, at: at)
            if finished.count > Self.finishedKept { finished.removeLast() }
        }
    }

    /// Forgets a request whose record and status file were removed (retention).
    mutating func remove(_ name: String) {
        live[name] = nil
        finished.removeAll { $0.request == name }
        pendingPages[name] = nil
        pendingRemovals.insert(name)
        generation &+= 1
    }

    /// The pages to write and remove since the last call.
    mutating func takePendingPages() -> (write: [StatusDocument], remove: Set<String>) {
        defer {
            pendingPages = [:]
            pendingRemovals = []
        }
        return (Array(pendingPages.values), pendingRemovals)
    }

    /// Drops the counters older than the window.
    mutating func prune(now: Date) {
        let oldest = Self.minute(now.timeIntervalSince1970 - Self.window)
        if perMinute.keys.contains(where: { $0 < oldest }) { perMinute = perMinute.filter { $0.key >= oldest } }
    }

    /// Succeeded and failed-or-rejected requests that finished in the last 24 hours (to the minute).
    func lastDay(now: Date) -> Counts {
        let oldest = Self.minute(now.timeIntervalSince1970 - Self.window)
        var total = Counts()
        for (minute, c) in perMinute where minute >= oldest {
            total.succeeded += c.succeeded
            total.failedOrRejected += c.failedOrRejected
        }
        return total
    }

    /// Per hour over the last 24 hours, oldest first (index 23: the last hour).
    func hourly(now: Date) -> (succeeded: [Int], failedOrRejected: [Int]) {
        var succeeded = Array(repeating: 0, count: 24)
        var failed = Array(repeating: 0, count: 24)
        let current = Self.minute(now.timeIntervalSince1970)
        for (minute, c) in perMinute {
            let hoursAgo = (current - minute) / 60
            guard (0..<24).contains(hoursAgo) else { continue }
            succeeded[23 - hoursAgo] += c.succeeded
            failed[23 - hoursAgo] += c.failedOrRejected
        }
        return (succeeded, failed)
    }

    /// Whether anything finished within the window (the cards and histograms move with the clock).
    var hasRecentCounts: Bool { !perMinute.isEmpty }

    private mutating func count(_ doc: StatusDocument) {
        guard doc.state != .cancelled else { return }
        guard let at = (doc.finishedAt ?? Optional(doc.updatedAt)).flatMap(Timestamp.date) else { return }
        let minute = Self.minute(at.timeIntervalSince1970)
        if doc.state == .succeeded {
            perMinute[minute, default: Counts()].succeeded += 1
        } else {
            perMinute[minute, default: Counts()].failedOrRejected += 1
        }
    }

    private static func minute(_ seconds: Double) -> Int { Int((seconds / 60).rounded(.down)) }

    private static func finishKey(_ d: StatusDocument) -> String { d.finishedAt ?? d.updatedAt }
}
