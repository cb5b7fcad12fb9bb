import FoundationEssentials
import Glibc

/// How the spool is watched: `automatic` lets statfs decide (polling on NFS, CIFS, FUSE, overlayfs).
enum SpoolWatchMode: String, Codable, Sendable { case automatic, inotify, polling }

/// `spool`: where requests are dropped and how they are watched.
struct SpoolSettings: Codable, Sendable {
    /// The spool directory (default `<data>/spool`; `run --spool` overrides).
    var directory: String?
    /// `automatic` (inotify unless statfs says NFS/CIFS/FUSE/overlay), `inotify` or `polling`.
    var watchMode: SpoolWatchMode = .automatic
    /// Full rescan period even when inotify works.
    var rescanIntervalSeconds: Double = 30
    /// Rescan period in polling mode.
    var pollIntervalSeconds: Double = 2
    /// A file must keep size, mtime, ctime and inode this long before it is taken.
    var settleSeconds: Double = 2
    /// A file that is still not one complete JSON object after this long is rejected.
    var incompleteTimeoutSeconds: Double = 600
    /// Largest accepted request.
    var maxRequestBytes: Int = 65536
    /// Owners allowed to drop requests: user names or numeric uids; `"*"` allows anyone. Default: the
    /// agent's own user and root.
    var allowedOwners: [String]?
    /// Where rejected requests are kept with a reason file (default `<workDirectory>/rejected`).
    var rejectedDirectory: String?
    /// Permissions of status files (octal string), so droppers can read them.
    var statusFileMode: String = "0644"

    enum CodingKeys: String, CodingKey, CaseIterable {
        case directory, watchMode, rescanIntervalSeconds, pollIntervalSeconds, settleSeconds, incompleteTimeoutSeconds
        case maxRequestBytes, allowedOwners, rejectedDirectory, statusFileMode
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SpoolSettings()
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        watchMode = try c.value(.watchMode, default: d.watchMode)
        rescanIntervalSeconds = try c.value(.rescanIntervalSeconds, default: d.rescanIntervalSeconds)
        pollIntervalSeconds = try c.value(.pollIntervalSeconds, default: d.pollIntervalSeconds)
        settleSeconds = try c.value(.settleSeconds, default: d.settleSeconds)
        incompleteTimeoutSeconds = try c.value(.incompleteTimeoutSeconds, default: d.incompleteTimeoutSeconds)
        maxRequestBytes = try c.value(.maxRequestBytes, default: d.maxRequestBytes)
        allowedOwners = try c.decodeIfPresent([String].self, forKey: .allowedOwners)
        rejectedDirectory = try c.decodeIfPresent(String.self, forKey: .rejectedDirectory)
        statusFileMode = try c.value(.statusFileMode, default: d.statusFileMode)
    }
}
