internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// A flag a blocking loop polls to notice that the Swift task waiting for it was cancelled.
///
/// ``BlockingWork/run(_:)`` creates one per call, sets it when the awaiting task is cancelled, and makes it the
/// worker thread's ``current`` flag, so deep loops (extraction, hashing, copying, publishing) can check it
/// between chunks without every caller passing it down.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    /// Whether cancellation was requested.
    public var isCancelled: Bool { flag.load(ordering: .relaxed) }

    /// Requests cancellation; the blocking loop stops at its next check.
    public func cancel() { flag.store(true, ordering: .relaxed) }

    /// Throws `cancelled` once cancellation was requested.
    /// - Throws: ``DeliveryError`` with code ``DeliveryError/Code/cancelled``.
    public func check(_ what: @autoclosure () -> String = "the operation") throws(DeliveryError) {
        if isCancelled { throw DeliveryError(.cancelled, "\(what()) was cancelled") }
    }

    /// The flag of the ``BlockingWork`` running on this thread, or nil on any other thread.
    public static var current: CancellationFlag? {
        guard let pointer = pthread_getspecific(currentKey) else { return nil }
        return Unmanaged<CancellationFlag>.fromOpaque(pointer).takeUnretainedValue()
    }

    fileprivate static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()
}

/// Runs blocking work — file extraction, hashing, copying, fsync, `flock`, SQLite, directory scans, libcurl,
/// process reaping — on a thread of its own, never on Swift's cooperative pool (one thread per core), so that
/// cancellation, progress, lease renewal and the watcher keep running however long the work takes.
///
/// Cancelling the awaiting task sets the body's ``CancellationFlag``; the body checks it between chunks or
/// entries and throws (or returns early), and `run` returns only when the body has returned: no work is left
/// running behind the caller's back.
public enum BlockingWork {
    /// Runs `body` on a new thread and awaits its result.
    /// - Parameter body: the blocking work; it receives the flag that is set when the calling task is cancelled
    ///   (the same flag is ``CancellationFlag/current`` on that thread).
    /// - Returns: what `body` returned.
    /// - Throws: what `body` threw.
    public static func run<T: Sendable, E: Error>(
        _ body: @escaping @Sendable (CancellationFlag) throws(E) -> T
    ) async throws(E) -> T {
        let flag = CancellationFlag()
        let result: Result<T, E> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, E>, Never>) in
                NativeThread.start(name: "blocking-work", stackSize: 4 << 20) {
                    pthread_setspecific(CancellationFlag.currentKey, Unmanaged.passUnretained(flag).toOpaque())
                    defer { pthread_setspecific(CancellationFlag.currentKey, nil) }
                    do throws(E) {
                        continuation.resume(returning: .success(try body(flag)))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            }
        } onCancel: {
            flag.cancel()
        }
        return try result.get()
    }
}

/// A serial executor on one dedicated thread, for actors whose isolated sections make short blocking calls
/// (`flock`, SQLite with `synchronous=FULL`, fsync of small files): they then hold that thread, never one of
/// the cooperative pool's. Long work still belongs in ``BlockingWork``.
public final class DedicatedThreadExecutor: SerialExecutor, Sendable {
    private let queue = ExecutorJobQueue()

    /// Starts the thread.
    /// - Parameter name: the thread's name (shown by `top -H`, `gdb`).
    public init(name: String) {
        queue.serve(name: name) { [self] job in job.runSynchronously(on: asUnownedSerialExecutor()) }
    }

    public func enqueue(_ job: consuming ExecutorJob) { queue.append(UnownedJob(job)) }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}

/// A task executor of a few dedicated threads: tasks (and the nonisolated async functions they call) that prefer it
/// (`withTaskExecutorPreference`, `Task(executorPreference:)`) run their synchronous stretches — short blocking
/// bookkeeping such as a checkpoint write with fsync, a `flock`, an SQLite commit — on these threads instead of
/// the cooperative pool's. Jobs run in the order they were enqueued, by whichever thread is free.
///
/// A closure passed to `withTaskExecutorPreference` starts where its caller runs; the switch happens at its first
/// call of a nonisolated `async` function. Put the work in such a function and call it from the closure.
public final class ThreadPoolTaskExecutor: TaskExecutor, Sendable {
    private let queue = ExecutorJobQueue()

    /// Starts `threads` threads named `name`.
    public init(name: String, threads: Int = 2) {
        for index in 0..<max(1, threads) {
            queue.serve(
                name: threads > 1 ? "\(name)-\(index)" : name,
                setUp: { [self] in
                    pthread_setspecific(Self.ownerKey, Unmanaged.passUnretained(self).toOpaque())
                },
                run: { [self] job in job.runSynchronously(on: asUnownedTaskExecutor()) })
        }
    }

    /// Whether the calling thread is one of this executor's.
    public var isCurrentThread: Bool {
        pthread_getspecific(Self.ownerKey) == Unmanaged.passUnretained(self).toOpaque()
    }

    private static let ownerKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    public func enqueue(_ job: consuming ExecutorJob) { queue.append(UnownedJob(job)) }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor { UnownedTaskExecutor(ordinary: self) }
}

/// The one run path of both executors: jobs in the order they were enqueued, served by threads that each wait for the
/// next job and run it.
private final class ExecutorJobQueue: @unchecked Sendable {
    private let condition = ConditionLock()
    private var jobs: [UnownedJob] = []  // guarded by `condition`
    private var head = 0  // guarded by `condition`: jobs before it have been taken

    func append(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Starts a thread named `name` that runs `setUp` once, then every job it takes with `run`, for ever. The closures
    /// hold their executor strongly: an executor lives as long as its threads (tasks refer to it unowned).
    func serve(name: String, setUp: @escaping @Sendable () -> Void = {}, run: @escaping @Sendable (UnownedJob) -> Void)
    {
        NativeThread.start(name: name) { [self] in
            setUp()
            while true { run(next()) }
        }
    }

    private func next() -> UnownedJob {
        condition.lock()
        defer { condition.unlock() }
        while head == jobs.count { condition.wait() }
        let job = jobs[head]
        head += 1
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= jobs.count {
            jobs.removeFirst(head)  // a queue that never empties: drop the taken jobs now and then
            head = 0
        }
        return job
    }
}
