internal import Delivery
public import FoundationEssentials
internal import Glibc

/// The rules that decide, from the catalogue alone, whether a MOUS can be restored — and the plan if it can.
///
/// Mirrors the AAT/PPI restore-candidate rules (brief §1, §12.14–15) and adds the checks that keep the PPR
/// valid. Rules are applied in this order; the first that fails is reported:
/// 1. `invalidUid` — the request's MOUS is not a uid;
/// 2. `unknownMous` — the catalogue has no such MOUS;
/// 3. `projectMismatch`, `fileSetMismatch` — the event's project code / EB list disagree with the catalogue;
///    `inconsistentMetadata` — a file id that is not a plain file name (a site's own source could return one);
/// 4. `noCalibrationProducts` — no `calibration` product;
/// 5. `noScienceProducts` — no `science` product (calibrations are not official until images are archived);
/// 6. `manuallyCalibrated` — a `script` product matching `scriptFor%Cal%` (LIKE, case-insensitive);
/// 7. `noManifest` — no product named `*pipeline_manifest.xml` (hifa_restoredata needs one);
/// 8. `noPassExecBlock` — no QA0-Pass EB;
/// 9. `missingAsdmFile` — a Pass EB without an ASDM file;
/// 10. `inconsistentMetadata` — sessions cannot be numbered, or a Pass EB is in no session;
/// 11. `proprietary` — the release date is in the future (unless allowed).
public enum Restorability {
    /// Checks every rule and returns the plan.
    ///
    /// - Parameters:
    ///   - request: the request (its `mous`, and for the event form `fileSetIds` and `projectCode`).
    ///   - record: the catalogue's record of the MOUS, nil if unknown.
    ///   - now: the current time (for the release date).
    ///   - allowProprietary: restore even if the data are still proprietary (an operator's decision).
    /// - Throws: ``RestoreError`` with one of the codes above.
    public static func plan(
        for request: RestoreRequest, record: MousRecord?, now: Date, allowProprietary: Bool
    ) throws(RestoreError) -> RestorePlan {
        guard let mous = AlmaUid(request.mous) else {
            throw RestoreError(
                .invalidUid, "\"\(request.mous)\" is not an ALMA MOUS uid",
                hint: "Give the MOUS status uid in the form uid://A001/X1284/X265f.")
        }
        guard let record, record.mous == mous else {
            throw RestoreError(
                .unknownMous,
                "the site's catalogue has no MOUS \(mous) (it holds only MOUSes imported with `dropbox-agent catalog import`)",
                hint:
                    "To restore it from its ALMA download package, add \"source\": {\"package\": \"<folder of its *_auxiliary.tar and *.asdm.sdm.tar files>\"}; "
                    + "from the ALMA archive, \"source\": {\"archive\": \"alma\"} (sources.almaArchive.url must be configured); or import it into the catalogue."
            )
        }
        try checkEventForm(request, record: record)
        try checkFileIds(record)
        try checkProducts(record)

        let passEBs = record.execBlocks.filter { $0.qa0 == .pass }
        guard !passEBs.isEmpty else {
            let seen = record.execBlocks.map { "\($0.uid) \($0.qa0.rawValue)" }.joined(separator: ", ")
            throw RestoreError(
                .noPassExecBlock,
                "MOUS \(mous) has no execution block with QA0 status Pass"
                    + (seen.isEmpty ? " (it has no execution blocks at all)" : " (\(seen))"),
                hint: "Only QA0-Pass execution blocks are restored; this MOUS has nothing to restore.")
        }
        let withoutAsdm = passEBs.filter { $0.asdm == nil }.map(\.uid.rawValue)
        guard withoutAsdm.isEmpty else {
            throw RestoreError(
                .missingAsdmFile,
                "QA0-Pass execution block(s) \(withoutAsdm.joined(separator: ", ")) of MOUS \(mous) have no ASDM file in the catalogue",
                hint: "Add the asdm {ngasFileId, size} of each Pass EB to the catalogue import file.")
        }

        let sessions = try SessionMapping.compute(for: record)
        var planned: [RestorePlan.ExecBlock] = []
        for eb in passEBs {
            guard let number = sessions.sessionNumber(of: eb.uid) else {
                let where_ =
                    sessions.source == .ousStatusXml
                    ? "in no Session of the OUSStatus XML" : "in no session (AQUA_EXECBLOCK.SESSIONID is empty)"
                throw RestoreError(
                    .inconsistentMetadata,
                    "QA0-Pass EB \(eb.uid) of MOUS \(mous) is \(where_); the pipeline would silently put it in session_1",
                    hint:
                        "Give the EB its sessionId (or an ExecBlockRef in ousStatusXml) in the catalogue and import it again."
                )
            }
            planned.append(
                RestorePlan.ExecBlock(
                    uid: eb.uid, sessionNumber: number, asdm: eb.asdm!, startTime: eb.startTime, endTime: eb.endTime))
        }
        planned.sort { a, b in
            if a.startTime != b.startTime {
                return (a.startTime ?? UTCTime(millisecondsSince1970: .max))
                    < (b.startTime ?? UTCTime(millisecondsSince1970: .max))
            }
            return a.uid < b.uid
        }

        // Checked last so that a MOUS that could never be restored says so, rather than "wait until …".
        // A missing release date (no ASA_DELIVERY_STATUS row) is "unknown", not "in the future": the brief's
        // rule only refuses a known future date. Sites that want unknown = proprietary should store 3000-01-01,
        // the date ALMA itself uses to halt a release.
        if let release = record.releaseDate, release.date > now, !allowProprietary {
            throw RestoreError(
                .proprietary, "MOUS \(mous) of project \(record.project) is proprietary until \(release)",
                hint: "Wait for the release date, or have an operator allow proprietary restores for this request.")
        }

        // Deviation from "calibration + script": a `*pipeline_manifest.xml` is fetched whatever its class, because
        // the archive's class for it is not documented and hifa_restoredata cannot run without it.
        let products = record.products
            .filter { product in
                let id = product.file.ngasFileId
                guard !isSkippedProduct(id) else { return false }
                // Continuum subtraction needs the pipeline's cont.dat, which travels in the auxiliary products.
                let auxiliary = request.content.contains(.contsub) && id.hasSuffix("auxproducts.tgz")
                return product.fileClass == .calibration || product.fileClass == .script
                    || id.hasSuffix("pipeline_manifest.xml") || auxiliary
            }
            .sorted { $0.file.ngasFileId < $1.file.ngasFileId }
        return RestorePlan(record: record, sessions: sessions, execBlocks: planned, products: products)
    }

