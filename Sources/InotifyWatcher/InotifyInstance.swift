@preconcurrency internal import Dispatch
internal import Glibc

/// One inotify descriptor with a dispatch read source on it. Confined to the owning watcher's queue.
///
/// The descriptor is non-blocking and close-on-exec, and is closed exactly once: in the read source's cancel
/// handler, after dispatch has stopped using it.
final class InotifyInstance {
    /// One event as the kernel reported it.
    struct RawEvent: Equatable {
        var watch: Int32
        var mask: UInt32
        /// The entry name, or `nil` for events on the watched directory itself (or names that are not UTF-8).
        var name: String?
    }

    /// The outcome of one `read(2)`.
    enum ReadResult {
        case events([RawEvent])
        case wouldBlock
        case failed(Int32)
    }

    /// The events a spool watch asks for: complete-looking names, and anything that ends the watch.
    ///
    /// `IN_CREATE` is there only for entries that never produce a close or rename event — symbolic links,
    /// FIFOs, directories, device nodes, hard links (`ln`, `mkfifo`, `mkdir`): they are reported at once instead of
    /// at the next rescan, so a consumer can refuse them at once. Created regular files are not reported until
    /// they are closed.
    static let watchMask: UInt32 =
        UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO) | UInt32(IN_CREATE) | UInt32(IN_DELETE_SELF) | UInt32(IN_MOVE_SELF)
        | UInt32(IN_UNMOUNT) | UInt32(IN_ONLYDIR) | UInt32(IN_DONT_FOLLOW) | UInt32(IN_EXCL_UNLINK)

    /// Bytes read per `read(2)`: about 2 700 events with 8-byte names, so a burst is drained in few calls.
    static let readBufferSize = 64 * 1024

    let descriptor: Int32
    private let source: any DispatchSourceRead
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var isSuspended = false
    private(set) var isClosed = false

    /// Creates the descriptor (`inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`) and an activated read source that calls
    /// `readable` on `queue` whenever events are waiting.
    ///
    /// - Throws: ``WatcherError/Code/inotifyInitFailed`` with the reason (`EMFILE`: per-user instance limit).
    init(path: String, queue: DispatchQueue, readable: @escaping @Sendable () -> Void) throws(WatcherError) {
        let descriptor = inotify_init1(Int32(IN_NONBLOCK) | Int32(IN_CLOEXEC))
        guard descriptor >= 0 else { throw Self.initError(errno: errno, path: path) }
        self.descriptor = descriptor
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Self.readBufferSize, alignment: MemoryLayout<inotify_event>.alignment)
        self.buffer = buffer
        source = DispatchSource.makeReadSource(fileDescriptor: descriptor, queue: queue)
        source.setEventHandler(handler: readable)
        source.setCancelHandler {
            Glibc.close(descriptor)
            buffer.deallocate()
        }
        source.activate()
    }

    /// Watches `path`. The corresponding C function is `inotify_add_watch`.
    ///
    /// - Returns: The watch descriptor.
    /// - Throws: ``WatcherError/Code/addWatchFailed`` (`ENOSPC`: per-user watch limit) or the code of a missing
    ///   or unreadable directory.
    func addWatch(path: String) throws(WatcherError) -> Int32 {
        let watch = inotify_add_watch(descriptor, path, Self.watchMask)
        guard watch >= 0 else { throw Self.addWatchError(errno: errno, path: path) }
        return watch
    }

    /// Stops a watch; the kernel answers with `IN_IGNORED`. The corresponding C function is `inotify_rm_watch`.
    func removeWatch(_ watch: Int32) {
        _ = inotify_rm_watch(descriptor, watch)
    }

    /// Reads what is waiting (up to ``readBufferSize`` bytes) without blocking.
    func read() -> ReadResult {
        guard !isClosed else { return .wouldBlock }
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count > 0 { return .events(Self.parse(UnsafeRawBufferPointer(rebasing: buffer[..<count]))) }
            if count == 0 { return .wouldBlock }
            let value = errno
            if value == EINTR { continue }
            if value == EAGAIN || value == EWOULDBLOCK { return .wouldBlock }
            return .failed(value)
        }
    }

    /// Stops dispatching read events (back-pressure: the kernel queue holds further events).
    func suspend() {
        guard !isSuspended, !isClosed else { return }
        source.suspend()
        isSuspended = true
    }

    /// Resumes dispatching read events.
    func resume() {
        guard isSuspended, !isClosed else { return }
        source.resume()
        isSuspended = false
    }

    /// Cancels the read source; its cancel handler closes the descriptor. Idempotent.
    func close() {
        guard !isClosed else { return }
        if isSuspended {
            source.resume()  // a suspended source never runs its cancel handler
            isSuspended = false
        }
        isClosed = true
        source.cancel()
    }

    deinit {
        close()
    }

    /// Splits a buffer of `struct inotify_event` records (header, then `len` bytes of NUL-padded name).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> [RawEvent] {
        let headerSize = 16  // int wd; uint32_t mask, cookie, len; then char name[]
        var events: [RawEvent] = []
        var offset = 0
        while offset + headerSize <= bytes.count {
            let watch = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let nameStart = offset + headerSize
            let nameEnd = min(nameStart + length, bytes.count)
            var name: String?
            if length > 0 {
                let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameEnd]).prefix(while: { $0 != 0 })
                name = FileName.decode(nameBytes)
            }
            events.append(RawEvent(watch: watch, mask: mask, name: name))
            offset = nameEnd
        }
        return events
    }

    private static func initError(errno value: Int32, path: String) -> WatcherError {
        let message = "inotify_init1 failed"
        let hint: String? =
            switch value {
            case EMFILE:
                "too many inotify instances for this user (fs.inotify.max_user_instances = "
                    + "\(sysctl("max_user_instances"))); raise it with sysctl or stop other watchers"
            case ENFILE: "the system-wide limit on open files was reached"
            case ENOMEM: "the kernel is out of memory"
            default: nil
            }
        return WatcherError(code: .inotifyInitFailed, errno: value, path: path, message: message, hint: hint)
    }

    private static func addWatchError(errno value: Int32, path: String) -> WatcherError {
        switch value {
        case ENOENT, ENOTDIR, EACCES, EPERM:
            var error = WatcherError.system("inotify_add_watch", errno: value, path: path)
            if value == ENOTDIR { error.hint = "the path is not a directory (symbolic links are not followed)" }
            return error
        case ENOSPC:
            return WatcherError(
                code: .addWatchFailed, errno: value, path: path, message: "inotify_add_watch failed",
                hint: "the per-user inotify watch limit was reached (fs.inotify.max_user_watches = "
                    + "\(sysctl("max_user_watches"))); raise it with sysctl")
        default:
            return WatcherError(code: .addWatchFailed, errno: value, path: path, message: "inotify_add_watch failed")
        }
    }

    /// The value of `/proc/sys/fs/inotify/<name>`, or `"?"`.
    static func sysctl(_ name: String) -> String {
        let descriptor = open("/proc/sys/fs/inotify/" + name, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return "?" }
        defer { Glibc.close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return "?" }
        return String(decoding: bytes[..<count], as: UTF8.self).filter { $0.isNumber }
    }
}
