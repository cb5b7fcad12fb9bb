internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// A monolithic pipeline CASA (``PipelineRunner``) unpacks the caltables and flag-versions tarballs itself
/// (`hifa_restoredata`, Python's `tarfile`), with none of the agent's rules. So before such a CASA starts, every
/// tarball among the staged products is unpacked once by the agent's ``SafeArchive`` into a scratch directory
/// of the working area, with the same per-tarball limits the modular side gets (``CASAArchiveLimits``), and
/// removed again: an archive that would escape, carries devices, FIFOs or set-id files, or exceeds the limits is
/// refused with nothing written outside the working area and before CASA runs. Symbolic links are refused as
/// well, as the modular side (`casa_steps.safe_extract`) refuses them: the pipeline's extractor is not confined.
/// Hard links pass only under the one rule both extractors apply (``SafeArchive/extract(_:into:limits:cancelled:)``):
/// to a regular file an earlier entry extracted, no set-id bits, counted against the limits as copies.
enum PipelineArchiveCheck {
    /// Checks each `*.tgz` / `*.tar.gz` / `*.tar` of `limits.archives` found in `products`, in `scratch`
    /// (created and removed here). Blocking: run it inside ``BlockingWork/run(_:)``.
    ///
    /// - Returns: the names of the tarballs checked.
    /// - Throws: ``RestoreError`` with the extractor's code (`unsafeArchiveEntry`, `archiveLimitExceeded`,
    ///   `archiveCorrupt`) naming the tarball, step `casa`.
    @discardableResult
    static func check(products: String, limits: CASAArchiveLimits, scratch: String) throws(RestoreError) -> [String] {
        var checked: [String] = []
        defer { FileSystemSteps.remove(scratch) }
        for name in limits.archives.keys.sorted() {
            let path = products + "/" + name
            guard FileSystemSteps.exists(path) else { continue }
            FileSystemSteps.remove(scratch)
            try FileSystemSteps.createDirectory(scratch)
            let summary: ExtractionSummary
            do {
                summary = try SafeArchive.extract(path, into: scratch, limits: limits.archives[name] ?? limits.limits)
            } catch {
                throw RestoreError(
                    RestoreError.Code(rawValue: error.code.rawValue),
                    "\(name) is refused before the pipeline CASA unpacks it: \(error.message)",
                    hint: error.hint ?? "The calibration products may be damaged or hostile; nothing was unpacked.",
                    step: .casa)
            }
            if summary.symlinks > 0 {
                throw RestoreError(
                    RestoreError.Code(rawValue: DeliveryError.Code.unsafeArchiveEntry.rawValue),
                    "\(name) holds \(summary.symlinks) symbolic link(s): refused before the pipeline CASA unpacks it (its extractor is not confined)",
                    hint: "Caltables and flag versions are plain tables; nothing was unpacked.", step: .casa)
            }
            checked.append(name)
        }
        return checked
    }
}
