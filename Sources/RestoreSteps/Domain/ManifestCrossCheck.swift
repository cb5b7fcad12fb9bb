public import FoundationEssentials
internal import Glibc

/// Checks, before CASA starts, that the pipeline manifest and the staged products can restore every planned
/// EB in the session the PPR gives it — the failures real restores hit late (`KeyError: 'session_2'`,
/// missing flag versions) are found here with a message that names the file, the session and the EB.
public enum ManifestCrossCheck {
    /// Cross-checks `manifest` against `plan` and the files in `stagedFiles`.
    ///
    /// Rules (brief §12.5–12.7): every planned EB has an `<asdm name="<AsdmDiskName>.ms">` with `finalflags`
    /// and `applycmds`, in the session the plan assigns it; every session assigned to an EB exists with
    /// `caltables`; no `<asdm>` is for an EB outside the plan; every file named for a planned EB or its
    /// session exists in `stagedFiles`; the manifest is for this MOUS. All problems are collected; the error's
    /// code is that of the first (in the order above) and its message lists them all.
    ///
    /// - Parameters:
    ///   - manifest: the parsed manifest.
    ///   - manifestName: its file name, for messages.
    ///   - plan: the restore plan (EBs and their sessions).
    ///   - stagedFiles: the directory holding the staged products (flat, `products/`).
    /// - Throws: ``RestoreError`` with code `manifestWrongOus`, `manifestMissingSession`, `manifestMissingAsdm`,
    ///   `manifestIncompleteAsdm`, `manifestSessionMismatch`, `manifestExtraAsdm` or `manifestFileMissing`.
    public static func check(
        manifest: PipelineManifest, manifestName: String = "the manifest", plan: RestorePlan, stagedFiles: URL
    ) throws(RestoreError) {
        var problems: [(RestoreError.Code, String)] = []
        let m = manifestName

        let expectedOus = plan.mous.sanitized
        if manifest.ousName != expectedOus {
            problems.append((.manifestWrongOus, "\(m) is for <ous name=\"\(manifest.ousName)\">, not \(expectedOus)"))
        }

        // asdm name -> (session name, asdm) for every asdm of the manifest (first occurrence wins, as in the pipeline's dict build-up order)
        var asdmIndex: [String: (session: String, asdm: PipelineManifest.Asdm)] = [:]
        for session in manifest.sessions {
            for asdm in session.asdms where asdmIndex[asdm.name] == nil {
                asdmIndex[asdm.name] = (session.name, asdm)
            }
        }
        let sessionsByName = Dictionary(
            manifest.sessions.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

        var requiredFiles: [(file: String, why: String)] = []

        // Sessions assigned to EBs must exist with caltables.
        for sessionName in orderedUnique(plan.execBlocks.map(\.sessionName)) {
            let ebs = plan.execBlocks.filter { $0.sessionName == sessionName }.map(\.uid.rawValue).joined(
                separator: ", ")
            let keyword = sessionName.uppercased()
            guard let session = sessionsByName[sessionName], let caltables = session.caltables else {
                let what =
                    sessionsByName[sessionName] == nil
                    ? "no <session name=\"\(sessionName)\">" : "a <session name=\"\(sessionName)\"> without <caltables>"
                problems.append(
                    (
                        .manifestMissingSession,
                        "manifest \(m) has \(what) with caltables, but EB \(ebs) \(ebs.contains(",") ? "are" : "is") in \(keyword) (the pipeline would stop with KeyError: '\(sessionName)')"
                    ))
                continue
            }
            requiredFiles.append((caltables, "caltables of \(sessionName)"))
        }

        // Every planned EB must be in the manifest, complete, in the same session.
        var missing: [String] = []
        for eb in plan.execBlocks {
            let msName = eb.asdmDiskName.msName
            guard let entry = asdmIndex[msName] else {
                missing.append(eb.uid.rawValue)
                continue
            }
            var lacking: [String] = []
            if let flags = entry.asdm.finalFlags {
                requiredFiles.append((flags, "finalflags of \(msName)"))
            } else {
                lacking.append("finalflags")
            }
            if let apply = entry.asdm.applyCmds {
                requiredFiles.append((apply, "applycmds of \(msName)"))
            } else {
                lacking.append("applycmds")
            }
            if !lacking.isEmpty {
                problems.append(
                    (
                        .manifestIncompleteAsdm,
                        "manifest \(m): <asdm name=\"\(msName)\"> (EB \(eb.uid)) has no \(lacking.joined(separator: " and ")); its flags/calibration cannot be restored"
                    ))
            }
            if entry.session != eb.sessionName {
                problems.append(
                    (
                        .manifestSessionMismatch,
                        "manifest \(m) puts \(msName) in <session name=\"\(entry.session)\">, but the catalogue puts EB \(eb.uid) in \(eb.sessionName.uppercased()); the wrong caltables would be applied"
                    ))
            }
        }
        if !missing.isEmpty {
            problems.append(
                (
                    .manifestMissingAsdm,
                    "QA0-Pass EB(s) \(missing.joined(separator: ", ")) have no <asdm> in manifest \(m): the pipeline did not calibrate them, so they cannot be restored"
                ))
        }

        // Nothing in the manifest outside the plan.
        let planned = Set(plan.execBlocks.map(\.asdmDiskName.msName))
        let extra = manifest.sessions.flatMap(\.asdms).map(\.name).filter { !planned.contains($0) }
        if !extra.isEmpty {
            problems.append(
                (
                    .manifestExtraAsdm,
                    "manifest \(m) lists \(orderedUnique(extra).joined(separator: ", ")), which \(extra.count == 1 ? "is" : "are") not a QA0-Pass EB of MOUS \(plan.mous) in the catalogue"
                ))
        }

        // Every named file staged.
        var seenFiles: Set<String> = []
        for (file, why) in requiredFiles where seenFiles.insert(file).inserted {
            let safe = ArchiveFile.isSafeFileId(file)
            let path = stagedFiles.appendingPathComponent(file).path
            if !safe || !FileManager.default.fileExists(atPath: path) {
                problems.append(
                    (
                        .manifestFileMissing,
                        safe
                            ? "\(file) (\(why), named in manifest \(m)) is not among the staged products in \(stagedFiles.path)"
                            : "manifest \(m) names an unsafe file \"\(file)\" (\(why))"
                    ))
            }
        }

        guard !problems.isEmpty else { return }
        let order: [RestoreError.Code] = [
            .manifestWrongOus, .manifestMissingSession, .manifestMissingAsdm, .manifestIncompleteAsdm,
            .manifestSessionMismatch, .manifestExtraAsdm, .manifestFileMissing,
        ]
        let sorted = problems.enumerated().sorted { a, b in
            let ia = order.firstIndex(of: a.element.0) ?? order.count
            let ib = order.firstIndex(of: b.element.0) ?? order.count
            return ia != ib ? ia < ib : a.offset < b.offset
        }.map(\.element)
        let message = sorted.count == 1 ? sorted[0].1 : sorted.map(\.1).joined(separator: "; ")
        throw RestoreError(sorted[0].0, message, hint: hint(for: sorted[0].0))
    }

    private static func hint(for code: RestoreError.Code) -> String {
        switch code {
        case .manifestFileMissing:
            "Fetch the calibration products again; if the archive lacks the file, the MOUS cannot be restored as archived."
        case .manifestSessionMismatch, .manifestMissingSession:
            "The catalogue's sessions disagree with the pipeline run that made the products; correct the sessions (or ousStatusXml) in the catalogue."
        case .manifestExtraAsdm, .manifestMissingAsdm:
            "The catalogue's QA0-Pass EBs differ from those the pipeline calibrated; check the QA0 statuses in the catalogue."
        default: "The calibration products do not belong to this MOUS or are incomplete."
        }
    }

    private static func orderedUnique(_ values: [String]) -> [String] {
        var seen: Set<String> = []
        return values.filter { seen.insert($0).inserted }
    }
}
