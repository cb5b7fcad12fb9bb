// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import Dispatch
internal import Foundation
internal import Synchronization

/// Small POSIX helpers with ``DeliveryError`` errors; the module's only direct file-system layer.
enum FileSystem {
    /// `lstat`, or `nil` if the path does not exist.
    static func status(_ path: String) throws(DeliveryError) -> stat? {
        var st = stat()
        if lstat(path, &st) == 0 { return st }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw .posix("cannot stat", path: path, errno: errno)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    /// Removes a file or a whole tree, ignoring errors (clean-up paths only).
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(DeliveryError) {
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw .posix("cannot create directory", path: path, errno: errno)
        }
    }

    static func makeDirectories(_ path: String) throws(DeliveryError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw DeliveryError(.fileSystem, "cannot create directory '\(path)': \(error)")
        }
    }

    static func rename(_ from: String, _ to: String) throws(DeliveryError) {
        if Glibc.rename(from, to) != 0 { throw .posix("cannot rename '\(from)' to", path: to, errno: errno) }
    }

    /// fsyncs a directory so a rename inside it is durable.
    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    static func parent(_ path: String) -> String {
        let p = (path as NSString).deletingLastPathComponent
        return p.isEmpty ? "." : p
    }

    static func baseName(_ path: String) -> String { (path as NSString).lastPathComponent }

    static func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

    /// A unique, hidden sibling name for temporary output next to `path`.
    static func temporarySibling(of path: String, tag: String) -> String {
        join(parent(path), ".\(baseName(path)).\(tag)-\(UUID().uuidString.prefix(8))")
    }
}

/// Writes a file sequentially while counting and checksumming what it writes.
///
/// The checksum is computed on a second thread that reads the written bytes back (from the page cache) right
/// behind the writer, so hashing overlaps with receiving instead of adding to it; on resume it also re-hashes
/// the existing prefix. ``finish()`` waits for it and returns the checksum of exactly what is in the file.
/// Not thread-safe: owned by one transfer thread at a time.
final class HashingFileWriter {
    let path: String
    let variant: ChecksumVariant
    private(set) var fd: Int32
    private(set) var bytesWritten: Int64 = 0
    private var hasher: BackgroundHasher
    private(set) var checksum: Checksum?

    /// Opens `path` for writing. With `resume`, keeps the existing content (hashed again) and appends.
    init(path: String, variant: ChecksumVariant, resume: Bool) throws(DeliveryError) {
        self.path = path
        self.variant = variant
        if resume, let existing = FileSystem.size(path), existing > 0 {
            fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            bytesWritten = existing
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        if fd < 0 { throw .posix("cannot open for writing", path: path, errno: errno) }
        hasher = BackgroundHasher(path: path, variant: variant, length: bytesWritten)
    }

    deinit {
        hasher.cancel()
        if fd >= 0 { close(fd) }
    }

    /// Discards everything written so far and starts again from byte 0.
    func restart() throws(DeliveryError) {
        hasher.cancel()
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 {
            throw .posix("cannot truncate", path: path, errno: errno)
        }
        bytesWritten = 0
        hasher = BackgroundHasher(path: path, variant: variant, length: 0)
    }

    /// Writes all bytes; the background hasher follows.
    func write(_ bytes: UnsafeRawBufferPointer) throws(DeliveryError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, base + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw .posix("cannot write", path: path, errno: errno)
            }
            offset += n
        }
        bytesWritten += Int64(bytes.count)
        hasher.advance(to: bytesWritten)
    }

    /// fsyncs and closes the file, then waits for the checksum of all of it (available as ``checksum``).
    @discardableResult
    func finish() throws(DeliveryError) -> Checksum {
        if let checksum { return checksum }
        if fd >= 0 {
            let rc = fsync(fd)
            let code = errno
            close(fd)
            fd = -1
            if rc != 0 { throw .posix("cannot fsync", path: path, errno: code) }
        }
        let result = try hasher.finish()
        checksum = result
        return result
    }

    func closeQuietly() {
        hasher.cancel()
        if fd >= 0 { close(fd) }
        fd = -1
    }
}

/// Checksums a file that is being appended to, on its own thread, reading just behind the writer.
final class BackgroundHasher: Sendable {
    private let written: Atomic<Int64>
    private let closed = Atomic<Bool>(false)
    private let cancelled = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<Result<Checksum, DeliveryError>?>(nil)

    init(path: String, variant: ChecksumVariant, length: Int64) {
        written = Atomic(length)
        let thread = Thread { [self] in
            let result = self.run(path: path, variant: variant)
            self.outcome.withLock { $0 = result }
            self.done.signal()
        }
        thread.name = "delivery-hash"
        thread.start()
    }

    /// Bytes written since the last wake-up of the hashing thread (used by the writer's thread only).
    private let unsignalled = Atomic<Int64>(0)

    /// The writer has written `length` bytes in total. Wakes the hashing thread every 4 MiB only (it may lag
    /// by that much; ``finish()`` wakes it for the rest), which saves a futex wake-up per write.
    func advance(to length: Int64) {
        let previous = written.exchange(length, ordering: .acquiringAndReleasing)
        let pending = unsignalled.add(length - previous, ordering: .relaxed).newValue
        if pending >= 4 << 20 {
            unsignalled.store(0, ordering: .relaxed)
            wake.signal()
        }
    }

    /// No more writes: waits until everything is hashed.
    func finish() throws(DeliveryError) -> Checksum {
        closed.store(true, ordering: .releasing)
        wake.signal()
        done.wait()
        done.signal()  // later calls return at once
        guard let result = outcome.withLock({ $0 }) else {
            throw DeliveryError(.fileSystem, "checksum thread ended without a result")
        }
        return try result.get()
    }

    /// Stops hashing (the file is being abandoned or restarted).
    func cancel() {
        cancelled.store(true, ordering: .releasing)
        wake.signal()
    }

    private func run(path: String, variant: ChecksumVariant) -> Result<Checksum, DeliveryError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.posix("cannot open", path: path, errno: errno)) }
        defer { close(fd) }
        var checksum = Checksum(variant)
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var position: Int64 = 0
        while !cancelled.load(ordering: .acquiring) {
            let isClosed = closed.load(ordering: .acquiring)
            let target = written.load(ordering: .acquiring)
            if position < target {
                let n = pread(fd, buffer, Int(min(Int64(size), target - position)), off_t(position))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    return .failure(DeliveryError(.fileSystem, "cannot read back '\(path)' at byte \(position)"))
                }
                checksum.update(UnsafeRawBufferPointer(start: buffer, count: n))
                position += Int64(n)
            } else if isClosed {
                return .success(checksum)
            } else {
                wake.wait()
            }
        }
        return .failure(DeliveryError(.cancelled, "checksum of '\(path)' abandoned"))
    }
}
