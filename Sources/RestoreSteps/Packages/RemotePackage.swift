internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Logging

/// Step 1 (and the fetches of step 2) for packages that are not on this machine: a package directory on a web
/// server (`source.package` = an http(s) URL) and the public ALMA archive (`source.archive` = `alma`).
///
/// Either way only what a restore needs is fetched — the auxiliary tar in step 1 (calibration, scripts: the
/// small part, read and cross-checked before anything large moves) and the raw `.asdm.sdm.tar` files in step 2 —
/// never the image tars (`…_001_of_001.tar`). Files go through the shared cache when their size is known
/// (DataLink `content_length`, nginx's JSON index), with resume and size verification.
enum RemotePackage {
    /// A file of a remote package.
    struct RemoteFile: Sendable {
        var name: String
        var url: String
        var size: Int64?
    }

    /// A package directory on a web server.
    static func plan(
        _ request: RestoreRequest, directoryURL: String, context: RestoreContext, reporter: any StepReporter
    ) async throws(RestoreError) -> RestorePlan {
        let base = try PackageLocation.confine(url: directoryURL, prefixes: context.services.sources.packageURLs)
        guard let mous = AlmaUid(request.mous) else {
            throw RestoreError(.invalidUid, "\"\(request.mous)\" is not an ALMA MOUS uid")
        }
        reporter.report(StepProgress(message: "listing the download package \(base)"))
        let listing: HTTPDirectoryListing
        do {
            listing = try HTTPDirectoryListing.parse(
                try await HTTPDocument.get(url: base, options: context.services.httpOptions))
        } catch {
            throw RestoreError(
                .packageNotFound, "the download package \(base) cannot be listed: \(error.message)",
                hint: "The server must list the directory (an autoindex page or nginx's JSON index).",
                isTransient: error.httpStatus.map { $0 >= 500 } ?? true)
        }
        let files = listing.entries.filter { !$0.isDirectory }.map {
            RemoteFile(name: $0.name, url: base + percentEncoded($0.name), size: $0.size)
        }
        let auxiliaries = files.filter { $0.name.hasSuffix("_auxiliary.tar") }
        let own = auxiliaries.filter { $0.name.contains(mous.sanitized) }
        guard let auxiliary = own.count == 1 ? own.first : (auxiliaries.count == 1 ? auxiliaries.first : nil) else {
            throw RestoreError(
                .packageWrongMous,
                auxiliaries.isEmpty
                    ? "the download package \(base) lists no *_auxiliary.tar (it lists \(files.prefix(8).map(\.name).joined(separator: ", ")))"
                    : "the download package \(base) lists several auxiliary tars and none for \(mous): \(auxiliaries.map(\.name).joined(separator: ", "))",
                hint: "Name the directory that holds the MOUS's *_auxiliary.tar and *.asdm.sdm.tar files.")
        }
        let raw = files.filter { $0.name.hasSuffix(".asdm.sdm.tar") }
        return try await planFromRemoteFiles(
            request, mous: mous, auxiliary: auxiliary, raw: raw, location: base,
            projectHint: nil, releaseDate: nil, context: context, reporter: reporter)
    }

    /// The public ALMA archive: TAP to find the MOUS and its rights, DataLink for its files.
    static func planFromArchive(
        _ request: RestoreRequest, context: RestoreContext, reporter: any StepReporter
    ) async throws(RestoreError) -> RestorePlan {
        let settings = context.services.sources
        guard let mous = AlmaUid(request.mous) else {
            throw RestoreError(.invalidUid, "\"\(request.mous)\" is not an ALMA MOUS uid")
        }
        let client = try archiveClient(context)
        reporter.report(StepProgress(message: "looking up \(mous) in the ALMA archive (\(client.baseURL))"))
        guard let record = try await client.lookup(mous) else {
            throw RestoreError(
                .archiveUnknownMous, "the ALMA archive at \(client.baseURL) has no MOUS \(mous) in ivoa.obscore",
                hint: "Check the uid (a member OUS status uid, uid://A001/…).")
        }
        if !record.isPublic && client.token == nil {
            let until = record.releaseDate.map { "until \($0)" } ?? "(no release date is known)"
            throw RestoreError(
                .proprietary,
                "MOUS \(mous) of project \(record.project) is proprietary \(until) (data_rights \(record.dataRights))",
                hint: settings.almaArchiveTokenFile == nil
                    ? "Wait for the release date, or configure sources.almaArchive.tokenFile with the token of an account entitled to the data."
                    : "The token file \(settings.almaArchiveTokenFile!) is empty or unreadable; put the account's token in it."
            )
        }
        reporter.report(StepProgress(message: "listing the files of \(mous) (DataLink)"))
        let rows = try await client.files(mous)
        let chosen = try AlmaArchiveClient.restoreFiles(rows)
        func remote(_ row: DataLinkRow) -> RemoteFile {
            RemoteFile(name: row.fileName!, url: row.accessURL!, size: row.contentLength)
        }
        return try await planFromRemoteFiles(
            request, mous: mous, auxiliary: remote(chosen.auxiliary), raw: chosen.raw.map(remote),
            location: client.dataLinkURL(mous), projectHint: record.project,
            releaseDate: record.releaseDate, context: context, reporter: reporter)
    }

