/// What a restore will do, decided from the catalogue before anything is fetched.
public struct RestorePlan: Sendable, Codable, Hashable {
    /// A QA0-Pass execution block to restore.
    public struct ExecBlock: Sendable, Codable, Hashable {
        /// The EB uid (`AsdmRef/ExecBlockId`).
        public var uid: AlmaUid
        /// The directory under `rawdata/` and the MS base name (`AsdmDiskName`).
        public var asdmDiskName: AsdmDiskName
        /// Its session number (`SESSION_<n>`).
        public var sessionNumber: Int
        /// The archive file holding the ASDM.
        public var asdm: ArchiveFile
        /// Observation times, when known.
        public var startTime: UTCTime?
        public var endTime: UTCTime?

        public init(uid: AlmaUid, sessionNumber: Int, asdm: ArchiveFile, startTime: UTCTime?, endTime: UTCTime?) {
            self.uid = uid
            self.asdmDiskName = AsdmDiskName(uid)
            self.sessionNumber = sessionNumber
            self.asdm = asdm
            self.startTime = startTime
            self.endTime = endTime
        }

        /// `session_<n>`, the name the manifest and the pipeline use.
        public var sessionName: String { "session_\(sessionNumber)" }
    }

    /// The catalogue's record of the MOUS.
    public var record: MousRecord
    /// Numbered sessions (all of them, gaps included).
    public var sessions: SessionAssignment
    /// The QA0-Pass EBs, in the order they are restored (start time, then uid).
    public var execBlocks: [ExecBlock]
    /// Products to fetch into `products/`: `calibration` and `script` classes plus any `*pipeline_manifest.xml`,
    /// without `*product_ingestor.xml` and `*product_rename.txt`, by file id.
    public var products: [MousRecord.ProductFile]

    /// For a restore from a download package or the ALMA archive: where each product and ASDM is read from
    /// (nil: everything comes from the catalogue's archive store).
    public var package: PackageStaging?

    public init(
        record: MousRecord, sessions: SessionAssignment, execBlocks: [ExecBlock], products: [MousRecord.ProductFile],
        package: PackageStaging? = nil
    ) {
        self.record = record
        self.sessions = sessions
        self.execBlocks = execBlocks
        self.products = products
        self.package = package
    }

    /// The MOUS.
    public var mous: AlmaUid { record.mous }
    /// Bytes of the ASDM files.
    public var asdmBytes: Int64 { execBlocks.reduce(0) { $0 + $1.asdm.size } }
    /// Bytes of the products.
    public var productBytes: Int64 { products.reduce(0) { $0 + $1.file.size } }
    /// Everything to fetch, in bytes.
    public var totalBytes: Int64 { asdmBytes + productBytes }

    /// The `SESSION_1…N` intents: keyword and the Pass EBs of that session joined by `" | "` (empty for gaps),
    /// spelled as the pipeline's own PPRs spell them: the sanitised uid (`uid___A002_Xc7111c_X3979`, which is
    /// also the EB's `AsdmDiskName`), so executeppr matches them to the AsdmIdentifiers without translating.
    public var sessionIntents: [(keyword: String, value: String)] {
        sessions.sessions.map { session in
            let members = execBlocks.filter { $0.sessionNumber == session.number }.map(\.asdmDiskName.rawValue)
            return (session.keyword, members.joined(separator: " | "))
        }
    }

    /// A short human description (for `validate --plan` and logs): sessions, EBs, what is fetched.
    public var summaryLines: [String] {
        var lines = ["MOUS \(record.mous) of project \(record.project), SB \(record.schedBlock.name)"]
        if let package {
            lines.append("source: download package \(package.location)")
            lines.append(
                "  MOUS directory \(package.memberDirectory); ProjectStructure from \(package.structureSource)")
            if let casa = package.casaVersion {
                lines.append("  tables made with CASA \(casa), pipeline \(package.pipelineVersion ?? "unknown")")
            }
            for note in package.notes { lines.append("  note: \(note)") }
        }
        lines.append("sessions (\(sessions.source.rawValue)):")
        for (keyword, value) in sessionIntents {
            lines.append("  \(keyword) = \(value.isEmpty ? "(no restorable EB)" : value)")
        }
        for note in sessions.notes { lines.append("  note: \(note)") }
        lines.append("restore \(execBlocks.count) QA0-Pass EB(s), \(asdmBytes) bytes of ASDMs:")
        for eb in execBlocks {
            let from =
                package?.asdms[eb.asdmDiskName.rawValue].map { " from \($0.kind.rawValue) \($0.url ?? $0.path)" } ?? ""
            lines.append(
                "  \(eb.uid) -> rawdata/\(eb.asdmDiskName) (\(eb.sessionName), \(eb.asdm.ngasFileId), \(eb.asdm.size) bytes)\(from)"
            )
        }
        lines.append("\(package == nil ? "fetch" : "stage") \(products.count) product(s), \(productBytes) bytes:")
        let sources = Dictionary(
            (package?.products ?? []).map { ($0.name, $0.source) }, uniquingKeysWith: { a, _ in a })
        for product in products {
            let from = sources[product.file.ngasFileId].map { " from \($0)" } ?? ""
            lines.append(
                "  \(product.fileClass.rawValue) \(product.file.ngasFileId) (\(product.file.size) bytes)\(from)")
        }
        lines.append("total \(totalBytes) bytes")
        return lines
    }
}
