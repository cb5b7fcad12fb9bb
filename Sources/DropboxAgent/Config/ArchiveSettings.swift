import FoundationEssentials
import Glibc
import Delivery

/// `archive`: where raw data and products come from.
struct ArchiveSettings: Codable, Sendable {
    /// NGAS-compatible base URL (`http://host:7777`); when null, the local directory store is used.
    var url: String?
    /// The store's login (HTTP Basic, as NGAS with authorisation enabled expects): the user name, with the
    /// password in `passwordFile` (first line; read at start). Both or neither.
    var username: String?
    var passwordFile: String?
    /// The embedded local store: files flat under their NGAS file id (default `<data>/archive`).
    var localDirectory: String?
    /// Files fetched at once.
    var parallelTransfers: Int = 2
    /// Attempts per file (with backoff; `Retry-After` honoured).
    var maxAttempts: Int = 5
    /// A transfer slower than `lowSpeedBytesPerSecond` for `lowSpeedSeconds` is aborted and retried.
    var lowSpeedBytesPerSecond: Int = 1024
    var lowSpeedSeconds: Double = 60
    /// A request failing for a transient reason (archive 5xx or unreachable after `maxAttempts`, delivery
    /// area unavailable) is retried later with backoff instead of failing, for at most this many seconds after
    /// its first transient failure.
    var retryHorizonSeconds: Double = 14400
    /// The first of those retries comes after this many seconds; each later one waits twice as long (at most
    /// 15 minutes).
    var retryInitialSeconds: Double = 30
    /// Shared cache of fetched files (default `<data>/cache`).
    var cacheDirectory: String?
    /// Cache size bound; least recently used files are evicted first, never files in use.
    var cacheMaxBytes: Int64 = 50 * 1024 * 1024 * 1024
    /// Raw data source: `archive` (ASDM tarballs from the store) or `command` (an asdmExportLight-compatible
    /// program; see `rawdataCommand`).
    var rawdataSource: String = "archive"
    /// argv of the export program; an argument `{eb}` is replaced by the EB uid and `{dir}` by the rawdata
    /// directory. Run without a shell.
    var rawdataCommand: [String]?
    /// Bounds on every archive the agent unpacks (raw data, products, packages, caltables and flag versions).
    var limits = ArchiveLimitSettings()

    enum CodingKeys: String, CodingKey, CaseIterable {
        case url, username, passwordFile, localDirectory, parallelTransfers, maxAttempts, lowSpeedBytesPerSecond,
            lowSpeedSeconds
        case retryHorizonSeconds, retryInitialSeconds
        case cacheDirectory, cacheMaxBytes, rawdataSource, rawdataCommand, limits
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ArchiveSettings()
        url = try c.decodeIfPresent(String.self, forKey: .url)
        username = try c.decodeIfPresent(String.self, forKey: .username)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        localDirectory = try c.decodeIfPresent(String.self, forKey: .localDirectory)
        parallelTransfers = try c.value(.parallelTransfers, default: d.parallelTransfers)
        maxAttempts = try c.value(.maxAttempts, default: d.maxAttempts)
        lowSpeedBytesPerSecond = try c.value(.lowSpeedBytesPerSecond, default: d.lowSpeedBytesPerSecond)
        lowSpeedSeconds = try c.value(.lowSpeedSeconds, default: d.lowSpeedSeconds)
        retryHorizonSeconds = try c.value(.retryHorizonSeconds, default: d.retryHorizonSeconds)
        retryInitialSeconds = try c.value(.retryInitialSeconds, default: d.retryInitialSeconds)
        cacheDirectory = try c.decodeIfPresent(String.self, forKey: .cacheDirectory)
        cacheMaxBytes = try c.value(.cacheMaxBytes, default: d.cacheMaxBytes)
        rawdataSource = try c.value(.rawdataSource, default: d.rawdataSource)
        rawdataCommand = try c.decodeIfPresent([String].self, forKey: .rawdataCommand)
        limits = try c.value(.limits, default: d.limits)
    }
}

/// `archive.limits`: tar-bomb bounds, the ``ArchiveLimits`` of every extraction. Where the expected expanded
/// size of an archive is known (the catalogue's or a package's file sizes), total and per-file bounds are
/// tightened to twice that plus 64 MiB (``ArchiveLimits/expecting(_:)``), never loosened.
struct ArchiveLimitSettings: Codable, Sendable {
    /// Entries (files, directories, links) per archive.
    var maxEntries: Int = 100_000
    /// Sum of the sizes of all entries of one archive.
    var maxTotalBytes: Int64 = 64 << 30
    /// Size of any one file.
    var maxFileBytes: Int64 = 64 << 30
    /// Decompressed bytes at most this many times the archive file's size (0 disables the ratio check) ...
    var maxExpansionRatio: Double = 200
    /// ... beyond this many bytes, always allowed.
    var ratioAllowanceBytes: Int64 = 64 << 20

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxEntries, maxTotalBytes, maxFileBytes, maxExpansionRatio, ratioAllowanceBytes
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ArchiveLimitSettings()
        maxEntries = try c.value(.maxEntries, default: d.maxEntries)
        maxTotalBytes = try c.value(.maxTotalBytes, default: d.maxTotalBytes)
        maxFileBytes = try c.value(.maxFileBytes, default: d.maxFileBytes)
        maxExpansionRatio = try c.value(.maxExpansionRatio, default: d.maxExpansionRatio)
        ratioAllowanceBytes = try c.value(.ratioAllowanceBytes, default: d.ratioAllowanceBytes)
        func positive(_ ok: Bool, _ key: CodingKeys, _ what: String) throws {
            guard ok else { throw ConfigurationError(path: "$.archive.limits.\(key.stringValue)", message: what) }
        }
        try positive(maxEntries > 0, .maxEntries, "must be a positive number of entries")
        try positive(maxTotalBytes > 0, .maxTotalBytes, "must be a positive number of bytes")
        try positive(maxFileBytes > 0, .maxFileBytes, "must be a positive number of bytes")
        try positive(
            maxExpansionRatio == 0 || maxExpansionRatio >= 1, .maxExpansionRatio,
            "must be 0 (no ratio check) or at least 1")
        try positive(ratioAllowanceBytes >= 0, .ratioAllowanceBytes, "must not be negative")
    }

    /// The ``ArchiveLimits`` these settings describe.
    var archiveLimits: ArchiveLimits {
        ArchiveLimits(
            maxEntries: maxEntries, maxTotalBytes: maxTotalBytes, maxEntryBytes: maxFileBytes,
            maxExpansionRatio: maxExpansionRatio, ratioAllowanceBytes: ratioAllowanceBytes)
    }
}
