internal import Logging
internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Step 6: checks the measurement sets once more, moves them (with `.flagversions`) into `products/`, and
/// publishes them to the download area — with the PPR, the CASA logs, a README for the astronomer, a URL list and a
/// manifest of sizes and checksums — atomically, as a directory or one tar, under a random name (128 bits) that only
/// the status file and the mail reveal. The request turns `succeeded` only after this returns.
public struct DeliverStep: PipelineStep {
    public let name = StepName.deliver
    public init() {}

    public static func recordPath(_ context: RestoreContext) -> String { context.workArea.logs + "/delivery.json" }

    /// The delivery record of a step 6 finished in an earlier run (its checkpoint, `logs/delivery.json`), if any: read
    /// by the step itself when it runs again, and by the agent only when a restart found step 6 already completed.
    public static func record(_ context: RestoreContext) -> DeliveryRecord? {
        FileManager.default.contents(atPath: recordPath(context)).flatMap {
            try? JSONDecoder().decode(DeliveryRecord.self, from: $0)
        }
    }

    /// Gives the delivery to the download area's group.
    static func changeGroup(of path: String, to group: gid_t) {
        _ = lchown(path, uid_t.max, group)
        for item in (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? [] {
            _ = lchown(path + "/" + item, uid_t.max, group)
        }
    }

    /// The README delivered with the measurement sets.
    public static let readmeName = "README.txt"

    /// The delivery's random name, chosen once per restore and kept in `logs/delivery-name` so that a resumed step
    /// publishes under the same name.
    static func deliveryName(_ context: RestoreContext) throws(RestoreError) -> String {
        let path = context.workArea.logs + "/delivery-name"
        if let data = FileManager.default.contents(atPath: path),
            case let name = String(decoding: data, as: UTF8.self).trimmingWhitespaceAndNewlines(),
            DeliveryName.isValid(name)
        {
            return name
        }
        let name = DeliveryName.random()
        try FileSystemSteps.writeAtomically(Data((name + "\n").utf8), to: path)
        return name
    }

    /// The download area: created not listable by others (0711: a web server may reach a delivery whose name it is
    /// given, never list them).
    static func prepareArea(_ area: String) throws(RestoreError) {
        if !FileSystemSteps.exists(area) {
            try FileSystemSteps.createDirectory(area)
            chmod(area, 0o711)
        }
    }

    static func timestamp(_ date: Date) -> String {
        CivilTime(secondsSince1970: date.timeIntervalSince1970).iso8601Seconds
    }

    /// What each delivered item is, for the README.
    static func describe(
        _ msNames: [String], calibrated: Bool, derived: [DerivationReport.Product],
        average: RestoreRequest.DeliveryAverage?
    )
        -> [(name: String, what: String)]
    {
        var out: [(name: String, what: String)] = []
        if calibrated {
            for ms in msNames {
                out.append(
                    (
                        ms,
                        "the calibrated measurement set: DATA (raw) and CORRECTED_DATA (calibrated), every spectral window and field"
                    ))
                out.append((ms + ".flagversions", "its flag versions (flagmanager)"))
            }
        }
        let averaged =
            average.map { a in
                " Averaged: "
                    + [a.time.map { "time \($0)" }, a.channels.map { "\($0) channels" }].compactMap { $0 }.joined(
                        separator: ", ") + "."
            } ?? ""
        for p in derived {
            let what: String
            switch p.kind {
            case "science":
                what =
                    "science spectral windows \(p.spws.map(String.init).joined(separator: ",")), all fields; calibrated data in DATA (scriptForPI's split)"
            case "targets":
                what =
                    "science targets (\(p.fields.joined(separator: ", "))), science spectral windows; calibrated data in DATA"
            default:
                what =
                    "science targets (\(p.fields.joined(separator: ", "))) with the continuum subtracted (uvcontsub on the pipeline's cont.dat line-free ranges, fit order 1); DATA"
            }
            out.append((p.name, what + " — \(p.rows) rows, checked against the restored MS." + averaged))
        }
        return out
    }

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        if let done = Self.record(context), FileSystemSteps.exists(done.deliveryPath) {
            context.delivered.set(done)
            return
        }
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
                        throw RestoreError(
                            .msMissing, "\(name) is missing from working/ and products/",
                            hint: "CASA's log in \(context.workArea.logs) says why.")
                    }
                    try FileSystemSteps.move(working + "/" + name, to: inProducts)
                }
                items.append(inProducts)
            }
            guard let columns = MeasurementSetColumns.columns(ofTableAt: products + "/" + ms),
                columns.contains("CORRECTED_DATA")
            else {
                throw RestoreError(
                    .msNotCalibrated, "\(ms) has no CORRECTED_DATA column: it was not calibrated",
                    hint: "See CASA's log in \(working).")
            }
            msNames.append(ms)
        }
        let ppr = PPRStep.path(context, metadata)
        if FileSystemSteps.exists(ppr) { items.append(ppr) }
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: working)) ?? []).filter {
            $0.hasPrefix("casa-") && $0.hasSuffix(".log")
        }.sorted()
        items += logs.map { working + "/" + $0 }
        if FileSystemSteps.exists(context.workArea.logs + "/casa-stdout.log") {
            items.append(context.workArea.logs + "/casa-stdout.log")
        }
        items.append(context.workArea.metadataFile)
        let content = context.request.content
        // `average` without derived content never gets here: the request parser refuses it at intake and in
        // `validate` ($.delivery.average). Averaging applies to the derived products only.
        // Derived products and quick-look plots, by real CASA tasks, each product checked against the restored MS.
        reporter.report(StepProgress(fraction: 0, message: "deriving products and quick-look plots"))
        let derivedDirectory = context.workArea.root + "/derived"
        // A reused restore brings the plots of its measurement sets: nothing for CASA to do unless products are asked for.
        let reusedPlots = context.workArea.root + "/reused/plots"
        let cachedPlots = ((try? FileManager.default.contentsOfDirectory(atPath: reusedPlots)) ?? []).filter {
            $0.hasSuffix(".png")
        }.sorted()
        // While CASA draws the plots (and derives products), the measurement sets, PPR and logs about to be
        // published are hashed and made durable: an fdatasync per file after the plots was most of the agent's own
        // time in a delivery (bench/overhead.py). Publishing skips both for the files provably unchanged since
        // (DurableFiles says why that is safe) and does them for any other.
        let flushTargets = items
        async let flushedAhead = BlockingWork.run { flag in FlushAhead.flush(flushTargets, cancelled: flag) }
        let report: DerivationReport
        if content == [.calibrated], !cachedPlots.isEmpty {
            report = DerivationReport(products: [], plots: cachedPlots, casa: nil, error: nil)
        } else {
            do {
                report = try await ProductDerivation.run(
                    context: context, metadata: metadata, measurementSets: msNames.map { products + "/" + $0 },
                    content: content,
                    average: context.request.deliveryAverage, contdat: ProductDerivation.contDat(products: products),
                    directory: derivedDirectory, reporter: ScaledReporter(base: reporter, start: 0, end: 0.8))
            } catch let error as RestoreError where content == [.calibrated] && error.code != .cancelled {
                // Only quick-look plots were to be made: a site with the pipeline's CASA alone (no modular CASA for
                // the plots) or a plotting failure must not withhold measurement sets CASA restored and the checks
                // above accepted. The delivery goes out without plots; the reason is logged.
                context.logger.warning(
                    "quick-look plots not made; delivering without them",
                    metadata: ["error.code": "\(error.code.rawValue)", "error": "\(error.message)"])
                FileSystemSteps.remove(derivedDirectory)
                report = DerivationReport(products: [], plots: [], casa: nil, error: nil)
            }
        }
        let durable = await flushedAhead
        if !content.contains(.calibrated) {
            let full = Set(msNames.flatMap { [products + "/" + $0, products + "/" + $0 + ".flagversions"] })
            items.removeAll { full.contains($0) }
        }
        items = report.products.map { derivedDirectory + "/products/" + $0.name } + items
        let plotItems = report.plots.isEmpty ? [] : [report.casa == nil ? reusedPlots : derivedDirectory + "/plots"]
        let plots = report.plots.map { "plots/" + $0 }
        let services = context.services
        let name = try Self.deliveryName(context)
        let area = services.downloadDirectory
        let format: PublishFormat =
            context.request.deliveryFormat == .tar ? .tar : (context.request.deliveryFormat == .tgz ? .tgz : .directory)
        let archiveBase = metadata.mous.rawValue.replacingAll("://", with: "___").replacingAll(
            "/", with: "_")
        let singleFile = format == .directory ? nil : archiveBase + (format == .tgz ? ".tgz" : ".tar")
        let links = DeliveryLinks(
            baseURL: services.downloadBaseURL, name: name, path: area + "/" + name, singleFile: singleFile,
            folder: archiveBase)
        let deliveredAt = Date()
        let expiresAt = services.deliveryRetention.map { Self.timestamp(deliveredAt.addingTimeInterval($0)) }
        let sessions = Dictionary(
            metadata.sessions.flatMap { s in s.execBlocks.map { ($0, s.name) } }, uniquingKeysWith: { a, _ in a })
        let readme = DeliveryReadme(
            mous: metadata.mous.rawValue, project: metadata.project,
            execBlocks: metadata.plan.execBlocks.map { eb in
                eb.uid.rawValue + (sessions[eb.uid].map { " (\($0))" } ?? "")
            },
            requestName: context.requestName, requestId: context.request.requestId, agentVersion: metadata.agentVersion,
            restoredWith: metadata.casa?.version, tablesMadeWith: metadata.casa?.manifestVersion,
            warning: metadata.casa?.warning,
            products: format == .directory
                ? Self.describe(
                    msNames, calibrated: content.contains(.calibrated), derived: report.products,
                    average: context.request.deliveryAverage)
                : [
                    (
                        singleFile!,
                        "a \(format == .tgz ? "gzip-compressed " : "")tar of: "
                            + Self.describe(
                                msNames, calibrated: content.contains(.calibrated), derived: report.products,
                                average: context.request.deliveryAverage
                            ).map(\.name).joined(separator: ", ")
                            + ", the PPR and the CASA logs"
                    )
                ],
            plots: plots, links: links, expiresAt: expiresAt, files: [])

        reporter.report(StepProgress(fraction: 0.8, message: "publishing \(items.count) items"))
        try reporter.confirmOwnership()  // fencing: never publish for an attempt another agent has taken over
        try Self.prepareArea(area)
        let restoreId = context.restoreId
        let group = services.deliveryGroup
        let modes = PublishModes(directory: services.deliveryDirectoryMode, file: services.deliveryFileMode)
        let publishItems = items
        let final = area + "/" + name
        // Hashing and fsyncing every delivered byte takes minutes on real data: on a thread of its own, stopped
        // between 1 MiB blocks by cancellation (the staging directory is removed; nothing is half-published).
        let published = try await BlockingWork.run { (_) throws(RestoreError) -> PublishedResult in
            // A resumed step whose publication was completed (the agent stopped before recording it): keep it.
            if let done = Self.existingPublication(final) { return done }
            let published: PublishedResult
            do throws(DeliveryError) {
                published = try Publisher.publish(
                    publishItems, to: area, name: name, format: format, modes: modes, stagingTag: restoreId,
                    generated: { files in
                        var text = readme
                        text.files = files.map {
                            DeliveryReadme.File(path: $0.relativePath, size: $0.size, sha256: $0.sha256)
                        }
                        var out = [GeneratedFile(name: Self.readmeName, data: Array(text.text.utf8))]
                        if singleFile == nil, links.downloadCommand != nil {
                            let paths = files.map(\.relativePath) + [Self.readmeName, Publisher.manifestName]
                            out.append(
                                GeneratedFile(name: DeliveryLinks.urlListName, data: Array(links.urlList(paths).utf8)))
                        }
                        return out
                    }, archiveName: archiveBase, outside: plotItems, durable: durable)
            } catch {
                throw RestoreError(
                    RestoreError.Code(rawValue: error.code.rawValue), "delivery to \(area) failed: \(error.message)",
                    hint: error.hint ?? "Check free space and permissions of the download area.",
                    isTransient: error.code != .cancelled)
            }
            if let group { Self.changeGroup(of: published.path, to: group) }
            return published
        }
        let url = links.url
        let record = DeliveryRecord(
            deliveryPath: published.path, url: url, measurementSets: msNames, sizeBytes: published.totalBytes,
            files: published.files.count,
            name: name, deliveredAt: Self.timestamp(deliveredAt), expiresAt: expiresAt,
            downloadCommand: links.downloadCommand,
            products: singleFile.map { [$0] }
                ?? (report.products.map(\.name) + (content.contains(.calibrated) ? msNames : [])),
            plots: plots)
        try FileSystemSteps.writeAtomically(try JSONEncoder().encode(record), to: Self.recordPath(context))
        context.delivered.set(record)
        context.logger.info(
            "delivered",
            metadata: [
                "path": "\(published.path)", "size.bytes": .stringConvertible(published.totalBytes), "url": "\(url)",
                "files": .stringConvertible(published.files.count),
                "files.flushedAhead": .stringConvertible(published.filesFlushedAhead ?? 0),
            ])
        reporter.report(StepProgress(fraction: 1, message: "delivered to \(published.path)"))
    }

    /// A whole publication already under `path` (its manifest is written last, before the final rename).
    static func existingPublication(_ path: String) -> PublishedResult? {
        struct Manifest: Decodable {
            var totalBytes: Int64
            var files: [PublishedFile]
        }
        guard let data = FileManager.default.contents(atPath: path + "/" + Publisher.manifestName),
            let manifest = try? JSONDecoder().decode(Manifest.self, from: data)
        else { return nil }
        return PublishedResult(path: path, files: manifest.files, totalBytes: manifest.totalBytes)
    }
}
