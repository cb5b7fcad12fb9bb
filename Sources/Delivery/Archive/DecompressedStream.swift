internal import CArchive
internal import CDeflate
internal import Dispatch
internal import Foundation
internal import Synchronization

/// The decompressed byte stream of an archive file (libarchive "raw" format over any filter), fed to the tar
/// reader through `archive_read_open` callbacks while computing the CRC-32 of everything decompressed.
///
/// libarchive does not check the gzip trailer itself; this lets extraction verify it in the same single pass:
/// for a single-member gzip file the CRC-32 and length (mod 2³²) of the decompressed data must equal the
/// 8-byte trailer. Multi-member gzip files (trailer length differs from the stream length) are not verified.
///
/// Decompression (and the CRC) run on a thread of their own, a few 1 MiB buffers ahead of the tar reader, which
/// parses and writes files on the caller's thread: inflating and writing are each about half of an extraction's
/// CPU, so on two cores they overlap instead of adding up (bench/extract.sh). One copy per buffer (libarchive's
/// 64 KiB output blocks into ours) is the price; it is small next to inflate.
final class DecompressedStream {
    let path: String
    /// Decompressed bytes allowed; reading stops with a failure beyond it. Set before the first ``next(_:)``.
    var maxLength: Int64 {
        get { producer.maxLength.load(ordering: .relaxed) }
        set { producer.maxLength.store(newValue, ordering: .relaxed) }
    }
    /// Why the stream stopped early (set when ``next(_:)`` returns -1).
    private(set) var failure: String?
    /// Set when the stream grew past ``maxLength``: the failure is a limit, not damage.
    private(set) var limitExceeded = false
    /// The CRC-32 and length of everything decompressed; final once ``next(_:)`` returned 0.
    private(set) var crc: UInt32 = 0
    private(set) var length: Int64 = 0
    /// Whether the file is gzip-compressed (the only filter whose trailer is checked).
    let isGzip: Bool

    private let producer: Producer
    /// The buffer handed to the tar reader by the last ``next(_:)``; it must stay valid until the next call.
    private var lent: Int?
    private var finished = false

    init(path: String) throws(DeliveryError) {
        guard let raw = archive_read_new() else { throw DeliveryError(.archiveCorrupt, "archive_read_new failed") }
        self.path = path
        archive_read_support_filter_all(raw)
        archive_read_support_format_raw(raw)
        var entry: OpaquePointer?
        guard archive_read_open_filename(raw, path, 1 << 20) == ARCHIVE_OK,
            archive_read_next_header(raw, &entry) == ARCHIVE_OK
        else {
            let text = archive_error_string(raw).map { String(cString: $0) } ?? "empty or unreadable file"
            archive_read_free(raw)
            throw DeliveryError(.archiveCorrupt, "cannot read archive '\(path)': \(text)")
        }
        isGzip = archive_filter_code(raw, 0) == 1 /* ARCHIVE_FILTER_GZIP */
        producer = Producer(raw: raw)
        let producer = self.producer
        let thread = Thread { producer.run() }
        thread.name = "delivery-inflate"
        thread.start()
    }

    deinit { producer.stop() }

    /// The next decompressed block (0 at the end), or -1 after recording a failure.
    func next(_ buffer: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        if finished { return 0 }
        if let lent {
            producer.giveBack(lent)
            self.lent = nil
        }
        switch producer.take() {
        case .data(let index, let count):
            lent = index
            buffer.pointee = UnsafeRawPointer(producer.memory(of: index))
            return count
        case .end(let crc, let length):
            finished = true
            self.crc = crc
            self.length = length
            return 0
        case .failed(let text, let limit):
            failure = text
            limitExceeded = limit
            return -1
        }
    }

    /// Reads what the tar reader left (padding after the end-of-archive blocks), then checks the gzip trailer.
    func verifyTrailer() throws(DeliveryError) {
        var scratch: UnsafeRawPointer?
        while true {
            let n = next(&scratch)
            if n < 0 {
                throw DeliveryError(
                    limitExceeded ? .archiveLimitExceeded : .archiveCorrupt,
                    "'\(path)': \(failure ?? "decompression failed")")
            }
            if n == 0 { break }
        }
        guard isGzip else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .posix("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var trailer = [UInt8](repeating: 0, count: 8)
        let fileSize = lseek(fd, 0, SEEK_END)
        guard fileSize >= 18, pread(fd, &trailer, 8, fileSize - 8) == 8 else {
            throw DeliveryError(.archiveCorrupt, "'\(path)' is too short to be a gzip file")
        }
        let storedCRC =
            UInt32(trailer[0]) | UInt32(trailer[1]) << 8 | UInt32(trailer[2]) << 16 | UInt32(trailer[3]) << 24
        let storedSize =
            UInt32(trailer[4]) | UInt32(trailer[5]) << 8 | UInt32(trailer[6]) << 16 | UInt32(trailer[7]) << 24
        guard storedSize == UInt32(truncatingIfNeeded: length) else { return }  // multi-member gzip: not checkable
        if storedCRC != crc {
            throw DeliveryError(
                .archiveCorrupt,
                "'\(path)' fails its gzip CRC check (trailer \(storedCRC), data \(crc)): the archive is damaged",
                hint: "fetch the archive again; nothing was extracted")
        }
    }
}

/// The decompressing thread of a ``DecompressedStream`` and its buffers.
///
/// `@unchecked Sendable`: `raw` is used only by the producing thread between `init` and the end of `run()`
/// (``stop()`` waits for that before freeing it); buffer memory is handed between the two threads only through
/// the `Mutex`-protected queues and the semaphores, so a buffer is written by one side at a time.
private final class Producer: @unchecked Sendable {
    enum Item {
        case data(index: Int, count: Int)
        case end(crc: UInt32, length: Int64)
        case failed(String, limit: Bool)
    }

