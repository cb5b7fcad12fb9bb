internal import Logging
internal import Delivery
internal import Foundation

/// Fetches archive files through the shared cache (hard links into the working area), several at once,
/// with one aggregate progress report.
enum ArchiveFetch {
    /// One file to fetch and where it goes.
    struct Item: Sendable {
        var file: ArchiveFile
        var destination: String
    }

    static func expected(_ file: ArchiveFile) -> ExpectedFile {
        ExpectedFile(
            fileId: file.ngasFileId, size: file.size, checksum: file.checksum,
            checksumVariant: file.checksumVariant.flatMap { Delivery.ChecksumVariant(rawValue: $0.rawValue) })
    }

    /// Fetches every item not already present (a present file was verified when it was placed there).
    /// - Returns: bytes that crossed the network (0 when everything came from the cache).
    static func fetch(_ items: [Item], context: RestoreContext, reporter: any StepReporter, label: String) async throws -> Int64 {
        let services = context.services
        let total = items.reduce(Int64(0)) { $0 + $1.file.size }
        let progress = AggregateProgress(total: total, reporter: reporter, label: label)
        for item in items where FileSystemSteps.exists(item.destination) { progress.completed(item.file.ngasFileId, bytes: item.file.size) }
        let pending = items.filter { !FileSystemSteps.exists($0.destination) }
        var transferred: Int64 = 0
        try await withThrowingTaskGroup(of: RetrievedFile.self) { group in
            var iterator = pending.makeIterator()
            func addNext() -> Bool {
                guard let item = iterator.next() else { return false }
                group.addTask {
                    let handler: ProgressHandler = { done, _ in progress.update(item.file.ngasFileId, bytes: done) }
                    do {
                        let result: RetrievedFile
                        if let cache = services.cache {
                            result = try await cache.retrieve(expected(item.file), from: services.store, to: item.destination, progress: handler)
                        } else {
                            result = try await services.store.retrieve(expected(item.file), to: item.destination, progress: handler)
                        }
                        progress.completed(item.file.ngasFileId, bytes: item.file.size)
                        return result
                    } catch let error as DeliveryError {
                        throw restoreError(error, fileId: item.file.ngasFileId, store: services.store.description)
                    }
                }
                return true
            }
            for _ in 0..<max(1, services.parallelTransfers) where !addNext() { break }
            while let result = try await group.next() {
                transferred += result.bytesTransferred
                context.logger.info("file retrieved", metadata: [
                    "file.id": "\(result.fileId)", "bytes": "\(result.size)", "transferred": "\(result.bytesTransferred)",
                    "from.cache": "\(result.fromCache)",
                ])
                _ = addNext()
            }
        }
        return transferred
    }

    /// Maps the transport layer's error to a restore error that keeps its code, message and hint.
    static func restoreError(_ error: DeliveryError, fileId: String, store: String) -> RestoreError {
        let code = RestoreError.Code(rawValue: error.code.rawValue)
        let transient = error.code == .transferFailed
        return RestoreError(
            code, error.message.contains(fileId) ? error.message : "\(fileId) from \(store): \(error.message)",
            hint: error.hint ?? "The archive store may be unavailable; the request can be dropped again later.",
            isTransient: transient)
    }
}

/// Sums per-file progress into one report for the step.
final class AggregateProgress: Sendable {
    private let total: Int64
    private let reporter: any StepReporter
    private let label: String
    private let perFile = NSLockedDictionary()

    init(total: Int64, reporter: any StepReporter, label: String) {
        self.total = total
        self.reporter = reporter
        self.label = label
    }

    func update(_ id: String, bytes: Int64) { report(perFile.set(id, bytes)) }
    func completed(_ id: String, bytes: Int64) { report(perFile.set(id, bytes)) }

    private func report(_ done: Int64) {
        reporter.report(StepProgress(bytesDone: min(done, total), bytesTotal: total, message: label))
    }
}

/// A dictionary of byte counts behind a lock; returns the new sum on every change.
final class NSLockedDictionary: @unchecked Sendable {  // unchecked: `values` is only touched under `lock`.
    private let lock = NSLock()
    private var values: [String: Int64] = [:]
    func set(_ key: String, _ value: Int64) -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        values[key] = max(values[key] ?? 0, value)
        return values.values.reduce(0, +)
    }
}
