internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Decides, from a download package alone, whether its MOUS can be restored, and the plan if it can.
///
/// Pure: works on ``PackageContents`` (what step 1 read from the package) and never touches the file system.
/// Authorities, as the pipeline itself uses them:
/// - **EBs and sessions** come from the pipeline manifest: every `<asdm>` of a `<session name="session_N">` is
///   a QA0-Pass EB the pipeline calibrated, in session N. Sessions the products never mention (a Failed EB's
///   session) are emitted empty so the numbering the caltables were made with is kept (alma-restore.md §3.4).
/// - **ProjectStructure** (ObsProject, ProjectStatus, scheduling block) and the EB order come from the
///   calibration run's `pprequest.xml` when the package has one; otherwise documented defaults
///   (``unknownUid``, ``undefined``), which the pipeline never reads during a restore (§1, §3.2).
/// - **Project, SOUS, GOUS, MOUS** come from the package tree (`<project>/science_goal.…/group.…/member.…`).
/// - Each file the manifest names is found among the package's files (``PackageFileNames``), never derived.
///
/// Refusals, in this order: `packageWrongMous`, `manuallyCalibrated` (a `scriptFor*Cal*` script),
/// `noCalibrationProducts` (no manifest and no calibration products: a QA-only or SEMIPASS delivery),
/// `noManifest`, `packageInconsistent`, `projectMismatch`/`fileSetMismatch` (event form), `noPassExecBlock`,
/// `missingAsdmFile`, `manifestFileMissing`.
public enum PackagePlanner {
    /// Written for an ObsProject, ProjectStatus or SB uid the package does not carry (no `pprequest.xml`).
    public static let unknownUid = AlmaUid("uid://A000/X0/X0")!
    /// Written for a title the package does not carry (the pipeline's own word for an unknown value).
    public static let undefined = "Undefined"

