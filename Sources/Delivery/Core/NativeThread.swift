internal import CArchive
internal import CFileIO
internal import Glibc

/// Threads and a condition variable on pthreads (Foundation's `Thread` and `NSCondition`, without Foundation).
public enum NativeThread {
    /// Starts a detached thread named `name` (truncated to the 15 bytes Linux keeps) that runs `body`.
    /// - Parameters:
    ///   - stackSize: the stack size in bytes; 0 keeps the system's default.
    public static func start(name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(ThreadStart(name: name, body: body)).toOpaque()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        if stackSize > 0 { pthread_attr_setstacksize(&attributes, stackSize) }
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, &attributes,
            { raw in
                let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
                var name = Array(start.name.utf8.prefix(15)).map { CChar(bitPattern: $0) }
                name.append(0)
                _ = cfileio_set_thread_name(name)
                start.body()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// Sleeps the calling thread for `seconds` (not on the cooperative pool: blocking).
    public static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
    }
}

private final class ThreadStart {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// A mutex with one condition variable (as `NSCondition`): `lock`, `wait` (releases the lock while waiting),
/// `signal`/`broadcast`, `unlock`. Timed waits use the monotonic clock. Unchecked `Sendable`: the pthread objects
/// are used only through pthread calls.
public final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }
    /// Wakes one waiter (call with the lock held).
    public func signal() { pthread_cond_signal(condition) }
    /// Wakes every waiter (call with the lock held).
    public func broadcast() { pthread_cond_broadcast(condition) }
    /// Waits for a signal (call with the lock held; spurious wake-ups happen: re-check the predicate).
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits for a signal at most `seconds`; false when the time ran out.
    @discardableResult
    public func wait(seconds: Double) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let whole = seconds.rounded(.down)
        var nanoseconds = deadline.tv_nsec + Int((seconds - whole) * 1e9)
        deadline.tv_sec += Int(whole) + nanoseconds / 1_000_000_000
        nanoseconds %= 1_000_000_000
        deadline.tv_nsec = nanoseconds
        return pthread_cond_timedwait(condition, mutex, &deadline) == 0
    }
}
