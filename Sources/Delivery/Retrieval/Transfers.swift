internal import Synchronization

/// Retrieving many files at once with bounded parallelism and one aggregate progress.
public enum Transfers {
    /// How one file is retrieved: `(file, destination, progress) -> RetrievedFile`.
    public typealias Retrieval =
        @Sendable (ExpectedFile, String, @escaping ProgressHandler) async throws -> RetrievedFile

    /// Retrieves all `files`, at most `parallelism` at a time, through `retrieve`.
    ///
    /// The first failure cancels the remaining transfers and is rethrown.
    /// - Parameters:
    ///   - files: each file with its destination path.
    ///   - parallelism: concurrent transfers (at least 1).
    ///   - progress: bytes done over all files, and the total if every file's size is known.
    ///   - retrieve: how to fetch one file.
    /// - Returns: the retrieved files, in the order of `files`.
    public static func retrieveAll(
        _ files: [(ExpectedFile, destination: String)], parallelism: Int = 2,
        progress: @escaping ProgressHandler = { _, _ in }, using retrieve: @escaping Retrieval
    ) async throws -> [RetrievedFile] {
        let sizes = files.map(\.0.size)
        let total: Int64? = sizes.contains(nil) ? nil : sizes.reduce(0) { $0 + ($1 ?? 0) }
        let aggregate = ProgressAggregate(count: files.count, total: total, report: progress)
        var results = [RetrievedFile?](repeating: nil, count: files.count)
        try await withThrowingTaskGroup(of: (Int, RetrievedFile).self) { group in
            var next = 0
            func startNext() {
                guard next < files.count else { return }
                let index = next
                let (file, destination) = files[index]
                group.addTask {
                    let result = try await retrieve(file, destination) { done, _ in aggregate.update(index, done) }
                    aggregate.update(index, result.size)
                    return (index, result)
                }
                next += 1
            }
            for _ in 0..<max(1, parallelism) { startNext() }
            while let (index, result) = try await group.next() {
                results[index] = result
                startNext()
            }
        }
        let retrieved = results.compactMap { $0 }
        guard retrieved.count == files.count else {
            throw DeliveryError(.transferFailed, "a batch transfer ended without all results")
        }
        return retrieved
    }

    /// Retrieves all `files` from `store`; see ``retrieveAll(_:parallelism:progress:using:)``.
    public static func retrieveAll(
        _ files: [(ExpectedFile, destination: String)], from store: any ArchiveStore, parallelism: Int = 2,
        progress: @escaping ProgressHandler = { _, _ in }
    ) async throws -> [RetrievedFile] {
        try await retrieveAll(files, parallelism: parallelism, progress: progress) { file, destination, progress in
            try await store.retrieve(file, to: destination, progress: progress)
        }
    }

    /// Retrieves all `files` through `cache` in front of `store`; see ``retrieveAll(_:parallelism:progress:using:)``.
    public static func retrieveAll(
        _ files: [(ExpectedFile, destination: String)], from store: any ArchiveStore, through cache: FileCache,
        parallelism: Int = 2, progress: @escaping ProgressHandler = { _, _ in }
    ) async throws -> [RetrievedFile] {
        try await retrieveAll(files, parallelism: parallelism, progress: progress) { file, destination, progress in
            try await cache.retrieve(file, from: store, to: destination, progress: progress)
        }
    }
}

/// Sums per-file progress into one figure.
final class ProgressAggregate: Sendable {
    private let done: Mutex<[Int64]>
    private let total: Int64?
    private let report: ProgressHandler

    init(count: Int, total: Int64?, report: @escaping ProgressHandler) {
        self.done = Mutex([Int64](repeating: 0, count: count))
        self.total = total
        self.report = report
    }

    func update(_ index: Int, _ bytes: Int64) {
        let sum = done.withLock { values in
            values[index] = bytes
            return values.reduce(0, +)
        }
        report(sum, total)
    }
}
