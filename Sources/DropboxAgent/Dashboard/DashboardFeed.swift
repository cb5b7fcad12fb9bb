import FoundationEssentials
import Synchronization

/// Hands every status document the agent publishes to the dashboard of its spool, if that spool has one: the
/// dashboard's state is what the agent wrote (``DashboardIndex``), never the status files read back.
///
/// Writers (``StatusRecords``, ``StatusPublisher``) call ``published(_:spool:amends:)`` after each write; with no
/// dashboard registered for the spool that is one lookup in an empty table. A registry keyed by the spool directory
/// (not a single global) keeps several agents in one process (the tests) apart.
final class DashboardFeed: Sendable {
    let spoolDirectory: String
    private let index = Mutex(DashboardIndex())

    private init(spoolDirectory: String) { self.spoolDirectory = spoolDirectory }

    private static let registry = Mutex<[String: DashboardFeed]>([:])

    /// Starts feeding the dashboard of `spool` (until ``unregister()``).
    static func register(spool: String) -> DashboardFeed {
        let feed = DashboardFeed(spoolDirectory: spool)
        registry.withLock { $0[spool] = feed }
        return feed
    }

    /// Stops feeding this dashboard.
    func unregister() {
        Self.registry.withLock { feeds in
            if feeds[spoolDirectory] === self { feeds[spoolDirectory] = nil }
        }
    }

    /// `document` was just written for its request in `spool`.
    static func published(_ document: StatusDocument, spool: String, amends: Bool = false) {
        guard let feed = registry.withLock({ $0.isEmpty ? nil : $0[spool] }) else { return }
        feed.apply(document, amends: amends)
    }

    /// The record and status file of `name` in `spool` were removed.
    static func removed(_ name: String, spool: String) {
        guard let feed = registry.withLock({ $0.isEmpty ? nil : $0[spool] }) else { return }
        feed.index.withLock { $0.remove(name) }
    }

    /// Takes in `document` (also the start-up seed from the records).
    func apply(_ document: StatusDocument, amends: Bool = false) {
        index.withLock { $0.apply(document, amends: amends) }
    }

    /// Bumped at every change of the index.
    var generation: Int { index.withLock { $0.generation } }

    /// A copy of the index (copy-on-write: cheap) after taking its pending pages and pruning old counters.
    func snapshot(now: Date) -> (index: DashboardIndex, write: [StatusDocument], remove: Set<String>) {
        index.withLock { i in
            i.prune(now: now)
            let pages = i.takePendingPages()
            return (i, pages.write, pages.remove)
        }
    }
}
