internal import Logging
internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Fetches archive files through the shared cache (hard links into the working area), several at once,
/// with one aggregate progress report.
enum ArchiveFetch {
    /// One file to fetch and where it goes.
    struct Item: Sendable {
        var file: ArchiveFile
        var destination: String
        /// False for a file whose size nobody stated (an HTML directory listing): it is checked against the
        /// server's Content-Length only, and bypasses the cache (whose key could not tell two versions apart).
        var sizeKnown = true
    }

    static func expected(_ file: ArchiveFile, sizeKnown: Bool = true) -> ExpectedFile {
        ExpectedFile(
            fileId: file.ngasFileId, size: sizeKnown ? file.size : nil, checksum: file.checksum,
            checksumVariant: file.checksumVariant.flatMap { Delivery.ChecksumVariant(rawValue: $0.rawValue) })
    }

    /// Fetches every item not already present (a present file was verified when it was placed there), with
    /// Delivery's ``Transfers`` (bounded parallelism, one aggregate progress) through the cache when there is one.
    /// - Returns: bytes that crossed the network (0 when everything came from the cache).
    /// - Parameter store: where to fetch from (default: the site's archive store).
    static func fetch(
        _ items: [Item], context: RestoreContext, reporter: any StepReporter, label: String,
        store: (any ArchiveStore)? = nil
    ) async throws -> Int64 {
        let services = context.services
        let source = store ?? services.store
        let unsized = Set(items.filter { !$0.sizeKnown }.map(\.destination))
        let total = items.reduce(Int64(0)) { $0 + $1.file.size }
        let pending = items.filter { !FileSystemSteps.exists($0.destination) }
        let present = total - pending.reduce(Int64(0)) { $0 + $1.file.size }
        let report: ProgressHandler = { done, _ in
            reporter.report(StepProgress(bytesDone: min(present + done, total), bytesTotal: total, message: label))
        }
        report(0, nil)
        let results = try await Transfers.retrieveAll(
            pending.map { (expected($0.file, sizeKnown: $0.sizeKnown), destination: $0.destination) },
            parallelism: max(1, services.parallelTransfers), progress: report
        ) { file, destination, progress in
            do {
                if let cache = services.cache, !unsized.contains(destination) {
                    return try await cache.retrieve(file, from: source, to: destination, progress: progress)
                }
                return try await source.retrieve(file, to: destination, progress: progress)
            } catch let error as DeliveryError {
                throw restoreError(error, fileId: file.fileId, store: source.description)
            }
        }
        for result in results {
            context.logger.info(
                "file retrieved",
                metadata: [
                    "file.id": "\(result.fileId)", "size.bytes": .stringConvertible(result.size),
                    "transferred.bytes": .stringConvertible(result.bytesTransferred),
                    "from.cache": .stringConvertible(result.fromCache),
                ])
        }
        return results.reduce(0) { $0 + $1.bytesTransferred }
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
