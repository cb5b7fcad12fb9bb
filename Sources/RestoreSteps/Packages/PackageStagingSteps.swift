internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Logging

/// Steps 2 and 3 for a restore from a download package: ASDMs into `rawdata/`, products into `products/`.
enum PackageStagingSteps {
    /// Puts each EB's ASDM at `rawdata/<AsdmDiskName>`: an untarred package directory is linked (the package
    /// is read-only input, as scriptForPI links `rawdata/<uid>` to `../../raw/<uid>.asdm.sdm`, and an ASDM can
    /// be hundreds of GB); a local tar is unpacked; a tar on a server is fetched through the cache, then unpacked.
    static func stageAsdms(
        _ ebs: [RestorePlan.ExecBlock], package: PackageStaging, rawdata: String, context: RestoreContext,
        reporter: any StepReporter
    ) async throws(RestoreError) {
        let limits = context.services.archiveLimits
        var remote: [(RestorePlan.ExecBlock, AsdmSource)] = []
        for (index, eb) in ebs.enumerated() {
            try checkCancellation()
            let name = eb.asdmDiskName.rawValue
            guard let source = package.asdms[name] else {
                throw RestoreError(
                    .missingAsdmFile, "the plan has no raw data source for \(name)",
                    hint: "Remove the working area and drop the request again.")
            }
            reporter.report(
                StepProgress(
                    fraction: Double(index) / Double(max(1, ebs.count)),
                    message: "raw data of \(eb.uid) from the package"))
            switch source.kind {
            case .directory:
                try await BlockingWork.run { (_) throws(RestoreError) in
                    guard FileSystemSteps.isDirectory(source.path) else {
                        throw RestoreError(
                            .missingAsdmFile, "the package's ASDM directory \(source.path) has gone",
                            hint: "Keep the package in place until the restore has finished.")
                    }
                    let link = rawdata + "/" + name
                    FileSystemSteps.remove(link)
                    guard symlink(source.path, link) == 0 else {
                        throw RestoreError(
                            .workingAreaUnwritable,
                            "cannot link \(link) to \(source.path): \(String(cString: strerror(errno)))")
                    }
                }
            case .tar:
                // A raw tar of the package holds one ASDM, which barely compresses (as in the catalogue case).
                let expected = limits.expecting(source.size > 0 ? source.size : nil)
                try await BlockingWork.run { (_) throws(RestoreError) in
                    try RawdataStep.unpack(source.path, as: name, into: rawdata, limits: expected)
                }
            case .remoteTar:
                remote.append((eb, source))
            }
        }
        guard !remote.isEmpty else { return }
        let downloads = context.workArea.downloads
        try await RemotePackage.fetch(
            remote.map { _, source in
                (RemotePackage.archiveFile(for: source), downloads + "/" + source.path, source.url ?? "")
            },
            context: context, reporter: reporter, label: "raw data (\(remote.count) ASDM tars)")
        for (eb, source) in remote {
            try checkCancellation()
            let path = downloads + "/" + source.path
            let expected = limits.expecting(source.size > 0 ? source.size : nil)
            try await BlockingWork.run { (_) throws(RestoreError) in
                try RawdataStep.unpack(path, as: eb.asdmDiskName.rawValue, into: rawdata, limits: expected)
                FileSystemSteps.remove(path)  // the cache keeps its own copy
            }
        }
    }

    /// Copies each product the manifest names from the package into `products/` under the manifest's name
    /// (temporary name, then rename: a present file is complete, so a resumed step skips it). Each file is copied
    /// in chunks (``ChunkedCopy``) that check the cancellation flag, so cancelling stops inside a large file too;
    /// the partial temporary is removed.
    static func stageProducts(
        _ package: PackageStaging, into products: String, reporter: any StepReporter,
        chunkBytes: Int = ChunkedCopy.defaultChunkBytes
    ) async throws(RestoreError) {
        let total = package.products.reduce(Int64(0)) { $0 + $1.size }
        let count = package.products.count
        var done: Int64 = 0
        for product in package.products {
            try checkCancellation()
            let destination = products + "/" + product.name
            if !FileSystemSteps.exists(destination) {
                let before = done
                try await BlockingWork.run { (flag) throws(RestoreError) in
                    let temporary = products + "/.staging-" + product.name
                    FileSystemSteps.remove(temporary)
                    do throws(DeliveryError) {
                        try ChunkedCopy.copy(product.source, to: temporary, cancelled: flag, chunkBytes: chunkBytes) {
                            copied, _ in
                            reporter.report(
                                StepProgress(
                                    bytesDone: before + copied, bytesTotal: total,
                                    message: "calibration products from the package (\(count) files)"))
                        }
                    } catch {
                        FileSystemSteps.remove(temporary)
                        if error.code == .cancelled {
                            throw RestoreError(.cancelled, "cancelled while copying \(product.source)")
                        }
                        throw RestoreError(
                            .manifestFileMissing, "cannot copy \(product.source) from the package: \(error.message)",
                            hint: "Keep the package in place and readable until the restore has finished.")
                    }
                    try FileSystemSteps.move(temporary, to: destination)
                }
            }
            done += product.size
            reporter.report(
                StepProgress(
                    bytesDone: done, bytesTotal: total,
                    message: "calibration products from the package (\(count) files)"))
        }
    }

    private static func checkCancellation() throws(RestoreError) {
        if Task.isCancelled { throw RestoreError(.cancelled, "cancelled") }
    }
}
