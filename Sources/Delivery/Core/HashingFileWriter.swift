internal import Dispatch
internal import Foundation
internal import Synchronization

/// Writes a file sequentially while counting and checksumming what it writes.
///
/// The caller's thread (a libcurl callback, a copy loop) checksums each block while it is hot in the cache
/// and copies it into one of a few 4 MiB chunks; a second thread writes full chunks to the file. Receiving
/// and checksumming thus overlap with the `write(2)` copies instead of adding to them. On resume the existing
/// prefix is re-hashed first. ``finish()`` drains the chunks, fsyncs and returns the checksum of exactly the
/// bytes in the file. Not thread-safe: owned by one thread at a time.
final class HashingFileWriter {
    let path: String
    private(set) var bytesWritten: Int64 = 0
    private(set) var checksum: Checksum?
    private var running: Checksum
    private let sink: ChunkSink
    private var current: Int?
    private var filled = 0
    private var finished = false

    static let chunkSize = 4 << 20

    /// Opens `path` for writing. With `resume`, keeps the existing content (hashed again) and appends.
    init(path: String, variant: ChecksumVariant, resume: Bool) throws(DeliveryError) {
        self.path = path
        running = Checksum(variant)
        let fd: Int32
        if resume, let existing = FileSystem.size(path), existing > 0 {
            running = try Checksum.ofFile(path, variant: variant, limit: existing)
            fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            bytesWritten = existing
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        if fd < 0 { throw .posix("cannot open for writing", path: path, errno: errno) }
        sink = ChunkSink(fd: fd, path: path)
    }

    deinit { closeQuietly() }

    /// Discards everything written so far and starts again from byte 0.
    func restart() throws(DeliveryError) {
        try flush()
        try sink.truncate()
        bytesWritten = 0
        running = Checksum(running.variant)
    }

    /// Checksums and queues all bytes for writing.
    func write(_ bytes: UnsafeRawBufferPointer) throws(DeliveryError) {
        guard var base = bytes.baseAddress, bytes.count > 0 else { return }
        if let error = sink.error { throw error }
        running.update(bytes)
        var remaining = bytes.count
        while remaining > 0 {
            if current == nil {
                current = sink.takeFreeChunk()
                filled = 0
            }
            let n = min(remaining, Self.chunkSize - filled)
            (sink.memory(of: current!) + filled).copyMemory(from: base, byteCount: n)
            filled += n
            base += n
            remaining -= n
            if filled == Self.chunkSize {
                sink.submit(current!, count: filled)
                current = nil
            }
        }
        bytesWritten += Int64(bytes.count)
    }

    private func flush() throws(DeliveryError) {
        if let chunk = current {
            sink.submit(chunk, count: filled)
            current = nil
        }
        try sink.waitUntilWritten()
    }

    /// Writes what is queued, fsyncs and closes; returns the checksum (also kept in ``checksum``).
    @discardableResult
    func finish() throws(DeliveryError) -> Checksum {
        if let checksum { return checksum }
        try flush()
        try sink.close(sync: true)
        finished = true
        checksum = running
        return running
    }

    /// Stops without syncing (abandoned transfer); the file keeps whatever was written.
    func closeQuietly() {
        guard !finished else { return }
        finished = true
        if let chunk = current {
            sink.submit(chunk, count: filled)
            current = nil
        }
        try? sink.waitUntilWritten()
        try? sink.close(sync: false)
    }
}

/// The writing thread of a ``HashingFileWriter`` and its pool of chunks.
///
/// `@unchecked Sendable`: `fd` and the chunk memory are handed between the owner and the writing thread only
/// through `queue` (a `Mutex`) and the semaphores; `failure` is behind a `Mutex`.
final class ChunkSink: @unchecked Sendable {
    private struct Job {
        var chunk: Int?
        var count: Int
        var barrier: DispatchSemaphore?
    }

    let path: String
    private var fd: Int32
    private let queue = Mutex<[Job]>([])
    private let jobs = DispatchSemaphore(value: 0)
    private let free: Mutex<[Int]>
    private let freeCount: DispatchSemaphore
    private let failure = Mutex<DeliveryError?>(nil)
    private let stopped = DispatchSemaphore(value: 0)
    private let allChunks: [UnsafeMutableRawPointer]
    private var closed = false

    init(fd: Int32, path: String, chunks: Int = 4) {
        self.fd = fd
        self.path = path
        allChunks = (0..<chunks).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: HashingFileWriter.chunkSize, alignment: 4096)
        }
        free = Mutex(Array(0..<chunks))
        freeCount = DispatchSemaphore(value: chunks)
        let thread = Thread { [self] in self.run() }
        thread.name = "delivery-write"
        thread.start()
    }

    deinit {
        for chunk in allChunks { chunk.deallocate() }
    }

    var error: DeliveryError? { failure.withLock { $0 } }

    /// The memory of chunk `index`.
    func memory(of index: Int) -> UnsafeMutableRawPointer { allChunks[index] }

    func takeFreeChunk() -> Int {
        freeCount.wait()
        return free.withLock { $0.removeLast() }
    }

    func submit(_ chunk: Int, count: Int) {
        queue.withLock { $0.append(Job(chunk: chunk, count: count, barrier: nil)) }
        jobs.signal()
    }

    /// Blocks until every submitted chunk is written; throws the first write error.
    func waitUntilWritten() throws(DeliveryError) {
        let barrier = DispatchSemaphore(value: 0)
        queue.withLock { $0.append(Job(chunk: nil, count: 0, barrier: barrier)) }
        jobs.signal()
        barrier.wait()
        if let error { throw error }
    }

    func truncate() throws(DeliveryError) {
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 {
            throw .posix("cannot truncate", path: path, errno: errno)
        }
    }

    /// Stops the thread (all jobs must have been waited for) and closes the file, fsyncing it if `sync`.
    func close(sync: Bool) throws(DeliveryError) {
        guard !closed else { return }
        closed = true
        queue.withLock { $0.append(Job(chunk: nil, count: -1, barrier: nil)) }
        jobs.signal()
        stopped.wait()
        let rc = sync ? fsync(fd) : 0
        let code = errno
        Glibc.close(fd)
        fd = -1
        if rc != 0 { throw .posix("cannot fsync", path: path, errno: code) }
        if let error { throw error }
    }

    private func run() {
        while true {
            jobs.wait()
            let job = queue.withLock { $0.removeFirst() }
            if job.count < 0 { break }
            if let barrier = job.barrier {
                barrier.signal()
                continue
            }
            guard let chunk = job.chunk else { continue }
            if error == nil {
                let memory = allChunks[chunk]
                var offset = 0
                while offset < job.count {
                    let n = Glibc.write(fd, memory + offset, job.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        let failed = DeliveryError.posix("cannot write", path: path, errno: errno)
                        failure.withLock { $0 = $0 ?? failed }
                        break
                    }
                    offset += n
                }
            }
            free.withLock { $0.append(chunk) }
            freeCount.signal()
        }
        stopped.signal()
    }
}
