internal import Foundation

/// Packages on an HTTP server and the ALMA archive (filled in below).
enum RemotePackage {
    static func plan(_ request: RestoreRequest, directoryURL: String, context: RestoreContext, reporter: any StepReporter) async throws(RestoreError) -> RestorePlan {
        throw RestoreError(.sourceNotConfigured, "TODO")
    }
}
extension RemotePackage {
    static func planFromArchive(_ request: RestoreRequest, context: RestoreContext, reporter: any StepReporter) async throws(RestoreError) -> RestorePlan {
        throw RestoreError(.sourceNotConfigured, "TODO")
    }
}
extension RemotePackage {
    static func archiveFile(for source: AsdmSource) -> ArchiveFile {
        ArchiveFile(ngasFileId: source.path, size: source.size, checksum: nil, checksumVariant: nil)
    }
    static func fetch(_ files: [(ArchiveFile, String, String)], context: RestoreContext, reporter: any StepReporter, label: String) async throws(RestoreError) {
        throw RestoreError(.sourceNotConfigured, "TODO")
    }
}
