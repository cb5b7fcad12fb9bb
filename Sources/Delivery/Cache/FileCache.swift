// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import FoundationEssentials
internal import Glibc

/// Counters of a ``FileCache`` since it was created.
public struct CacheStatistics: Sendable, Hashable {
    /// Retrievals served from the cache without fetching.
    public var hits = 0
    /// Retrievals that had to fetch from the store.
    public var misses = 0
    /// Bytes fetched from stores on misses.
    public var bytesFetched: Int64 = 0
    /// Bytes of files served from the cache on hits.
    public var bytesServedFromCache: Int64 = 0
    /// Entries removed to stay under the size limit.
    public var evictions = 0
    /// Bytes currently held.
    public var currentBytes: Int64 = 0
    /// Files currently held.
    public var entries = 0
}

/// A size-bounded, restart-safe cache of archive files in front of any ``ArchiveStore``.
///
/// Layout under `root`: `objects/<key>` (read-only files; the key is the file id plus its expected checksum,
/// so a file re-archived with another checksum is a different entry) and `incoming/` (fetches in progress,
/// cleared at start). The index is derived from the directory at first use, with least-recent use taken from
/// the files' modification times (touched on every hit), so the cache survives restarts.
///
/// Files are handed out as hard links (a copy if `destination` is on another file system): callers must
/// treat them as read-only. Entries in use are pinned, and eviction (least recently used first) never
/// removes a pinned entry; if everything is pinned the cache may exceed `maxBytes` until entries are unpinned.
/// Concurrent requests for the same entry share one fetch.
public actor FileCache {
    /// The cache directory.
    public let root: String
    /// Bytes the cache aims to stay under.
    public let maxBytes: Int64

    private struct Entry {
        var size: Int64
        var lastUse: Double
    }

    private var entries: [String: Entry] = [:]
    private var pins: [String: Int] = [:]
    private var inFlight: [String: Task<RetrievedFile, any Error>] = [:]
    private var loaded = false
    private var stats = CacheStatistics()

    /// Creates a cache in `root` (created if needed) holding at most about `maxBytes`.
    public init(root: String, maxBytes: Int64) {
        self.root = root
        self.maxBytes = maxBytes
    }

    /// Counters since creation, with the current size.
    public var statistics: CacheStatistics {
        var s = stats
        s.currentBytes = entries.values.reduce(0) { $0 + $1.size }
        s.entries = entries.count
        return s
    }

    private var objects: String { root + "/objects" }
    private var incoming: String { root + "/incoming" }

    /// The cache key of a file: its id plus the normalised expected checksum.
    nonisolated static func key(for file: ExpectedFile) -> String {
        guard let text = file.checksum, let value = Checksum.parse(text) else { return file.fileId + "@none" }
        let variant = file.effectiveVariant == .crc32c ? "crc32c" : "crc32"
        return "\(file.fileId)@\(variant)-\(value)"
    }

    private func load() throws(DeliveryError) {
        guard !loaded else { return }
        try FileSystem.makeDirectories(objects)
        try FileSystem.makeDirectories(incoming)
        // Partial fetches (`<key>.part`) survive a restart so they can be resumed; anything else left in
        // `incoming/`, and partials untouched for a week, are removed.
        let weekAgo = Date().timeIntervalSince1970 - 7 * 86400
        for name in (try? FileManager.default.contentsOfDirectory(atPath: incoming)) ?? [] {
            let path = incoming + "/" + name
            var st = stat()
            let fresh = lstat(path, &st) == 0 && Double(st.st_mtim.tv_sec) > weekAgo
            if (name.hasSuffix(".part") || name.hasSuffix(".lock")) && fresh { continue }
            FileSystem.removeTree(path)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: objects)) ?? []
        for name in names {
            var st = stat()
            let path = objects + "/" + name
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            entries[name] = Entry(
                size: Int64(st.st_size), lastUse: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9)
        }
        loaded = true
    }

    /// Whether the cache holds `file`.
    public func contains(_ file: ExpectedFile) throws -> Bool {
        try load()
        return entries[Self.key(for: file)] != nil
    }

    /// Pins `file` so eviction keeps it (until a matching ``unpin(_:)``); pins nest.
    public func pin(_ file: ExpectedFile) {
        pins[Self.key(for: file), default: 0] += 1
    }

    /// Releases one ``pin(_:)``.
    public func unpin(_ file: ExpectedFile) {
        let key = Self.key(for: file)
        if let count = pins[key], count > 1 { pins[key] = count - 1 } else { pins[key] = nil }
        evictIfNeeded()
    }

    /// Returns the file hard-linked at `destination`, fetching it through `store` only on a miss.
    ///
    /// - Parameters:
    ///   - file: what to retrieve; the key is its id plus expected checksum.
    ///   - store: where to fetch on a miss (the store verifies size and checksum).
    ///   - destination: where the file should appear (replaced if it exists).
    ///   - progress: progress of the fetch on a miss; called once with the full size on a hit.
    /// - Returns: the file at `destination`; `fromCache` and `bytesTransferred == 0` on a hit.
    /// - Throws: ``DeliveryError`` from the store or the file system.
    public func retrieve(
        _ file: ExpectedFile, from store: any ArchiveStore, to destination: String,
        progress: @escaping ProgressHandler
    ) async throws -> RetrievedFile {
        try FileIdentifier.validate(file.fileId)
        try load()
        let key = Self.key(for: file)
        pins[key, default: 0] += 1
        defer {
            if let count = pins[key], count > 1 { pins[key] = count - 1 } else { pins[key] = nil }
        }
        let object = objects + "/" + key
        if let entry = entries[key], FileSystem.size(object) == entry.size,
            file.size == nil || file.size == entry.size
        {
            try await link(object, to: destination)
            touch(key, object)
            stats.hits += 1
            stats.bytesServedFromCache += entry.size
            progress(entry.size, entry.size)
            return RetrievedFile(
                fileId: file.fileId, path: destination, size: entry.size, checksum: checksumString(file),
                bytesTransferred: 0, fromCache: true, serverFileName: nil)
        }
        entries[key] = nil
        let fetched: RetrievedFile
        let shared: Bool
        if let running = inFlight[key] {
            // Another caller is fetching this entry: wait for it instead of fetching twice.
            fetched = try await running.value
            shared = true
            stats.hits += 1
            stats.bytesServedFromCache += fetched.size
        } else {
            if let size = file.size { evictIfNeeded(reserving: size) }
            // A fixed name per key, so that a fetch interrupted by a crash (`kill -9`) leaves a `.part` the next
            // attempt resumes with `Range`; the lock keeps two processes sharing the cache off the same `.part`.
            let temporary = incoming + "/" + key
            let lock = try await IncomingLock.acquire(temporary + ".lock")
            defer { lock.release() }
            // The task also moves the verified file into place, so that waiters find it when it completes.
            let task = Task {
                do {
                    let result = try await store.retrieve(file, to: temporary, progress: progress)
                    chmod(temporary, 0o444)
                    try FileSystem.rename(temporary, object)
                    return result
                } catch {
                    FileSystem.remove(temporary)
                    // A cancelled fetch (shutdown, a cancelled request) keeps its `.part` for the next attempt.
                    let cancelled = error is CancellationError || (error as? DeliveryError)?.code == .cancelled
                    if !cancelled { FileSystem.remove(temporary + ".part") }
                    throw error
                }
            }
            inFlight[key] = task
            defer { inFlight[key] = nil }
            // The fetch is an unstructured task (others may wait for it): forward our cancellation to it
            // (callers waiting on the same entry then fail with `cancelled` too).
            let result = try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
            entries[key] = Entry(size: result.size, lastUse: Date().timeIntervalSince1970)
            stats.misses += 1
            stats.bytesFetched += result.bytesTransferred
            fetched = result
            shared = false
        }
        try await link(object, to: destination)
        evictIfNeeded()
        return RetrievedFile(
            fileId: file.fileId, path: destination, size: fetched.size, checksum: fetched.checksum,
            bytesTransferred: shared ? 0 : fetched.bytesTransferred, fromCache: shared,
            serverFileName: fetched.serverFileName)
    }

    private func checksumString(_ file: ExpectedFile) -> String? {
        file.checksum.flatMap(Checksum.parse).map { String($0) }
    }

    private func touch(_ key: String, _ path: String) {
        let now = Date().timeIntervalSince1970
        entries[key]?.lastUse = now
        utimes(path, nil)
    }

    /// Hard-links `object` at `destination` (atomically replacing it), copying across file systems. Runs on a
    /// thread of its own (``BlockingWork``): a cross-file-system copy of a large entry is long, and is cancelled
    /// between chunks (``ChunkedCopy``). The caller's pin keeps `object` from eviction meanwhile.
    private func link(_ object: String, to destination: String) async throws(DeliveryError) {
        try await BlockingWork.run { (flag) throws(DeliveryError) in
            try Self.linkOrCopy(object, to: destination, cancelled: flag)
        }
    }

    private static func linkOrCopy(
        _ object: String, to destination: String, cancelled: CancellationFlag
    ) throws(DeliveryError) {
        let temporary = FileSystem.temporarySibling(of: destination, tag: "link")
        if Glibc.link(object, temporary) != 0 {
            let code = errno
            guard code == EXDEV || code == EPERM || code == EMLINK else {
                throw .posix("cannot link cache entry to", path: destination, errno: code)
            }
            FileSystem.remove(temporary)
            do throws(DeliveryError) {
                try ChunkedCopy.copy(object, to: temporary, cancelled: cancelled)
            } catch {
                if error.code == .cancelled { throw error }
                throw DeliveryError(.fileSystem, "cannot copy cache entry to '\(destination)': \(error.message)")
            }
        }
        do throws(DeliveryError) {
            try FileSystem.rename(temporary, destination)
        } catch {
            FileSystem.remove(temporary)
            throw error
        }
    }

    /// Evicts least-recently-used unpinned entries until `reserving` more bytes fit under ``maxBytes``.
    private func evictIfNeeded(reserving: Int64 = 0) {
        var current = entries.values.reduce(0) { $0 + $1.size }
        guard current + reserving > maxBytes else { return }
        let candidates = entries.filter { pins[$0.key] == nil }.sorted { $0.value.lastUse < $1.value.lastUse }
        for (key, entry) in candidates where current + reserving > maxBytes {
            FileSystem.remove(objects + "/" + key)
            entries[key] = nil
            current -= entry.size
            stats.evictions += 1
        }
    }
}

/// An exclusive `flock(2)` on a file in the cache's incoming directory, polled without blocking a thread.
struct IncomingLock: Sendable {
    let descriptor: Int32

    static func acquire(_ path: String) async throws -> IncomingLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DeliveryError(.fileSystem, "cannot open the cache lock \(path): \(String(cString: strerror(errno)))")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if errno != EWOULDBLOCK && errno != EINTR {
                close(fd)
                throw DeliveryError(.fileSystem, "cannot lock \(path): \(String(cString: strerror(errno)))")
            }
            do { try await Task.sleep(for: .milliseconds(100)) } catch {
                close(fd)
                throw error
            }
        }
        return IncomingLock(descriptor: fd)
    }

    func release() {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
