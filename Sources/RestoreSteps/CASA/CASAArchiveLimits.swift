public import Delivery
public import FoundationEssentials
internal import Glibc

/// The archive limits the CASA side unpacks with (`restore_mous.py --archive-limits FILE`, read by
/// `casa_steps.load_archive_limits`): the configured `archive.limits` and, for each tarball among the
/// restore's products, those limits bounded by what the catalogue records. One place computes the numbers, so
/// the agent's `SafeArchive` and the CASA side's `safe_extract` enforce the same ones.
///
/// - A flag-versions tarball `<AsdmDiskName>.ms.flagversions.tgz` of an EB whose ASDM size is known: at most
///   twice that size plus 64 MiB (``ArchiveLimits/expecting(_:)``; flags are one bit per visibility, far less than
///   the ASDM), with no ratio check: flags compress beyond any fixed ratio (the fixture's reach 474:1, a real
///   MS's mostly unflagged data as much), so a ratio would refuse genuine large ones.
/// - Any other compressed tarball (caltables, auxiliary products), whose expanded size neither the catalogue
///   nor the manifest records: the ratio bound of its catalogued size (``ArchiveLimits/expectingCompressed(_:)``).
/// - A plain tar: twice its catalogued size plus 64 MiB.
///
/// JSON: `{"limits": {maxEntries, maxTotalBytes, maxEntryBytes, maxExpansionRatio, ratioAllowanceBytes},
/// "archives": {"<file name>": {…same keys…}}}`.
public struct CASAArchiveLimits: Sendable, Hashable, Codable {
    /// The configured limits (for an archive not listed in ``archives``).
    public var limits: ArchiveLimits
    /// Per product file name: the limits for that tarball.
    public var archives: [String: ArchiveLimits]

    /// The limits for `products`: every `*.tgz`, `*.tar.gz` and `*.tar` among them gets its own entry.
    /// `asdmBytes`: the catalogued size of each EB's ASDM by `AsdmDiskName` (bounds its flag versions).
    public init(limits: ArchiveLimits, products: [MousRecord.ProductFile], asdmBytes: [String: Int64] = [:]) {
        self.limits = limits
        var archives: [String: ArchiveLimits] = [:]
        let flagSuffix = ".ms.flagversions.tgz"
        for product in products {
            let name = product.file.ngasFileId
            let declared: Int64? = product.file.size > 0 ? product.file.size : nil
            if name.hasSuffix(flagSuffix), let asdm = asdmBytes[String(name.dropLast(flagSuffix.count))], asdm > 0 {
                var bounded = limits.expecting(asdm)
                bounded.maxExpansionRatio = 0
                archives[name] = bounded
            } else if name.hasSuffix(".tgz") || name.hasSuffix(".tar.gz") {
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
