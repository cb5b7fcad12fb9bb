public import Delivery
internal import Foundation

/// The archive limits the CASA side unpacks with (`restore_mous.py --archive-limits FILE`, read by
/// `casa_steps.load_archive_limits`): the configured `archive.limits` and, for each tarball among the
/// restore's products (caltables, flag versions, auxiliary products), those limits bounded by the file's
/// catalogued size (``ArchiveLimits/expectingCompressed(_:)`` for a compressed tarball,
/// ``ArchiveLimits/expecting(_:)`` for a plain tar). One place computes the numbers, so the agent's
/// `SafeArchive` and the CASA side's `safe_extract` enforce the same ones.
///
/// JSON: `{"limits": {maxEntries, maxTotalBytes, maxEntryBytes, maxExpansionRatio, ratioAllowanceBytes},
/// "archives": {"<file name>": {…same keys…}}}`.
public struct CASAArchiveLimits: Sendable, Hashable, Codable {
    /// The configured limits (for an archive not listed in ``archives``).
    public var limits: ArchiveLimits
    /// Per product file name: the limits for that tarball.
    public var archives: [String: ArchiveLimits]

    /// The limits for `products`: every `*.tgz`, `*.tar.gz` and `*.tar` among them gets its own entry.
    public init(limits: ArchiveLimits, products: [MousRecord.ProductFile]) {
        self.limits = limits
        var archives: [String: ArchiveLimits] = [:]
        for product in products {
            let name = product.file.ngasFileId
            let declared: Int64? = product.file.size > 0 ? product.file.size : nil
            if name.hasSuffix(".tgz") || name.hasSuffix(".tar.gz") {
                archives[name] = limits.expectingCompressed(declared)
            } else if name.hasSuffix(".tar") {
                archives[name] = limits.expecting(declared)
            }
        }
        self.archives = archives
    }

    /// The JSON document (sorted keys, so the same limits always give the same bytes).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(self)
    }

    /// The file name in the job's logs directory.
    public static let fileName = "archive-limits.json"
}