    /// Files the archive stores with the products but a restore never needs (JAO `get_mous.py` skips them).
    public static func isSkippedProduct(_ fileId: String) -> Bool {
        fileId.hasSuffix("product_ingestor.xml") || fileId.hasSuffix("product_rename.txt")
    }

    /// SQL `LIKE '%scriptFor%Cal%'`, case-insensitive: a manual-calibration script.
    public static func isManualCalibrationScript(_ fileId: String) -> Bool {
        let lower = fileId.lowercased()
        guard let range = lower.firstRange(of: "scriptfor") else { return false }
        return lower[range.upperBound...].contains("cal")
    }

    static func checkEventForm(_ request: RestoreRequest, record: MousRecord) throws(RestoreError) {
        if let code = request.projectCode?.trimmingWhitespace(), !code.isEmpty, code != record.project {
            throw RestoreError(
                .projectMismatch,
                "the request says project \(code), but MOUS \(record.mous) belongs to project \(record.project)",
                hint: "Check projectCodeOrDataType and ousStatusId in the event.")
        }
        guard let fileSetIds = request.fileSetIds else { return }
        let known = Set(record.execBlocks.map(\.uid))
        var unknown: [String] = []
        for id in fileSetIds {
            let trimmed = id.trimmingWhitespace()
            guard let uid = AlmaUid(lenient: trimmed), known.contains(uid) else {
                unknown.append(trimmed)
                continue
            }
        }
        if !unknown.isEmpty {
            let list = record.execBlocks.map(\.uid.rawValue).joined(separator: ", ")
            throw RestoreError(
                .fileSetMismatch,
                "fileSetIds \(unknown.joined(separator: ", ")) are not execution blocks of MOUS \(record.mous) (it has: \(list.isEmpty ? "none" : list))",
                hint: "Check fileSetIds and ousStatusId in the event.")
        }
    }

    /// File ids become file names in `products/` and the cache: a source other than our own catalogue (whose
    /// importer already refuses them) must not be able to smuggle in `../x` or `/etc/passwd`.
    private static func checkFileIds(_ record: MousRecord) throws(RestoreError) {
        let ids = record.products.map(\.file.ngasFileId) + record.execBlocks.compactMap(\.asdm?.ngasFileId)
        if let bad = ids.first(where: { !ArchiveFile.isSafeFileId($0) }) {
            throw RestoreError(
                .inconsistentMetadata, "MOUS \(record.mous) has an unsafe archive file id \"\(bad)\"",
                hint: "File ids must be plain file names (A-Z a-z 0-9 . _ - +); fix the metadata source.")
        }
    }

    private static func checkProducts(_ record: MousRecord) throws(RestoreError) {
        let mous = record.mous
        guard record.products.contains(where: { $0.fileClass == .calibration }) else {
            throw RestoreError(
                .noCalibrationProducts, "MOUS \(mous) has no calibration products in the archive",
                hint:
                    "Only MOUSes processed since about October 2017 have calibration products stored separately; older ones need re-ingestion."
            )
        }
        guard record.products.contains(where: { $0.fileClass == .science }) else {
            throw RestoreError(
                .noScienceProducts,
                "MOUS \(mous) has no science products: its calibration is not official until the images are archived",
                hint: "Wait until the MOUS's images are archived (QA2 complete), then try again.")
        }
        if let script = record.products.first(where: {
            $0.fileClass == .script && isManualCalibrationScript($0.file.ngasFileId)
        }) {
            throw RestoreError(
                .manuallyCalibrated,
                "MOUS \(mous) was calibrated manually (\(script.file.ngasFileId)); the pipeline cannot restore it",
                hint: "Use the delivered scriptForPI.py to recreate the calibrated data instead.")
        }
        guard record.products.contains(where: { $0.file.ngasFileId.hasSuffix("pipeline_manifest.xml") }) else {
            throw RestoreError(
                .noManifest,
                "MOUS \(mous) has no *pipeline_manifest.xml among its products; hifa_restoredata cannot restore without it",
                hint: "Check that the calibration products were ingested completely.")
        }
    }
}
