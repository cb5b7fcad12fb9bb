internal import Delivery
public import FoundationEssentials
internal import Glibc
internal import SQLiteDatabase

/// Why a catalogue operation failed: the file was valid but the database refused it (or could not be read).
public struct CatalogueError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The embedded catalogue: an SQLite database with ALMA's table names (see ``CatalogueSchema`` and
/// docs/catalog-format.md), filled by `dropbox-agent catalog import FILE`.
///
/// Calls block the calling thread briefly (small indexed queries); the `Database` wrapper serialises access,
/// so one instance may be shared between tasks.
public final class SQLiteCatalogue: MetadataSource {
    private let db: Database
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the catalogue at `path`.
    ///
    /// - Throws: ``CatalogueError`` when the file cannot be opened or has a newer schema.
    public init(path: String) throws {
        self.path = path
        do {
            db = try Database(path: path)
            let version = try db.userVersion()
            if version > CatalogueSchema.version {
                throw CatalogueError(
                    "catalogue \(path) has schema version \(version); this agent knows \(CatalogueSchema.version)")
            }
            try db.transaction {
                for step in CatalogueSchema.migrations(from: version) { try db.execute(step) }
                try db.execute(CatalogueSchema.ddl)
                try db.setUserVersion(CatalogueSchema.version)
            }
        } catch let error as CatalogueError {
            throw error
        } catch {
            throw CatalogueError("cannot open catalogue \(path): \(error)")
        }
    }

    /// Imports every MOUS of `file` in one transaction; a MOUS already present is replaced as a whole.
    ///
    /// - Returns: the imported MOUS uids, in file order.
    /// - Throws: ``CatalogueImportError`` for an invalid file (nothing is imported), ``CatalogueError`` when
    ///   the database refuses (e.g. an EB that belongs to another MOUS already); nothing is changed then.
    @discardableResult
    public func `import`(_ file: CatalogueImportFile) throws -> [String] {
        let records = try file.records()
        do {
            try db.transaction {
                for record in records {
                    _ = try delete(record.mous.rawValue)
                    try checkOwnership(record)
                    try insert(record)
                }
            }
        } catch let error as CatalogueError {
            throw error
        } catch {
            throw CatalogueError("import into \(path) failed, nothing changed: \(error)")
        }
        return records.map(\.mous.rawValue)
    }

