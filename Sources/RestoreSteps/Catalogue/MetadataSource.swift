internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Where the agent learns about a MOUS. The embedded default is ``SQLiteCatalogue``; a site can plug in its
/// own database (an ALMA archive replica, a web service) by implementing this.
///
/// Implementations answer quickly (they are called once per request, before the restore starts) and may
/// block briefly; callers on the Swift concurrency pool should not call them in a tight loop.
public protocol MetadataSource: Sendable {
    /// Everything a restore needs about `uid` (a MOUS status uid, `uid://A001/X1284/X265f`), or nil if the
    /// source does not know it.
    func mous(_ uid: String) throws -> MousRecord?
}

extension MetadataSource {
    /// ``mous(_:)`` run by ``BlockingWork``, so a source that blocks (SQLite, a remote database) never holds a
    /// thread of the Swift cooperative pool.
    public func record(for uid: String) async throws -> MousRecord? {
        try await BlockingWork.run { (_) throws -> MousRecord? in try self.mous(uid) }
    }
}