    static let bufferBytes = 1 << 20
    static let bufferCount = 4

    let maxLength = Atomic<Int64>(.max)
    private let raw: OpaquePointer
    private let buffers: [UnsafeMutableRawPointer]
    private let ready = Mutex<[Item]>([])
    private let readyCount = DispatchSemaphore(value: 0)
    private let free: Mutex<[Int]>
    private let freeCount: DispatchSemaphore
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private var stopped = false

    init(raw: OpaquePointer) {
        self.raw = raw
        buffers = (0..<Self.bufferCount).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: Self.bufferBytes, alignment: 4096)
        }
        free = Mutex(Array(0..<Self.bufferCount))
        // Created at 0 and raised: libdispatch traps when a semaphore is freed below its initial value, which a
        // stopped stream (buffers still lent out) would be.
        freeCount = DispatchSemaphore(value: 0)
        for _ in 0..<Self.bufferCount { freeCount.signal() }
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }

    func memory(of index: Int) -> UnsafeMutableRawPointer { buffers[index] }

    /// Consumer side: the next item (blocks until there is one).
    func take() -> Item {
        readyCount.wait()
        return ready.withLock { $0.removeFirst() }
    }

    /// Consumer side: returns a buffer it has finished with.
    func giveBack(_ index: Int) {
        free.withLock { $0.append(index) }
        freeCount.signal()
    }

    /// Consumer side: makes the thread stop (at its next buffer) and waits for it, then frees libarchive's reader.
    func stop() {
        guard !stopped else { return }
        stopped = true
        stopping.store(true, ordering: .relaxed)
        freeCount.signal()  // wakes a producer waiting for a free buffer; it sees `stopping` and ends
        done.wait()
        archive_read_free(raw)
    }

    private func publish(_ item: Item) {
        ready.withLock { $0.append(item) }
        readyCount.signal()
    }

    /// Producer side: inflates into free buffers until the end, a failure, or ``stop()``.
    func run() {
        defer { done.signal() }
        var crc: UInt32 = 0
        var length: Int64 = 0
        var pending: (pointer: UnsafeRawPointer, count: Int)?
        var atEnd = false
        while !atEnd {
            freeCount.wait()
            if stopping.load(ordering: .relaxed) { return }
            let index = free.withLock { $0.removeLast() }
            let buffer = buffers[index]
            var filled = 0
            while filled < Self.bufferBytes {
                if pending == nil {
                    var block: UnsafeRawPointer?
                    var size = 0
                    var offset: la_int64_t = 0
                    let rc = archive_read_data_block(raw, &block, &size, &offset)
                    if rc == ARCHIVE_EOF {
                        atEnd = true
                        break
                    }
                    if rc < ARCHIVE_WARN {
                        if filled > 0 { publish(.data(index: index, count: filled)) }
                        let text = archive_error_string(raw).map { String(cString: $0) } ?? "decompression failed"
                        publish(.failed(text, limit: false))
                        return
                    }
                    guard let block, size > 0 else { continue }
                    crc = libdeflate_crc32(crc, block, size)
                    length += Int64(size)
                    let limit = maxLength.load(ordering: .relaxed)
                    if length > limit {
                        if filled > 0 { publish(.data(index: index, count: filled)) }
                        publish(.failed("it expands to more than \(limit) bytes", limit: true))
                        return
                    }
                    pending = (block, size)
                }
                let (pointer, count) = pending!
                let n = min(count, Self.bufferBytes - filled)
                (buffer + filled).copyMemory(from: pointer, byteCount: n)
                filled += n
                pending = n == count ? nil : (pointer + n, count - n)
            }
            if filled > 0 {
                publish(.data(index: index, count: filled))
            } else {
                giveBack(index)
            }
        }
        publish(.end(crc: crc, length: length))
    }
}
