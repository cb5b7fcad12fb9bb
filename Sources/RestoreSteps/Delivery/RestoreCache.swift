internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Restored measurement sets kept for reuse: a later request for the same MOUS with the same inputs (every raw and
/// calibration file by checksum, the same CASA installation and version) gets hard links of them instead of a second
/// CASA run; only its own derivation (science, targets, contsub, plots) runs.
///
/// Layout: `<root>/<key>/{entry.json, products/<eb>.ms, products/<eb>.ms.flagversions, logs/casa-*.log, plots/*.png,
/// users/<jobId>}`. Entries are hard links of the restored files (no copy), except `table.lock` files, which are
/// copied: CASA writes them whenever it opens a table, and a shared inode would change a published file. The cache
/// is bounded (`delivery.reuseMaxBytes`): least recently used entries go first, never one a running job is using
/// (`users/<jobId>` names its job directory, which exists while the job lives).
///
/// An entry is assembled in `<root>/.staging-<key>-<jobId>` (with `owner.json`: host, pid, boot and job
/// directory of the process writing it) and renamed into place. A process killed meanwhile leaves the staging
/// directory behind; ``sweepStaging(isAlive:orphanAge:now:)`` removes it once its writer is gone (see there).
public struct RestoreCache: Sendable {
    /// Who is assembling a staging directory.
    public struct StagingOwner: Codable, Sendable, Equatable {
        public var host: String
        public var pid: Int32
        /// `/proc/sys/kernel/random/boot_id`: a pid of an earlier boot is not a live process.
        public var bootId: String?
        /// The job whose restore is kept; it exists while the job lives.
        public var jobDirectory: String

        public init(host: String, pid: Int32, bootId: String?, jobDirectory: String) {
            self.host = host
            self.pid = pid
            self.bootId = bootId
            self.jobDirectory = jobDirectory
        }

        /// This process, for the job at `jobDirectory`.
        public static func current(jobDirectory: String) -> StagingOwner {
            var buffer = [UInt8](repeating: 0, count: 256)
            gethostname(&buffer, buffer.count - 1)
            let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
                .trimmingWhitespaceAndNewlines()
            return StagingOwner(
                host: String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self), pid: getpid(), bootId: boot,
                jobDirectory: jobDirectory)
        }
    }

    /// The prefix of staging directories under ``root``.
    public static let stagingPrefix = ".staging-"

    public struct Entry: Codable, Sendable, Equatable {
        public var key: String
        public var mous: String
        public var sourceRequest: String
        public var measurementSets: [String]
        public var bytes: Int64
        public var storedAt: Double
        public var lastUsed: Double
    }

    public let root: String
    public let maxBytes: Int64

    public init(root: String, maxBytes: Int64) {
        self.root = root
        self.maxBytes = maxBytes
    }

    /// The key of a restore: what it read and which CASA restored it. Auxiliary products (flux.csv, antennapos,
    /// cont.dat) are not read by the restore and are left out, so a request that only adds `contsub` reuses it.
    /// Nil when the CASA choice is not recorded yet.
    public static func key(_ metadata: RestoreMetadata) -> String? {
        guard let casa = metadata.casa else { return nil }
        func file(_ f: ArchiveFile) -> String {
            "\(f.ngasFileId) \(f.size) \(f.checksumVariant.map { "\($0)" } ?? "-"):\(f.checksum ?? "-")"
        }
        var lines = [
            "dropbox-agent/restore-key/v1", "mous \(metadata.mous.rawValue)",
            "casa \(casa.installation) \(casa.version)",
        ]
        for eb in metadata.plan.execBlocks.sorted(by: { $0.uid.rawValue < $1.uid.rawValue }) {
            lines.append(
                "eb \(eb.uid.rawValue) \(eb.asdmDiskName.rawValue) session \(eb.sessionNumber) \(file(eb.asdm))")
        }
        for p in metadata.plan.products.map(\.file).sorted(by: { $0.ngasFileId < $1.ngasFileId })
        where !p.ngasFileId.hasSuffix("auxproducts.tgz") {
            lines.append("product \(file(p))")
        }
        var hash = SHA256()
        hash.update(Data(lines.joined(separator: "\n").utf8))
        return hash.hexDigest()
    }

    func directory(_ key: String) -> String { root + "/" + key }

    /// The entry for `key`, if complete.
    public func lookup(_ key: String) -> Entry? {
        guard key.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }), key.count == 64,
            let data = FileManager.default.contents(atPath: directory(key) + "/entry.json"),
            let entry = try? JSONDecoder().decode(Entry.self, from: data),
            entry.measurementSets.allSatisfy({
                FileManager.default.fileExists(atPath: directory(key) + "/products/" + $0)
            })
        else { return nil }
        return entry
    }

    /// Whether some complete entry restored `mous` (a cheap hint for scheduling; the key decides).
    public func holds(mous: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).contains { lookup($0)?.mous == mous }
    }

    /// Links the entry's measurement sets (and flag versions) into `products`, its CASA logs into `logs`, its plots
    /// into `plots`, and records `jobDirectory` as a user. Blocking.
    public func materialize(_ entry: Entry, products: String, logs: String, plots: String, jobDirectory: String) throws
    {
        let dir = directory(entry.key)
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/users", withIntermediateDirectories: true)
        let marker = dir + "/users/" + PathString.lastComponent(jobDirectory)
        try Data(jobDirectory.utf8).write(to: URL(fileURLWithPath: marker))
        try fm.createDirectory(atPath: products, withIntermediateDirectories: true)
        for item in try fm.contentsOfDirectory(atPath: dir + "/products") {
            let target = products + "/" + item
            if fm.fileExists(atPath: target) { try fm.removeItem(atPath: target) }
            try Self.linkTree(dir + "/products/" + item, to: target)
        }
        for (sub, target) in [("logs", logs), ("plots", plots)] where fm.fileExists(atPath: dir + "/" + sub) {
            try fm.createDirectory(atPath: target, withIntermediateDirectories: true)
            for item in try fm.contentsOfDirectory(atPath: dir + "/" + sub)
            where !fm.fileExists(atPath: target + "/" + item) {
                try Self.linkTree(dir + "/" + sub + "/" + item, to: target + "/" + item)
            }
        }
        var touched = entry
        touched.lastUsed = Date().timeIntervalSince1970
        try Self.writeEntry(touched, in: dir)
    }

    /// Stores a restore's measurement sets (hard links), CASA logs and plots under `key`, then evicts least recently
    /// used entries beyond the bound. Blocking. Does nothing when the entry exists or the bound is 0.
    /// - Parameters:
    ///   - jobDirectory: the job keeping the restore (names its staging directory and is recorded as its owner's).
    ///   - staged: tests only: runs when the staging directory holds everything, just before it is renamed.
    public func store(
        key: String, mous: String, sourceRequest: String, measurementSets: [String], products: String, logs: [String],
        plots: String?, jobDirectory: String = "", staged: (@Sendable () -> Void)? = nil
    ) throws {
        guard maxBytes > 0, lookup(key) == nil else { return }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let jobId = PathString.lastComponent(jobDirectory)
        let staging =
            root + "/" + Self.stagingPrefix + key + "-" + (PlainFileName.isValid(jobId) ? jobId : "pid\(getpid())")
        // The same job's staging from a killed attempt: this process is now its only writer.
        try? fm.removeItem(atPath: staging)
        try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        do {
            try AtomicFile.write(
                try JSONEncoder().encode(StagingOwner.current(jobDirectory: jobDirectory)),
                to: staging + "/owner.json")
            try fm.createDirectory(atPath: staging + "/products", withIntermediateDirectories: true)
            for ms in measurementSets {
                for name in [ms, ms + ".flagversions"] where fm.fileExists(atPath: products + "/" + name) {
                    try Self.linkTree(products + "/" + name, to: staging + "/products/" + name)
                }
            }
            try fm.createDirectory(atPath: staging + "/logs", withIntermediateDirectories: true)
            for log in logs where fm.fileExists(atPath: log) {
                try Self.linkTree(log, to: staging + "/logs/" + PathString.lastComponent(log))
            }
            if let plots, fm.fileExists(atPath: plots) { try Self.linkTree(plots, to: staging + "/plots") }
            let now = Date().timeIntervalSince1970
            let entry = Entry(
                key: key, mous: mous, sourceRequest: sourceRequest, measurementSets: measurementSets,
                bytes: Self.size(staging + "/products"), storedAt: now, lastUsed: now)
            try Self.writeEntry(entry, in: staging)
            staged?()
            guard rename(staging, directory(key)) == 0 else { throw CocoaError(.fileWriteFileExists) }
            // Only a staging directory has an owner (one left here by a kill is harmless: entries are not swept).
            unlink(directory(key) + "/owner.json")
        } catch {
            try? fm.removeItem(atPath: staging)
            throw error
        }
        evict(keep: key)
    }

    /// Removes staging directories that nobody is writing any more (a process killed while it kept a restore):
    /// - its job has ended (the job directory named in `owner.json` is gone: a store runs while its job lives), or
    /// - its writer is not alive (`isAlive(owner)` false: on this host, a pid that is gone or of an earlier boot;
    ///   the agent answers true for other hosts, whose processes it cannot see), or
    /// - it has no readable `owner.json` (killed between creating the directory and writing it, or named by an
    ///   earlier version) and has not changed for `orphanAge` seconds.
    ///
    /// A live writer's staging is never removed. Blocking.
    /// - Returns: the names removed.
    @discardableResult
    public func sweepStaging(
        isAlive: (StagingOwner) -> Bool, orphanAge: Double = 600, now: Double? = nil
    ) -> [String] {
        let now = now ?? Date().timeIntervalSince1970
        let fm = FileManager.default
        var removed: [String] = []
        for name in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where name.hasPrefix(Self.stagingPrefix) {
            let path = root + "/" + name
            let leftover: Bool
            if let data = fm.contents(atPath: path + "/owner.json"),
                let owner = try? JSONDecoder().decode(StagingOwner.self, from: data)
            {
                leftover =
                    (!owner.jobDirectory.isEmpty && !fm.fileExists(atPath: owner.jobDirectory)) || !isAlive(owner)
            } else {
                var st = stat()
                leftover = lstat(path, &st) == 0 && now - Double(st.st_mtim.tv_sec) > orphanAge
            }
            if leftover, (try? fm.removeItem(atPath: path)) != nil { removed.append(name) }
        }
        return removed
    }

    /// Removes least recently used entries until the cache fits its bound; never one in use, never `keep`.
    /// - Returns: the keys removed.
    @discardableResult
    public func evict(keep: String? = nil) -> [String] {
        let fm = FileManager.default
        var entries = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).compactMap { lookup($0) }
        var total = entries.reduce(Int64(0)) { $0 + $1.bytes }
        entries.sort { $0.lastUsed < $1.lastUsed }
        var removed: [String] = []
        for entry in entries where total > maxBytes && entry.key != keep && !inUse(entry.key) {
            if (try? fm.removeItem(atPath: directory(entry.key))) != nil {
                total -= entry.bytes
                removed.append(entry.key)
            }
        }
        return removed
    }

    /// Whether a job still alive uses the entry; markers of jobs that are gone are removed.
    public func inUse(_ key: String) -> Bool {
        let users = directory(key) + "/users"
        var alive = false
        for marker in (try? FileManager.default.contentsOfDirectory(atPath: users)) ?? [] {
            let path = users + "/" + marker
            let job = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
            if !job.isEmpty, FileManager.default.fileExists(atPath: job) { alive = true } else { unlink(path) }
        }
        return alive
    }

    /// Hard-links a tree (directories recreated), copying `table.lock` files, which CASA rewrites in place.
    static func linkTree(_ source: String, to target: String) throws {
        var st = stat()
        guard lstat(source, &st) == 0 else { throw CocoaError(.fileReadNoSuchFile) }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            for child in try FileManager.default.contentsOfDirectory(atPath: source) {
                try linkTree(source + "/" + child, to: target + "/" + child)
            }
        case S_IFREG:
            if PathString.lastComponent(source) == "table.lock" || link(source, target) != 0 {
                try FileManager.default.copyItem(atPath: source, toPath: target)
            }
        case S_IFLNK:
            let destination = try FileManager.default.destinationOfSymbolicLink(atPath: source)
            try FileManager.default.createSymbolicLink(atPath: target, withDestinationPath: destination)
        default:
            break
        }
    }

    static func size(_ path: String) -> Int64 {
        var total: Int64 = 0
        for item in (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? [] {
            var st = stat()
            if lstat(path + "/" + item, &st) == 0, st.st_mode & S_IFMT == S_IFREG { total += Int64(st.st_size) }
        }
        return total
    }

    static func writeEntry(_ entry: Entry, in dir: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(entry), to: dir + "/entry.json")
    }
}
