public import FoundationEssentials
internal import Glibc

/// `metadata.json`, written by step 1 (`prepare`) into the request's working area: everything later steps
/// (and a person) need to know about the restore, so that every step can resume from files alone.
///
/// Times are RFC 3339 UTC strings; uids are `uid://` strings. Encode with ``encoded()`` (pretty, sorted keys)
/// and read with ``decode(_:)``.
public struct RestoreMetadata: Codable, Sendable, Hashable {
    /// The schema id of this document.
    public static let schemaId = "dropbox-agent/metadata/v1"

    /// One execution block of the MOUS (all of them, whatever the QA0 status).
    public struct ExecBlock: Codable, Sendable, Hashable {
        public var uid: AlmaUid
        public var asdmDiskName: AsdmDiskName
        public var qa0: QA0Status
        /// Whether it is restored (QA0 Pass).
        public var restored: Bool
        /// Its session number (`SESSION_<n>`), if it is in one.
        public var sessionNumber: Int?
        /// Its session name (`session_<n>`), if it is in one.
        public var sessionName: String?
        public var startTime: UTCTime?
        public var endTime: UTCTime?
        /// The ASDM file to fetch (restored EBs).
        public var asdm: ArchiveFile?
    }

    /// One numbered session.
    public struct Session: Codable, Sendable, Hashable {
        public var number: Int
        public var name: String
        /// The id in the source (AQUA_SESSION / OUSStatus).
        public var id: String
        /// EB uids of the session (any QA0).
        public var execBlocks: [AlmaUid]
    }

    /// Always ``schemaId``.
    public var schema: String
    /// The request as validated.
    public var request: RestoreRequest
    /// The MOUS.
    public var mous: AlmaUid
    /// The project code.
    public var project: String
    /// SOUS and GOUS.
    public var sous: AlmaUid
    public var gous: AlmaUid
    /// Release date, when known.
    public var releaseDate: UTCTime?
    /// Where the sessions came from.
    public var sessionSource: SessionAssignment.Source
    /// Notes of the session mapping.
    public var sessionNotes: [String]
    /// The numbered sessions.
    public var sessions: [Session]
    /// Every EB.
    public var execBlocks: [ExecBlock]
    /// The products to fetch.
    public var products: [MousRecord.ProductFile]
    /// Bytes to fetch in all.
    public var totalBytes: Int64
    /// The PPR's RelativePath.
    public var relativePath: RelativePath
    /// The agent's version.
    public var agentVersion: String
    /// When the restore was planned.
    public var createdAt: UTCTime
    /// The CASA that restores and the one that made the tables: chosen in step 1, revised in step 3 when the
    /// manifest is first read there (catalogue source); step 5 runs the recorded installation. Absent in working
    /// areas written before it existed.
    public var casa: ChosenCASA?
    /// The whole plan, so later steps (rawdata, calibration, ppr) resume from this file alone.
    public var plan: RestorePlan

    /// The metadata of `plan` for `request`.
    public init(
        request: RestoreRequest, plan: RestorePlan, relativePath: RelativePath, agentVersion: String, createdAt: Date
    ) {
        let record = plan.record
        let planned = Dictionary(plan.execBlocks.map { ($0.uid, $0) }, uniquingKeysWith: { a, _ in a })
        self.schema = Self.schemaId
        self.request = request
        self.mous = record.mous
        self.project = record.project
        self.sous = record.sous
        self.gous = record.gous
        self.releaseDate = record.releaseDate
        self.sessionSource = plan.sessions.source
        self.sessionNotes = plan.sessions.notes
        self.sessions = plan.sessions.sessions.map {
            Session(number: $0.number, name: $0.name, id: $0.id, execBlocks: $0.execBlocks)
        }
        self.execBlocks = record.execBlocks.map { eb in
            let number = plan.sessions.sessionNumber(of: eb.uid)
            return ExecBlock(
                uid: eb.uid, asdmDiskName: eb.asdmDiskName, qa0: eb.qa0, restored: planned[eb.uid] != nil,
                sessionNumber: number, sessionName: number.map { "session_\($0)" },
                startTime: eb.startTime, endTime: eb.endTime, asdm: planned[eb.uid]?.asdm)
        }
        self.products = plan.products
        self.totalBytes = plan.totalBytes
        self.relativePath = relativePath
        self.agentVersion = agentVersion
        self.createdAt = UTCTime(createdAt)
        self.plan = plan
    }

    /// Pretty-printed JSON with sorted keys.
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Reads `metadata.json`.
    public static func decode(_ data: Data) throws -> RestoreMetadata {
        let metadata = try JSONDecoder().decode(RestoreMetadata.self, from: data)
        guard metadata.schema == schemaId else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: [], debugDescription: "metadata schema is \(metadata.schema), expected \(schemaId)"))
        }
        return metadata
    }
}
