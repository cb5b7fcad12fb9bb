internal import Logging
internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Subprocess
internal import SystemPackage

/// Step 2: the raw ASDM of every QA0-Pass execution block in `rawdata/<AsdmDiskName>`.
///
/// Each ASDM comes from the archive store as one tarball (through the cache, verified by size and CRC while
/// streaming, since libarchive does not check the gzip CRC), is unpacked safely into a hidden directory and
/// renamed into place only when complete — so `rawdata/<AsdmDiskName>` existing means complete, and a resumed
/// step skips it. Sites with an asdmExportLight-compatible exporter configure `rawdataCommand` instead.
///
/// Before the first raw byte (fail before fetching gigabytes): the small calibration and script products were
/// fetched and cross-checked in step 1 (``PrepareStep``), and here the disk space is checked (``DiskSpaceCheck``).
public struct RawdataStep: PipelineStep {
    public let name = StepName.rawdata
    public init() {}

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let metadata = try context.metadata()
        let rawdata = context.workArea.rawdata(metadata.relativePath)
        let missing = metadata.plan.execBlocks.filter {
            !FileSystemSteps.isDirectory(rawdata + "/" + $0.asdmDiskName.rawValue)
        }
        if missing.isEmpty {
            reporter.report(StepProgress(fraction: 1, message: "all \(metadata.plan.execBlocks.count) ASDMs present"))
            return
        }
        try DiskSpaceCheck.check(
            rawBytes: missing.reduce(0) { $0 + $1.asdm.size }, factor: context.services.diskSpaceFactor,
            path: context.workArea.root)
        if let package = metadata.plan.package {
            try await PackageStagingSteps.stageAsdms(
                missing, package: package, rawdata: rawdata, context: context, reporter: reporter)
            reporter.report(StepProgress(fraction: 1, message: "\(metadata.plan.execBlocks.count) ASDMs in rawdata/"))
            return
        }
        if let command = context.services.rawdataCommand {
            try await export(missing, command: command, rawdata: rawdata, context: context, reporter: reporter)
            return
        }
        let downloads = context.workArea.downloads
        let items = missing.map { ArchiveFetch.Item(file: $0.asdm, destination: downloads + "/" + $0.asdm.ngasFileId) }
        _ = try await ArchiveFetch.fetch(
            items, context: context, reporter: reporter, label: "raw data (\(missing.count) ASDMs)")
        let limits = context.services.archiveLimits
        for eb in missing {
            try Task.checkCancellation()
            let tarball = downloads + "/" + eb.asdm.ngasFileId
            // The catalogue knows the ASDM tarball's size, and ASDM tarballs (XML tables and BDF binary data)
            // barely compress: more than twice that (plus 64 MiB) is not this ASDM.
            let expected = limits.expecting(eb.asdm.size)
            try await BlockingWork.run { (_) throws(RestoreError) in
                try Self.unpack(tarball, as: eb.asdmDiskName.rawValue, into: rawdata, limits: expected)
                FileSystemSteps.remove(tarball)  // the cache keeps its own copy
            }
        }
        reporter.report(StepProgress(fraction: 1, message: "\(metadata.plan.execBlocks.count) ASDMs in rawdata/"))
    }

    /// Unpacks an ASDM tarball into `rawdata/<name>`. The tarball may hold the ASDM as `name/`, as the
    /// archive's `name.asdm.sdm/`, or inside a download package's member tree (`…/member.uid___…/raw/name.asdm.sdm/`).
    /// Blocking: call it inside ``BlockingWork/run(_:)``, whose flag stops the extraction between blocks (the
    /// hidden staging directory is removed, so a resumed step starts the ASDM again).
    static func unpack(
        _ tarball: String, as name: String, into rawdata: String, limits: ArchiveLimits
    ) throws(RestoreError) {
        let staging = rawdata + "/.unpack-" + name
        FileSystemSteps.remove(staging)
        try FileSystemSteps.createDirectory(staging)
        defer { FileSystemSteps.remove(staging) }
        do { _ = try SafeArchive.extract(tarball, into: staging, limits: limits) } catch {
            throw RestoreError(
                RestoreError.Code(rawValue: error.code.rawValue),
                "cannot unpack the ASDM \(name) from \(PathString.lastComponent(tarball)): \(error.message)",
                hint: error.hint)
        }
        guard let found = locateAsdm(name, in: staging) else {
            let top = ((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []).filter {
                !$0.hasPrefix(".")
            }
            throw RestoreError(
                .asdmLayout,
                "the ASDM archive for \(name) holds \(top.prefix(5).joined(separator: ", ")) but no directory \(name) or \(name).asdm.sdm",
                hint:
                    "An ASDM tarball must unpack to \(name)/, \(name).asdm.sdm/, or the archive's member tree with raw/\(name).asdm.sdm/."
            )
        }
        try FileSystemSteps.move(found, to: rawdata + "/" + name)
    }

    /// The ASDM directory `name` or `name.asdm.sdm` in an unpacked tree: at the top, or (the archive's layout)
    /// under a `raw/` folder at most five levels down. Exactly one must exist.
    static func locateAsdm(_ name: String, in root: String) -> String? {
        var found: [String] = []
        func visit(_ directory: String, depth: Int) {
            for entry in PackageReader.listing(directory) where entry.isDirectory {
                let path = directory + "/" + entry.name
                if entry.name == name || entry.name == name + ".asdm.sdm" {
                    if depth == 0 || PathString.lastComponent(directory) == "raw" { found.append(path) }
                } else if depth < 5 {
                    visit(path, depth: depth + 1)
                }
            }
        }
        visit(root, depth: 0)
        return found.count == 1 ? found[0] : nil
    }

    /// Runs the configured exporter once per EB, without a shell: `{eb}` and `{dir}` are whole-argument
    /// substitutions, so nothing from the catalogue can inject options or commands.
    private func export(
        _ ebs: [RestorePlan.ExecBlock], command: [String], rawdata: String, context: RestoreContext,
        reporter: any StepReporter
    ) async throws {
        guard let program = command.first else {
            throw RestoreError(.rawdataCommandInvalid, "archive.rawdataCommand is empty")
        }
        for (index, eb) in ebs.enumerated() {
            let argv = command.dropFirst().map { $0 == "{eb}" ? eb.uid.rawValue : ($0 == "{dir}" ? rawdata : $0) }
            reporter.report(StepProgress(fraction: Double(index) / Double(ebs.count), message: "exporting \(eb.uid)"))
            context.logger.info("running the raw-data exporter", metadata: ["argv": "\([program] + argv)"])
            let result = try await Subprocess.run(
                program.hasPrefix("/") ? .path(FilePath(program)) : .name(program), arguments: Arguments(Array(argv)),
                workingDirectory: FilePath(rawdata), output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
            guard result.terminationStatus.isSuccess else {
                throw RestoreError(
                    .rawdataExportFailed,
                    "\(program) for \(eb.uid) ended with \(result.terminationStatus): \(result.standardError.suffix(400))",
                    hint: "Run the exporter by hand with the same arguments to see what it needs.")
            }
            guard FileSystemSteps.isDirectory(rawdata + "/" + eb.asdmDiskName.rawValue) else {
                throw RestoreError(
                    .rawdataExportFailed, "\(program) for \(eb.uid) did not create rawdata/\(eb.asdmDiskName.rawValue)")
            }
        }
    }
}
