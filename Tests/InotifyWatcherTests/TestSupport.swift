import Foundation
import Glibc
import InotifyWatcher
import Synchronization
import Testing
import DropboxTestKit

/// Writes through the C API, so each `open`/`close` is exactly one kernel open/close.
enum Writer {
    /// Creates (or truncates) `path`, writes `bytes` and closes it: one `IN_CLOSE_WRITE`.
    static func write(_ path: String, _ bytes: String, append: Bool = false) throws {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC)
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(descriptor) }
        let written = bytes.utf8CString.withUnsafeBytes { raw in Glibc.write(descriptor, raw.baseAddress, raw.count - 1)
        }
        guard written == bytes.utf8.count else { throw POSIXError(.EIO) }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}

/// Consumes a watcher in a task and records every event.
final class EventRecorder: Sendable {
    private final class Log: Sendable {
        let events = Mutex<[WatchEvent]>([])
        let arrivals = Mutex<[ContinuousClock.Instant]>([])
        let ended = Mutex(false)
    }

    private let log = Log()
    let task: Task<Void, Never>

    init(_ watcher: DirectoryWatcher) {
        let log = self.log
        task = Task {
            for await event in watcher {
                let now = ContinuousClock.now
                log.events.withLock { $0.append(event) }
                log.arrivals.withLock { $0.append(now) }
            }
            log.ended.withLock { $0 = true }
        }
    }

    var events: [WatchEvent] { log.events.withLock { $0 } }
    var hasEnded: Bool { log.ended.withLock { $0 } }

    /// When the first candidate for each name arrived.
    var firstArrivals: [String: ContinuousClock.Instant] {
        let events = self.events
        let arrivals = log.arrivals.withLock { $0 }
        var first: [String: ContinuousClock.Instant] = [:]
        for (event, arrival) in zip(events, arrivals) {
            if case .candidate(let name, _) = event, first[name] == nil { first[name] = arrival }
        }
        return first
    }

    func candidates(_ name: String, origin: WatchEvent.Origin? = nil) -> Int {
        events.filter {
            guard case .candidate(let candidate, let candidateOrigin) = $0 else { return false }
            return candidate == name && (origin == nil || origin == candidateOrigin)
        }.count
    }

    /// The names reported at least once with `origin`, in one pass over the events.
    func candidateNames(origin: WatchEvent.Origin) -> Set<String> {
        Set(events.compactMap { if case .candidate(let name, origin) = $0 { name } else { nil } })
    }

    var candidateNames: Set<String> {
        Set(events.compactMap { if case .candidate(let name, _) = $0 { name } else { nil } })
    }

    /// Waits until `condition` holds for the recorded events, failing the test after `timeout`.
    func waitFor(
        _ what: String, timeout: Duration = .seconds(10), sourceLocation: SourceLocation = #_sourceLocation,
        _ condition: @escaping ([WatchEvent]) -> Bool
    ) async throws {
        try await waitUntil(what, timeout: timeout, sourceLocation: sourceLocation) { condition(self.events) }
    }
}

/// Open file descriptors of this process.
func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// `fd -> target` for every open descriptor, for failure messages.
func describeDescriptors() -> String {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return entries.map {
        "\($0)->" + ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) ?? "?")
    }
    .joined(separator: " ")
}

/// Descriptors of this process whose target is `directory` or something in it (what a leaked `opendir` leaves).
func descriptorsReferring(to directory: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return entries.compactMap { entry in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry),
            target == directory || target.hasPrefix(directory + "/")
        else { return nil }
        return entry + "->" + target
    } + inotifyDescriptors(watching: directory).map { "\($0)->inotify" }
}

/// Descriptors of this process that are inotify instances watching the inode of `directory` (from
/// `/proc/self/fdinfo`), so the count is not disturbed by other tests running in parallel.
func inotifyDescriptors(watching directory: String) -> [Int] {
    var status = stat()
    guard lstat(directory, &status) == 0 else { return [] }
    let inode = "ino:" + String(status.st_ino, radix: 16) + " "
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fdinfo")) ?? []
    return descriptors.compactMap { entry in
        guard let info = try? String(contentsOfFile: "/proc/self/fdinfo/" + entry, encoding: .utf8) else { return nil }
        let watches = info.split(separator: "\n").filter { $0.hasPrefix("inotify wd:") && $0.contains(inode) }
        return watches.isEmpty ? nil : Int(entry)
    }
}

/// `count` numbered JSON file names: `<prefix>-00000.json`, …
func names(_ prefix: String, count: Int) -> [String] {
    (0..<count).map { String(format: "%@-%05d.json", prefix, $0) }
}

/// Runs a program (argv, no shell); fails the test with what to install or fix when it cannot.
func runProgram(_ program: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    do {
        try process.run()
    } catch {
        Issue.record("cannot run \(program) (install util-linux's mount/umount): \(error)")
        throw error
    }
    process.waitUntilExit()
    let command = ([program] + arguments).joined(separator: " ")
    try #require(
        process.terminationStatus == 0,
        "\(command) exited with \(process.terminationStatus); this test needs root (CAP_SYS_ADMIN)")
}