    /// Reads, validates and imports the import file at `url` (see ``import(_:)``).
    @discardableResult
    public func `import`(contentsOf url: URL) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CatalogueError("cannot read \(url.path): \(ErrorText.describe(error))")
        }
        return try self.import(try CatalogueImportFile.decode(data))
    }

    /// Removes a MOUS and everything that belongs only to it. Returns whether it was present.
    @discardableResult
    public func remove(_ mous: String) throws -> Bool {
        do {
            return try db.transaction { try delete(mous) }
        } catch {
            throw CatalogueError("remove \(mous) from \(path) failed: \(error)")
        }
    }

    /// Every MOUS in the catalogue, sorted.
    public func mouses() throws -> [String] {
        do {
            return try db.query("SELECT OUS_STATUS_ENTITY_ID FROM AQUA_OUS ORDER BY OUS_STATUS_ENTITY_ID").compactMap {
                $0.string("OUS_STATUS_ENTITY_ID")
            }
        } catch {
            throw CatalogueError("cannot read catalogue \(path): \(error)")
        }
    }

    /// The record of a MOUS, read with the restore's queries; nil if unknown.
    public func mous(_ uid: String) throws -> MousRecord? {
        do {
            // One transaction so the several queries of a record see one snapshot (the wrapper holds its lock
            // for the whole body, so no other call interleaves on this connection).
            return try db.transaction { try read(uid) }
        } catch let error as RestoreError {
            throw error
        } catch let error as CatalogueError {
            throw error
        } catch {
            throw CatalogueError("cannot read MOUS \(uid) from catalogue \(path): \(error)")
        }
    }

    // MARK: - Writing

    /// Deletes `mous` and the rows that hang off it; shared SOUS/GOUS/project rows stay.
    private func delete(_ mous: String) throws -> Bool {
        let ebs = try ebUids(ofMous: mous)
        let sbs = try db.query(
            "SELECT DOMAIN_ENTITY_ID FROM SCHED_BLOCK_STATUS WHERE PARENT_OBS_UNIT_SET_STATUS_ID = ?", [.text(mous)]
        )
        .compactMap { $0.string("DOMAIN_ENTITY_ID") }
        if let project = try db.query("SELECT PROJECT_CODE FROM AQUA_OUS WHERE OUS_STATUS_ENTITY_ID = ?", [.text(mous)])
            .first?.string("PROJECT_CODE")
        {
            try db.run(
                "DELETE FROM ASA_DELIVERY_STATUS WHERE DELIVERY_NAME = ?",
                [.text(Self.deliveryName(project: project, mous: mous))])
        }
        for eb in ebs {
            try db.run("DELETE FROM AQUA_EXECBLOCK WHERE EXECBLOCKUID = ?", [.text(eb)])
            try db.run("DELETE FROM ASDM_ARCHIVE_FILES WHERE ASDM_UID = ?", [.text(eb)])
        }
        for sb in sbs {
            try db.run("DELETE FROM SHIFTLOG_ENTRIES WHERE SE_SB_ID = ?", [.text(sb)])
            try db.run("DELETE FROM BMMV_SCHEDBLOCK WHERE ARCHIVE_UID = ?", [.text(sb)])
        }
        try db.run("DELETE FROM SCHED_BLOCK_STATUS WHERE PARENT_OBS_UNIT_SET_STATUS_ID = ?", [.text(mous)])
        try db.run("DELETE FROM AQUA_SESSION WHERE OUS_STATUS_ENTITY_ID = ?", [.text(mous)])
        try db.run("DELETE FROM ASA_SCIENCE WHERE MEMBER_OUSS_ID = ?", [.text(mous)])
        try db.run("DELETE FROM ASA_PRODUCT_FILES WHERE ASA_OUS_ID = ?", [.text(mous)])
        try db.run("DELETE FROM OBS_UNIT_SET_STATUS WHERE STATUS_ENTITY_ID = ?", [.text(mous)])
        return try db.run("DELETE FROM AQUA_OUS WHERE OUS_STATUS_ENTITY_ID = ?", [.text(mous)]) > 0
    }

    /// Refuses rows another MOUS already owns (an EB, SB or session cannot belong to two MOUSes).
    private func checkOwnership(_ record: MousRecord) throws {
        let mous = record.mous.rawValue
        for sb in [record.schedBlock] + (record.otherSchedBlocks ?? []) {
            if let owner = try db.query(
                "SELECT PARENT_OBS_UNIT_SET_STATUS_ID AS P FROM SCHED_BLOCK_STATUS WHERE DOMAIN_ENTITY_ID = ? OR STATUS_ENTITY_ID = ?",
                [.text(sb.uid.rawValue), .text(sb.statusUid.rawValue)]
            ).first?.string("P") {
                throw CatalogueError(
                    "scheduling block \(sb.uid) of \(mous) already belongs to MOUS \(owner); nothing imported")
            }
        }
        for eb in record.execBlocks {
            let rows = try db.query(
                """
                SELECT sbs.PARENT_OBS_UNIT_SET_STATUS_ID AS P FROM SHIFTLOG_ENTRIES se
                JOIN SCHED_BLOCK_STATUS sbs ON sbs.DOMAIN_ENTITY_ID = se.SE_SB_ID WHERE se.SE_EB_UID = ?
                """, [.text(eb.uid.rawValue)])
            if let owner = rows.first?.string("P") {
                throw CatalogueError("EB \(eb.uid) of \(mous) already belongs to MOUS \(owner); nothing imported")
            }
            if try !db.query("SELECT 1 FROM AQUA_EXECBLOCK WHERE EXECBLOCKUID = ?", [.text(eb.uid.rawValue)]).isEmpty {
                throw CatalogueError(
                    "EB \(eb.uid) of \(mous) already exists in AQUA_EXECBLOCK without a MOUS; nothing imported")
            }
        }
        for session in record.sessions {
            if let owner = try db.query(
                "SELECT OUS_STATUS_ENTITY_ID AS P FROM AQUA_SESSION WHERE SESSIONID = ?", [.text(session.id)]
            ).first?.string("P") {
                throw CatalogueError(
                    "session \(session.id) of \(mous) already belongs to MOUS \(owner); nothing imported")
            }
        }
    }

    private func insert(_ r: MousRecord) throws {
        let mous = r.mous.rawValue
        try db.run(
            "INSERT INTO ASA_PROJECT (CODE, PROJECT_UID) VALUES (?, ?) ON CONFLICT(CODE) DO UPDATE SET PROJECT_UID = excluded.PROJECT_UID",
            [.text(r.project), .text(r.obsProject.rawValue)])
        try db.run(
            "INSERT INTO OBS_UNIT_SET_STATUS (STATUS_ENTITY_ID, PARENT_OBS_UNIT_SET_STATUS_ID, OBS_PROJECT_STATUS_ID, OBS_PROJECT_ID) VALUES (?, NULL, ?, ?) ON CONFLICT(STATUS_ENTITY_ID) DO NOTHING",
            [.text(r.gous.rawValue), .text(r.projectStatus.rawValue), .text(r.obsProject.rawValue)])
        try db.run(
            """
            INSERT INTO OBS_UNIT_SET_STATUS (STATUS_ENTITY_ID, PARENT_OBS_UNIT_SET_STATUS_ID, OBS_PROJECT_STATUS_ID, OBS_PROJECT_ID) VALUES (?, ?, ?, ?)
            ON CONFLICT(STATUS_ENTITY_ID) DO UPDATE SET PARENT_OBS_UNIT_SET_STATUS_ID = excluded.PARENT_OBS_UNIT_SET_STATUS_ID
            """,
            [
                .text(r.sous.rawValue), .text(r.gous.rawValue), .text(r.projectStatus.rawValue),
                .text(r.obsProject.rawValue),
            ])
        try db.run(
            """
            INSERT INTO OBS_UNIT_SET_STATUS (STATUS_ENTITY_ID, DOMAIN_ENTITY_ID, PARENT_OBS_UNIT_SET_STATUS_ID, OBS_PROJECT_STATUS_ID, OBS_PROJECT_ID, XML)
            VALUES (?, ?, ?, ?, ?, ?)
            """,
            [
                .text(mous), .text(r.obsUnitSetPartId), .text(r.sous.rawValue), .text(r.projectStatus.rawValue),
                .text(r.obsProject.rawValue), .optional(r.ousStatusXml),
            ])
        try db.run(
            "INSERT INTO AQUA_OUS (OUS_STATUS_ENTITY_ID, OBSUNITSETUID, OBSUNITSETPARTID, PROJECT_CODE, OUS_TITLE, IMPORTED_AT) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .text(mous), .text(r.obsProject.rawValue), .text(r.obsUnitSetPartId), .text(r.project), .text(r.title),
                .text(UTCTime(Date()).fixedWidthDescription),
            ])
        if let release = r.releaseDate {
            try db.run(
                "INSERT OR REPLACE INTO ASA_DELIVERY_STATUS (DELIVERY_NAME, RELEASE_DATE) VALUES (?, ?)",
                [.text(Self.deliveryName(project: r.project, mous: mous)), .text(release.fixedWidthDescription)])
        }
        for sb in [r.schedBlock] + (r.otherSchedBlocks ?? []) {
            try db.run(
                "INSERT INTO BMMV_SCHEDBLOCK (ARCHIVE_UID, NAME) VALUES (?, ?)",
                [.text(sb.uid.rawValue), .text(sb.name)])
            try db.run(
                "INSERT INTO SCHED_BLOCK_STATUS (STATUS_ENTITY_ID, DOMAIN_ENTITY_ID, PARENT_OBS_UNIT_SET_STATUS_ID, DOMAIN_ENTITY_STATE) VALUES (?, ?, ?, ?)",
                [.text(sb.statusUid.rawValue), .text(sb.uid.rawValue), .text(mous), .optional(sb.state)])
        }
        // The import format attributes every EB to `schedBlock`.
        let sb = r.schedBlock
        for s in r.sessions {
            try db.run(
                "INSERT INTO AQUA_SESSION (SESSIONID, STARTTIME, ENDTIME, OUS_STATUS_ENTITY_ID) VALUES (?, ?, ?, ?)",
                [
                    .text(s.id), .optional(s.startTime?.fixedWidthDescription),
                    .optional(s.endTime?.fixedWidthDescription), .text(mous),
                ])
        }
        for eb in r.execBlocks {
            let uid = eb.uid.rawValue
            let start = SQLiteValue.optional(eb.startTime?.fixedWidthDescription)
            let end = SQLiteValue.optional(eb.endTime?.fixedWidthDescription)
            try db.run(
                "INSERT INTO AQUA_EXECBLOCK (EXECBLOCKUID, QA0STATUS, SESSIONID, STARTTIME, ENDTIME) VALUES (?, ?, ?, ?, ?)",
                [.text(uid), .text(eb.qa0.rawValue), .optional(eb.sessionId), start, end])
            try db.run(
                "INSERT INTO SHIFTLOG_ENTRIES (SE_EB_UID, SE_SB_ID, SE_QA0FLAG, SE_STARTTIME, SE_ENDTIME) VALUES (?, ?, ?, ?, ?)",
                [.text(uid), .text(sb.uid.rawValue), .text(eb.qa0.rawValue), start, end])
            try db.run(
                "INSERT INTO ASA_SCIENCE (ASDM_UID, MEMBER_OUSS_ID, GROUP_OUSS_ID, PROJECT_CODE, SCHEDBLOCK_NAME) VALUES (?, ?, ?, ?, ?)",
                [.text(uid), .text(mous), .text(r.gous.rawValue), .text(r.project), .text(sb.name)])
            if let asdm = eb.asdm {
                try db.run(
                    "INSERT INTO ASDM_ARCHIVE_FILES (ASDM_UID, NGAS_FILE_ID, FILE_SIZE, CHECKSUM, CHECKSUM_VARIANT) VALUES (?, ?, ?, ?, ?)",
                    [
                        .text(uid), .text(asdm.ngasFileId), .integer(asdm.size), .optional(asdm.checksum),
                        .optional(asdm.checksumVariant?.rawValue),
                    ])
            }
        }
        for p in r.products {
            try db.run(
                "INSERT INTO ASA_PRODUCT_FILES (ASA_OUS_ID, FILE_CLASS, NGAS_FILE_ID, FILE_SIZE, CHECKSUM, CHECKSUM_VARIANT) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    .text(mous), .text(p.fileClass.rawValue), .text(p.file.ngasFileId), .integer(p.file.size),
                    .optional(p.file.checksum), .optional(p.file.checksumVariant?.rawValue),
                ])
        }
    }

    // MARK: - Reading (the restore's queries)

    /// EBs of a MOUS: its SB via `SCHED_BLOCK_STATUS`, the EBs of that SB via `SHIFTLOG_ENTRIES`.
    private func ebUids(ofMous mous: String) throws -> [String] {
        try db.query(
            """
            SELECT se.SE_EB_UID FROM SCHED_BLOCK_STATUS sbs
            JOIN SHIFTLOG_ENTRIES se ON se.SE_SB_ID = sbs.DOMAIN_ENTITY_ID
            WHERE sbs.PARENT_OBS_UNIT_SET_STATUS_ID = ?
            """, [.text(mous)]
        ).compactMap { $0.string("SE_EB_UID") }
    }

    private func read(_ mous: String) throws -> MousRecord? {
        // The MOUS: AQUA_OUS joined to OBS_UNIT_SET_STATUS the way ALMA's PI views join them.
        guard
            let ous = try db.query(
                """
                SELECT o.OUS_STATUS_ENTITY_ID, o.PROJECT_CODE, o.OUS_TITLE, s.DOMAIN_ENTITY_ID, s.OBS_PROJECT_ID,
                       s.OBS_PROJECT_STATUS_ID, s.PARENT_OBS_UNIT_SET_STATUS_ID AS SOUS, g.PARENT_OBS_UNIT_SET_STATUS_ID AS GOUS, s.XML,
                       p.CODE
                FROM AQUA_OUS o
                JOIN OBS_UNIT_SET_STATUS s ON s.STATUS_ENTITY_ID = o.OUS_STATUS_ENTITY_ID
                     AND s.OBS_PROJECT_ID = o.OBSUNITSETUID AND s.DOMAIN_ENTITY_ID = o.OBSUNITSETPARTID
                LEFT JOIN OBS_UNIT_SET_STATUS g ON g.STATUS_ENTITY_ID = s.PARENT_OBS_UNIT_SET_STATUS_ID
                LEFT JOIN ASA_PROJECT p ON p.CODE = o.PROJECT_CODE
                WHERE o.OUS_STATUS_ENTITY_ID = ?
                """, [.text(mous)]
            ).first
        else { return nil }

        let project = ous.string("CODE") ?? ous.string("PROJECT_CODE") ?? ""
        func uid(_ text: String?, _ what: String) throws -> AlmaUid {
            guard let text, let uid = AlmaUid(text) else {
                throw CatalogueError("MOUS \(mous): \(what) is missing or invalid (\"\(text ?? "NULL")\")")
            }
            return uid
        }
        // Every SB of the MOUS with its state; SchedBlockSelection chooses (never the first by uid silently).
        let schedBlocks = try db.query(
            """
            SELECT sbs.STATUS_ENTITY_ID, sbs.DOMAIN_ENTITY_ID, sbs.DOMAIN_ENTITY_STATE, b.NAME FROM SCHED_BLOCK_STATUS sbs
            JOIN BMMV_SCHEDBLOCK b ON b.ARCHIVE_UID = sbs.DOMAIN_ENTITY_ID
            WHERE sbs.PARENT_OBS_UNIT_SET_STATUS_ID = ? ORDER BY sbs.DOMAIN_ENTITY_ID
            """, [.text(mous)]
        ).map { row in
            MousRecord.SchedBlock(
                uid: try uid(row.string("DOMAIN_ENTITY_ID"), "SchedBlock uid"), name: row.string("NAME") ?? "",
                statusUid: try uid(row.string("STATUS_ENTITY_ID"), "SBStatus uid"),
                state: row.string("DOMAIN_ENTITY_STATE"))
        }
        guard !schedBlocks.isEmpty else {
            throw CatalogueError("MOUS \(mous) has no scheduling block in SCHED_BLOCK_STATUS/BMMV_SCHEDBLOCK")
        }
        let selection = try SchedBlockSelection.choose(schedBlocks, mous: mous)

        let ebRows = try db.query(
            """
            SELECT e.EXECBLOCKUID, e.QA0STATUS, se.SE_QA0FLAG, e.SESSIONID, e.STARTTIME, e.ENDTIME,
                   f.NGAS_FILE_ID, f.FILE_SIZE, f.CHECKSUM, f.CHECKSUM_VARIANT
            FROM SCHED_BLOCK_STATUS sbs
            JOIN SHIFTLOG_ENTRIES se ON se.SE_SB_ID = sbs.DOMAIN_ENTITY_ID
            JOIN AQUA_EXECBLOCK e ON e.EXECBLOCKUID = se.SE_EB_UID
            LEFT JOIN ASDM_ARCHIVE_FILES f ON f.ASDM_UID = e.EXECBLOCKUID
            WHERE sbs.PARENT_OBS_UNIT_SET_STATUS_ID = ?
            ORDER BY e.STARTTIME, e.EXECBLOCKUID
            """, [.text(mous)])
        let execBlocks: [MousRecord.ExecBlock] = try ebRows.map { row in
            let uidText = row.string("EXECBLOCKUID") ?? ""
            guard let uid = AlmaUid(uidText) else {
                throw CatalogueError("AQUA_EXECBLOCK has an invalid uid \"\(uidText)\" for MOUS \(mous)")
            }
            let qaText = row.string("QA0STATUS") ?? row.string("SE_QA0FLAG") ?? ""
            guard let qa0 = QA0Status(lenient: qaText) else {
                throw CatalogueError("EB \(uid) has an unknown QA0 status \"\(qaText)\"")
            }
            return MousRecord.ExecBlock(
                uid: uid, qa0: qa0, sessionId: row.string("SESSIONID"),
                startTime: row.string("STARTTIME").flatMap(UTCTime.init(parsing:)),
                endTime: row.string("ENDTIME").flatMap(UTCTime.init(parsing:)),
                asdm: row.string("NGAS_FILE_ID").map {
                    ArchiveFile(
                        ngasFileId: $0, size: row.int64("FILE_SIZE") ?? 0, checksum: row.string("CHECKSUM"),
                        checksumVariant: row.string("CHECKSUM_VARIANT").flatMap(ArchiveChecksumVariant.init(rawValue:)))
                }
            )
        }

        // Sessions: the MOUS's own AQUA_SESSION rows, plus those its EBs point at (AQUA_EXECBLOCK -> AQUA_SESSION).
        let sessionRows = try db.query(
            """
            SELECT SESSIONID, STARTTIME, ENDTIME FROM AQUA_SESSION WHERE OUS_STATUS_ENTITY_ID = ?
            UNION
            SELECT s.SESSIONID, s.STARTTIME, s.ENDTIME FROM SCHED_BLOCK_STATUS sbs
            JOIN SHIFTLOG_ENTRIES se ON se.SE_SB_ID = sbs.DOMAIN_ENTITY_ID
            JOIN AQUA_EXECBLOCK e ON e.EXECBLOCKUID = se.SE_EB_UID
            JOIN AQUA_SESSION s ON s.SESSIONID = e.SESSIONID
            WHERE sbs.PARENT_OBS_UNIT_SET_STATUS_ID = ?
            ORDER BY SESSIONID
            """, [.text(mous), .text(mous)])
        let sessions = sessionRows.map { row in
            MousRecord.Session(
                id: row.string("SESSIONID") ?? "", startTime: row.string("STARTTIME").flatMap(UTCTime.init(parsing:)),
                endTime: row.string("ENDTIME").flatMap(UTCTime.init(parsing:)))
        }

        let products: [MousRecord.ProductFile] = try db.query(
            """
            SELECT FILE_CLASS, NGAS_FILE_ID, FILE_SIZE, CHECKSUM, CHECKSUM_VARIANT FROM ASA_PRODUCT_FILES WHERE ASA_OUS_ID = ? ORDER BY NGAS_FILE_ID
            """, [.text(mous)]
        ).compactMap { row in
            guard let fileClass = row.string("FILE_CLASS").flatMap(FileClass.init(rawValue:)),
                let id = row.string("NGAS_FILE_ID")
            else { return nil }
            return .init(
                fileClass: fileClass,
                file: ArchiveFile(
                    ngasFileId: id, size: row.int64("FILE_SIZE") ?? 0, checksum: row.string("CHECKSUM"),
                    checksumVariant: row.string("CHECKSUM_VARIANT").flatMap(ArchiveChecksumVariant.init(rawValue:))))
        }

        let release = try db.query(
            "SELECT RELEASE_DATE FROM ASA_DELIVERY_STATUS WHERE DELIVERY_NAME = ?",
            [.text(Self.deliveryName(project: project, mous: mous))]
        ).first?.string("RELEASE_DATE")

        return MousRecord(
            mous: try uid(ous.string("OUS_STATUS_ENTITY_ID"), "OUS status uid"), project: project,
            obsProject: try uid(ous.string("OBS_PROJECT_ID"), "ObsProject uid"),
            projectStatus: try uid(ous.string("OBS_PROJECT_STATUS_ID"), "ProjectStatus uid"),
            obsUnitSetPartId: ous.string("DOMAIN_ENTITY_ID") ?? "",
            sous: try uid(ous.string("SOUS"), "SOUS uid"), gous: try uid(ous.string("GOUS"), "GOUS uid"),
            title: ous.string("OUS_TITLE") ?? "",
            releaseDate: release.flatMap(UTCTime.init(parsing:)),
            schedBlock: selection.chosen,
            sessions: sessions, execBlocks: execBlocks, products: products, ousStatusXml: ous.string("XML"),
            otherSchedBlocks: selection.others.isEmpty ? nil : selection.others
        )
    }

    /// `ASA_DELIVERY_STATUS.DELIVERY_NAME`: `<project>_<sanitized MOUS>`.
    static func deliveryName(project: String, mous: String) -> String {
        "\(project)_\(mous.replacingAll(":", with: "_").replacingAll("/", with: "_"))"
    }
}