    /// Plans the restore of `request` from `contents`.
    public static func plan(for request: RestoreRequest, contents: PackageContents) throws(RestoreError) -> RestorePlan
    {
        let tree = contents.tree
        guard let wanted = AlmaUid(request.mous) else {
            throw RestoreError(.invalidUid, "\"\(request.mous)\" is not an ALMA MOUS uid")
        }
        guard tree.mous == wanted else {
            throw RestoreError(
                .packageWrongMous, "the download package \(contents.location) is for MOUS \(tree.mous), not \(wanted)",
                hint: "Name the package of MOUS \(wanted), or correct the request's mous.")
        }
        let allNames = Array(contents.scriptFiles.keys) + Array(contents.calibrationFiles.keys)
        if let script = allNames.sorted().first(where: Restorability.isManualCalibrationScript) {
            throw RestoreError(
                .manuallyCalibrated,
                "MOUS \(wanted) was calibrated manually (\(script) in the package); the pipeline cannot restore it",
                hint: "Run the package's scriptForPI.py with the CASA version of its QA2 report instead.")
        }
        guard let manifest = contents.manifest else {
            if contents.calibrationFiles.isEmpty {
                let has =
                    contents.scriptFiles.keys.contains { $0.contains("scriptForPI") }
                    ? " (only scriptForPI.py and QA material)" : ""
                throw RestoreError(
                    .noCalibrationProducts,
                    "the download package \(contents.location) has no calibration products for MOUS \(wanted)\(has): a QA-only or SEMIPASS delivery, or a package without its auxiliary tar",
                    hint:
                        "Only pipeline-calibrated MOUSes with their calibration/ folder can be restored; a scriptForPI.py alone does not make one restorable."
                )
            }
            throw RestoreError(
                .noManifest,
                "the calibration products of MOUS \(wanted) in \(contents.location) have no *pipeline_manifest.xml; hifa_restoredata cannot restore without it",
                hint: "Check that the auxiliary tar was downloaded completely.")
        }
        var notes = contents.notes
        let m = manifest.document

        // Sessions and EBs from the manifest.
        var ebSession: [(eb: AlmaUid, session: Int)] = []
        var seen: Set<AlmaUid> = []
        for session in m.sessions {
            guard let number = sessionNumber(session.name) else {
                throw RestoreError(
                    .packageInconsistent,
                    "manifest \(manifest.name) has a session named \"\(session.name)\"; a restore needs session_N names to number SESSION_N",
                    hint:
                        "This manifest cannot be restored by the modular path; a pipeline CASA installation may handle it."
                )
            }
            for asdm in session.asdms {
                guard let disk = AsdmDiskName(PPRSummary.sanitizeForMS(asdm.name)) else {
                    throw RestoreError(
                        .packageInconsistent,
                        "manifest \(manifest.name) lists <asdm name=\"\(asdm.name)\">, which is not an execution block's measurement set"
                    )
                }
                if seen.insert(disk.uid).inserted { ebSession.append((disk.uid, number)) }
            }
        }
        guard !ebSession.isEmpty else {
            throw RestoreError(
                .noPassExecBlock,
                "manifest \(manifest.name) lists no execution block: the pipeline calibrated nothing in MOUS \(wanted)")
        }

        // Order: the calibration PPR's AsdmIdentifier order when it lists the same EBs; else the manifest's.
        // A PPR for another OUS (a package assembled by hand) is not used at all.
        var ppr = contents.calibrationPPR
        if let other = ppr, let ous = other.document.ousStatus, ous != wanted {
            notes.append("\(other.name) is for OUS \(ous), not \(wanted): not used")
            ppr = nil
        }
        if let ppr {
            let pprEBs = ppr.document.asdms.compactMap {
                AlmaUid(lenient: $0.execBlockId) ?? AsdmDiskName($0.asdmDiskName)?.uid
            }
            if Set(pprEBs) == seen {
                let position = Dictionary(pprEBs.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
                ebSession.sort { position[$0.eb]! < position[$1.eb]! }
            } else {
                notes.append(
                    "\(ppr.name) lists EBs \(pprEBs.map(\.rawValue).joined(separator: ", ")), the manifest \(seen.map(\.rawValue).sorted().joined(separator: ", ")); the manifest's are restored"
                )
            }
            for asdm in ppr.document.asdms {
                guard let uid = AlmaUid(lenient: asdm.execBlockId),
                    let entry = ebSession.first(where: { $0.eb == uid }),
                    asdm.session != "session_\(entry.session)"
                else { continue }
                notes.append(
                    "\(ppr.name) put \(uid) in \(asdm.session), the manifest in session_\(entry.session); the manifest's session is used (its caltables follow it)"
                )
            }
        }
        let sessionCount = max(ebSession.map(\.session).max() ?? 0, ppr?.document.sessionCount ?? 0)

        // Identity.
        guard let project = tree.project ?? ppr?.document.proposalCode ?? contents.projectHint,
            ProjectCode.isValid(project)
        else {
            throw RestoreError(
                .packageInconsistent,
                "the project code of MOUS \(wanted) cannot be read from \(contents.location): the tree is not <project>/science_goal.…/group.…/member.…",
                hint: "Give the package as the archive delivers it (its tar files, or the tree they unpack to).")
        }
        let structure = ppr.map { $0.name } ?? "defaults"
        if ppr == nil {
            notes.append(
                "no pprequest.xml in the package: ObsProject, ProjectStatus and SB refs are written as \(unknownUid) (never read by a restore)"
            )
        }
        let record = MousRecord(
            mous: wanted, project: project,
            obsProject: ppr?.document.obsProject ?? unknownUid,
            projectStatus: ppr?.document.projectStatus ?? unknownUid,
            obsUnitSetPartId: ppr?.document.obsUnitSetPartId ?? undefined,
            sous: tree.sous ?? unknownUid, gous: tree.gous ?? unknownUid,
            title: ppr?.document.title ?? undefined, releaseDate: contents.releaseDate,
            schedBlock: .init(
                uid: ppr?.document.schedBlock ?? unknownUid, name: ppr?.document.schedBlockTitle ?? undefined,
                statusUid: ppr?.document.schedBlockStatus ?? unknownUid),
            sessions: (1...max(1, sessionCount)).map {
                MousRecord.Session(id: "session_\($0)", startTime: nil, endTime: nil)
            },
            execBlocks: [], products: [], ousStatusXml: nil)
        try Restorability.checkEventForm(request, record: recordWithEBs(record, ebSession.map(\.eb)))

        // ASDMs.
        var asdms: [String: AsdmSource] = [:]
        var missing: [String] = []
        for (eb, _) in ebSession {
            if let source = contents.asdms[eb.sanitized] {
                asdms[eb.sanitized] = source
            } else {
                missing.append(eb.rawValue)
            }
        }
        guard missing.isEmpty else {
            throw RestoreError(
                .missingAsdmFile,
                "the download package \(contents.location) has no raw data for EB \(missing.joined(separator: ", ")) (no *.asdm.sdm.tar holding raw/uid___….asdm.sdm, nor the untarred directory)",
                hint: "Download the EB's .asdm.sdm.tar from the archive into the package directory.")
        }
        for (disk, source) in asdms.sorted(by: { $0.key < $1.key }) {
            if let reason = source.incomplete {
                throw RestoreError(
                    .packageFileTruncated,
                    "\(PathString.lastComponent(source.path)) (the raw data of \(disk)) is incomplete: \(reason); the download was interrupted or damaged",
                    hint: "Download the file again from the archive; nothing was unpacked.")
            }
        }

        // Products: every file the manifest names, found among the calibration files.
        var products: [StagedProduct] = []
        var problems: [String] = []
        func stage(_ name: String, why: String, required: Bool) {
            guard ArchiveFile.isSafeFileId(name) else {
                problems.append("manifest \(manifest.name) names an unsafe file \"\(name)\" (\(why))")
                return
            }
            guard !products.contains(where: { $0.name == name }) else { return }
            switch PackageFileNames.match(name, in: contents.calibrationFiles.keys) {
            case .found(let file):
                let path = contents.calibrationFiles[file]!
                products.append(StagedProduct(name: name, source: path, size: contents.size(of: path)))
                if file != name { notes.append("\(name) is \(file) in the package") }
            case .missing:
                if required {
                    problems.append("\(name) (\(why)) is not in the package's calibration/ folder")
                } else {
                    notes.append("\(name) (\(why)) is not in the package; the restore does not need it")
                }
            case .ambiguous(let files):
                problems.append("\(name) (\(why)) matches several package files: \(files.joined(separator: ", "))")
            }
        }
        let planned = Set(ebSession.map { $0.eb.sanitized + ".ms" })
        // What ManifestCrossCheck finds at step 3 for the catalogue, found here, before any raw data is read:
        // the EBs and sessions come from this very manifest, so only missing entries can be wrong.
        for session in m.sessions
        where session.caltables == nil && session.asdms.contains(where: { planned.contains($0.name) }) {
            let ebs = session.asdms.map(\.name).filter(planned.contains).joined(separator: ", ")
            throw RestoreError(
                .manifestMissingSession,
                "manifest \(manifest.name) has a <session name=\"\(session.name)\"> without <caltables>, but \(ebs) \(ebs.contains(",") ? "are" : "is") in it (the pipeline would stop with KeyError: '\(session.name)')",
                hint:
                    "The calibration products of this package are incomplete: the session's caltables cannot be applied."
            )
        }
        for session in m.sessions {
            for asdm in session.asdms
            where planned.contains(asdm.name) && (asdm.finalFlags == nil || asdm.applyCmds == nil) {
                let lacking = [asdm.finalFlags == nil ? "finalflags" : nil, asdm.applyCmds == nil ? "applycmds" : nil]
                    .compactMap { $0 }
                throw RestoreError(
                    .manifestIncompleteAsdm,
                    "manifest \(manifest.name): <asdm name=\"\(asdm.name)\"> has no \(lacking.joined(separator: " and ")); its flags/calibration cannot be restored",
                    hint: "The calibration products of this package are incomplete.")
            }
        }
        for session in m.sessions where session.asdms.contains(where: { planned.contains($0.name) }) {
            if let caltables = session.caltables {
                stage(caltables, why: "caltables of \(session.name)", required: true)
            }
            for asdm in session.asdms {
                if let flags = asdm.finalFlags { stage(flags, why: "finalflags of \(asdm.name)", required: true) }
                if let apply = asdm.applyCmds { stage(apply, why: "applycmds of \(asdm.name)", required: true) }
            }
        }
        if let aux = m.auxProductsFile { stage(aux, why: "auxiliary products", required: false) }
        guard problems.isEmpty else {
            throw RestoreError(
                .manifestFileMissing, problems.joined(separator: "; "),
                hint: "The package is incomplete: download its auxiliary tar again.")
        }
        let manifestStaged = PackageFileNames.stripMember(manifest.name)
        products.append(
            StagedProduct(
                name: manifestStaged, source: contents.calibrationFiles[manifest.name]!,
                size: contents.size(of: contents.calibrationFiles[manifest.name]!)))

        // The plan.
        var full = recordWithEBs(
            record, ebSession.map(\.eb),
            sessionOf: Dictionary(ebSession.map { ($0.eb, $0.session) }, uniquingKeysWith: { a, _ in a }), asdms: asdms)
        full.products = products.map {
            MousRecord.ProductFile(
                fileClass: .calibration,
                file: ArchiveFile(ngasFileId: $0.name, size: $0.size, checksum: nil, checksumVariant: nil))
        }
        let numbered = (1...max(1, sessionCount)).map { n in
            NumberedSession(
                number: n, id: "session_\(n)", sortTime: nil, execBlocks: ebSession.filter { $0.session == n }.map(\.eb)
            )
        }
        let empty = numbered.filter(\.execBlocks.isEmpty).map(\.keyword)
        let sessionNotes =
            empty.isEmpty
            ? []
            : ["\(empty.joined(separator: ", ")) empty: no calibrated EB in the manifest (e.g. a Failed EB's session)"]
        let planEBs = ebSession.map { eb, session in
            RestorePlan.ExecBlock(
                uid: eb, sessionNumber: session, asdm: full.execBlocks.first { $0.uid == eb }!.asdm!, startTime: nil,
                endTime: nil)
        }
        let staging = PackageStaging(
            location: contents.location, memberDirectory: tree.path, structureSource: structure,
            casaVersion: m.casaVersion, pipelineVersion: m.pipelineVersion, products: products, asdms: asdms,
            notes: notes,
            modularRefusal: CASASelection.modularRefusal(for: m, manifestName: manifest.name))
        return RestorePlan(
            record: full,
            sessions: SessionAssignment(source: .pipelineManifest, sessions: numbered, notes: sessionNotes),
            execBlocks: planEBs, products: full.products, package: staging)
    }

    /// `session_N` → N (N ≥ 1).
    static func sessionNumber(_ name: String) -> Int? {
        guard name.hasPrefix("session_"), let n = Int(name.dropFirst("session_".count)), n >= 1, n <= 10_000 else {
            return nil
        }
        return n
    }

    private static func recordWithEBs(
        _ record: MousRecord, _ ebs: [AlmaUid], sessionOf: [AlmaUid: Int] = [:], asdms: [String: AsdmSource] = [:]
    ) -> MousRecord {
        var copy = record
        copy.execBlocks = ebs.map { eb in
            let source = asdms[eb.sanitized]
            return MousRecord.ExecBlock(
                uid: eb, qa0: .pass, sessionId: sessionOf[eb].map { "session_\($0)" }, startTime: nil, endTime: nil,
                asdm: source.map {
                    ArchiveFile(
                        ngasFileId: PathString.lastComponent($0.path), size: $0.size, checksum: nil,
                        checksumVariant: nil)
                })
        }
        return copy
    }
}
