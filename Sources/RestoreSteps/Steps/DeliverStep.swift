internal import Logging
internal import Delivery
internal import Foundation

/// What step 6 delivered (`logs/delivery.json`), for the status file and the notification.
public struct DeliveryRecord: Codable, Sendable, Equatable {
    public var deliveryPath: String
    public var url: String
    public var measurementSets: [String]
    public var sizeBytes: Int64
    public var files: Int
}

/// Step 6: checks the measurement sets once more, moves them (with `.flagversions`) into `products/`, and
/// publishes them to the download area — with the PPR, the CASA logs and a manifest of sizes and checksums —
/// atomically, as a directory or one tar. The request turns `succeeded` only after this returns.
public struct DeliverStep: PipelineStep {
    public let name = StepName.deliver
    public init() {}

    public static func recordPath(_ context: RestoreContext) -> String { context.workArea.logs + "/delivery.json" }

    /// The delivery record of a finished step 6, if any.
    public static func record(_ context: RestoreContext) -> DeliveryRecord? {
        FileManager.default.contents(atPath: recordPath(context)).flatMap { try? JSONDecoder().decode(DeliveryRecord.self, from: $0) }
    }

    /// Gives the delivery to the download area's group (files stay group-readable, see ``Publisher``).
    static func changeGroup(of path: String, to group: gid_t) {
        _ = lchown(path, uid_t.max, group)
        guard let e = FileManager.default.enumerator(atPath: path) else { return }
        while let item = e.nextObject() as? String { _ = lchown(path + "/" + item, uid_t.max, group) }
    }

    /// The README delivered with the measurement sets.
    public static let readmeName = "README.txt"

    /// What the delivery holds and how it was made: the MOUS, the measurement sets, the CASA that restored them and
    /// the one that made the calibration tables, with a warning when they differ.
    static func readme(metadata: RestoreMetadata, measurementSets: [String], context: RestoreContext) -> String {
        var lines = [
            "Calibrated measurement sets restored by dropbox-agent \(metadata.agentVersion)",
            "",
            "MOUS:             \(metadata.mous.rawValue)",
            "Project:          \(metadata.project)",
            "Request:          \(context.requestName)" + (context.request.requestId.map { " (id \($0))" } ?? ""),
            "Measurement sets: \(measurementSets.joined(separator: ", "))",
        ]
        if let casa = metadata.casa {
            lines.append("Restored with:    CASA \(casa.version) (installation \(casa.installation), casa.versionPolicy \(casa.policy.rawValue))")
            lines.append("Tables made with: CASA \(casa.manifestVersion ?? "(the pipeline manifest does not say)")")
            if let warning = casa.warning { lines += ["", "WARNING: \(warning)"] }
        }
        lines += [
            "",
            "Also here: the restore's PPR (PPR_*.xml), the CASA logs (casa-*.log, casa-stdout.log), metadata.json (the plan),",
            "and MANIFEST.json (every file with its size and SHA-256).",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        if let done = Self.record(context), FileSystemSteps.exists(done.deliveryPath) { return }
        let metadata = try context.metadata()
        let working = context.workArea.working(metadata.relativePath)
        let products = context.workArea.products(metadata.relativePath)
        var items: [String] = []
        var msNames: [String] = []
        for eb in metadata.plan.execBlocks {
            let ms = eb.asdmDiskName.msName
            for name in [ms, ms + ".flagversions"] {
                let inProducts = products + "/" + name
                if !FileSystemSteps.exists(inProducts) {
                    guard FileSystemSteps.exists(working + "/" + name) else {
                        throw RestoreError(.msMissing, "\(name) is missing from working/ and products/", hint: "CASA's log in \(context.workArea.logs) says why.")
                    }
                    try FileSystemSteps.move(working + "/" + name, to: inProducts)
                }
                items.append(inProducts)
            }
            guard let columns = MeasurementSetColumns.columns(ofTableAt: products + "/" + ms), columns.contains("CORRECTED_DATA") else {
                throw RestoreError(.msNotCalibrated, "\(ms) has no CORRECTED_DATA column: it was not calibrated", hint: "See CASA's log in \(working).")
            }
            msNames.append(ms)
        }
        let ppr = PPRStep.path(context, metadata)
        if FileSystemSteps.exists(ppr) { items.append(ppr) }
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: working)) ?? []).filter { $0.hasPrefix("casa-") && $0.hasSuffix(".log") }.sorted()
        items += logs.map { working + "/" + $0 }
        if FileSystemSteps.exists(context.workArea.logs + "/casa-stdout.log") { items.append(context.workArea.logs + "/casa-stdout.log") }
        items.append(context.workArea.metadataFile)
        let readme = context.workArea.logs + "/" + Self.readmeName
        try FileSystemSteps.writeAtomically(Data(Self.readme(metadata: metadata, measurementSets: msNames, context: context).utf8), to: readme)
        items.append(readme)

        reporter.report(StepProgress(message: "publishing \(msNames.count) measurement sets"))
        try reporter.confirmOwnership()  // fencing: never publish for an attempt another agent has taken over
        try FileSystemSteps.createDirectory(context.services.downloadDirectory)
        let format: PublishFormat = context.request.deliveryFormat == .tar ? .tar : .directory
        let area = context.services.downloadDirectory
        let restoreId = context.restoreId
        let group = context.services.deliveryGroup
        let publishItems = items
        // Hashing and fsyncing every delivered byte takes minutes on real data: on a thread of its own, stopped
        // between 1 MiB blocks by cancellation (the staging directory is removed; nothing is half-published).
        let published = try await BlockingWork.run { (_) throws(RestoreError) -> PublishedResult in
            let published: PublishedResult
            do throws(DeliveryError) {
                published = try Publisher.publish(publishItems, to: area, name: restoreId, format: format)
            } catch {
                throw RestoreError(RestoreError.Code(rawValue: error.code.rawValue), "delivery to \(area) failed: \(error.message)", hint: error.hint ?? "Check free space and permissions of the download area.", isTransient: error.code != .cancelled)
            }
            if let group { Self.changeGroup(of: published.path, to: group) }
            return published
        }
        let leaf = (published.path as NSString).lastPathComponent
        let url = context.services.downloadBaseURL.map { $0.hasSuffix("/") ? $0 + leaf : $0 + "/" + leaf } ?? URL(fileURLWithPath: published.path).absoluteString
        let record = DeliveryRecord(deliveryPath: published.path, url: url, measurementSets: msNames, sizeBytes: published.totalBytes, files: published.files.count)
        try FileSystemSteps.writeAtomically(try JSONEncoder().encode(record), to: Self.recordPath(context))
        context.logger.info("delivered", metadata: ["path": "\(published.path)", "size.bytes": .stringConvertible(published.totalBytes), "url": "\(url)"])
        reporter.report(StepProgress(fraction: 1, message: "delivered to \(published.path)"))
    }
}