    /// Fetches the auxiliary tar, reads it as a package whose raw tars stay on the server, and plans.
    private static func planFromRemoteFiles(
        _ request: RestoreRequest, mous: AlmaUid, auxiliary: RemoteFile, raw: [RemoteFile], location: String,
        projectHint: String?, releaseDate: UTCTime?, context: RestoreContext,
        reporter: any StepReporter
    ) async throws(RestoreError) -> RestorePlan {
        // The auxiliary tar alone in its own folder: PackageReader unpacks it into the scratch folder.
        let folder = context.workArea.root + "/remote-package"
        try FileSystemSteps.createDirectory(folder)
        let auxPath = folder + "/" + auxiliary.name
        try await fetch(
            [(file(auxiliary), auxPath, auxiliary.url)], context: context, reporter: reporter,
            label: "auxiliary tar \(auxiliary.name)")
        var asdms: [String: AsdmSource] = [:]
        for tar in raw {
            guard let disk = diskName(ofRawTar: tar.name) else { continue }
            asdms[disk] = AsdmSource(kind: .remoteTar, path: tar.name, url: tar.url, size: tar.size ?? 0)
        }
        let scratch = context.workArea.root + "/package"
        let limits = context.services.archiveLimits
        let remoteAsdms = asdms
        var contents = try await BlockingWork.run { (_) throws(RestoreError) -> PackageContents in
            try PackageReader.read(
                root: folder, location: location, mous: mous, scratch: scratch, limits: limits,
                remoteAsdms: remoteAsdms, projectHint: projectHint)
        }
        contents.releaseDate = releaseDate
        return try PackagePlanner.plan(for: request, contents: contents)
    }

    /// The EB disk name of an archive raw tar, `<project>_uid___A002_X…_X….asdm.sdm.tar`. A tar on a server
    /// cannot be peeked into without fetching it, so here (only here) the EB is read from the name; step 2
    /// still requires the unpacked tar to hold exactly that ASDM.
    static func diskName(ofRawTar name: String) -> String? {
        guard name.hasSuffix(".asdm.sdm.tar"), let range = name.ranges(of: "uid___").last else {
            return nil
        }
        let disk = String(name[range.lowerBound...].dropLast(".asdm.sdm.tar".count))
        return AsdmDiskName(disk) != nil ? disk : nil
    }

    static func file(_ remote: RemoteFile) -> (ArchiveFile, Bool) {
        (
            ArchiveFile(ngasFileId: remote.name, size: remote.size ?? 0, checksum: nil, checksumVariant: nil),
            remote.size != nil
        )
    }

    static func archiveFile(for source: AsdmSource) -> (ArchiveFile, Bool) {
        (ArchiveFile(ngasFileId: source.path, size: source.size, checksum: nil, checksumVariant: nil), source.size > 0)
    }

    /// Fetches `(file, destination, url)` through the cache (sized files) with the archive's bearer token on
    /// requests to the configured archive.
    static func fetch(
        _ files: [((ArchiveFile, Bool), String, String)], context: RestoreContext, reporter: any StepReporter,
        label: String
    ) async throws(RestoreError) {
        var headers: [String: String] = [:]
        if let archive = context.services.sources.almaArchiveURL, files.contains(where: { $0.2.hasPrefix(archive) }) {
            headers = try archiveClient(context).requestHeaders
        }
        let store = URLFileStore(
            urls: Dictionary(files.map { ($0.0.0.ngasFileId, $0.2) }, uniquingKeysWith: { a, _ in a }),
            headers: headers, options: context.services.httpOptions)
        let items = files.map { ArchiveFetch.Item(file: $0.0.0, destination: $0.1, sizeKnown: $0.0.1) }
        do {
            _ = try await ArchiveFetch.fetch(items, context: context, reporter: reporter, label: label, store: store)
        } catch let error as RestoreError {
            throw error
        } catch is CancellationError {
            throw RestoreError(.cancelled, "cancelled")
        } catch {
            throw RestoreError(.internalError, "fetching \(label): \(error)")
        }
    }

    /// The archive client of the configuration, with the token read now (so a rotated token is picked up).
    static func archiveClient(_ context: RestoreContext) throws(RestoreError) -> AlmaArchiveClient {
        let settings = context.services.sources
        guard let url = settings.almaArchiveURL else {
            throw RestoreError(
                .sourceNotConfigured,
                "the request asks for the ALMA archive, but sources.almaArchive.url is not configured",
                hint: "An operator must set sources.almaArchive.url (the archive's base URL, or a mirror's).")
        }
        var token: String?
        if let file = settings.almaArchiveTokenFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw RestoreError(
                    .sourceNotConfigured, "the archive token file \(file) cannot be read",
                    hint: "Check sources.almaArchive.tokenFile and its permissions (readable by the agent only).")
            }
            token = String(decoding: data, as: UTF8.self)
        }
        return AlmaArchiveClient(baseURL: url, token: token, options: context.services.httpOptions)
    }

    private static func percentEncoded(_ name: String) -> String {
        TextEssentials.percentEncoded(name, allowed: TextEssentials.isURLPathAllowed)
    }
}
