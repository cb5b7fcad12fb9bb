internal import FoundationEssentials
internal import Glibc
internal import Delivery

/// The leaf types of a MOUS description: the checked domain types of a ``MousRecord`` (``CheckedMousFields``) or the
/// strings an import file spells (``WrittenMousFields``, ``CatalogueImportFile/Mous``). Both share one field list,
/// ``MousFields``: a field added there is in the record and in the import file at once.
public protocol MousFieldTypes: Sendable {
    /// ALMA uids (`uid://A002/X…/X…`).
    associatedtype Uid: Sendable, Codable, Hashable
    /// Times (ISO 8601, UTC).
    associatedtype Time: Sendable, Codable, Hashable
    /// An execution block's QA0 status.
    associatedtype QA0: Sendable, Codable, Hashable
    /// A file in the archive store (an execution block's ASDM).
    associatedtype File: Sendable, Codable, Hashable
    /// A product file row.
    associatedtype Product: Sendable, Codable, Hashable
    /// How the sessions are held: always (a record) or perhaps left out (an import file).
    associatedtype Sessions: MousSessionList
}

/// The sessions of a MOUS as ``MousFields`` holds them: an array, or an optional one whose key may be absent.
public protocol MousSessionList: Sendable, Codable, Hashable {
    static func decode<K: CodingKey>(from container: KeyedDecodingContainer<K>, forKey key: K) throws -> Self
    func encode<K: CodingKey>(to container: inout KeyedEncodingContainer<K>, forKey key: K) throws
}

extension Array: MousSessionList where Element == MousSession<UTCTime> {
    public static func decode<K: CodingKey>(from container: KeyedDecodingContainer<K>, forKey key: K) throws -> Self {
        try container.decode(Self.self, forKey: key)
    }
    public func encode<K: CodingKey>(to container: inout KeyedEncodingContainer<K>, forKey key: K) throws {
        try container.encode(self, forKey: key)
    }
}

extension Optional: MousSessionList where Wrapped == [MousSession<String>] {
    public static func decode<K: CodingKey>(from container: KeyedDecodingContainer<K>, forKey key: K) throws -> Self {
        try container.decodeIfPresent(Wrapped.self, forKey: key)
    }
    public func encode<K: CodingKey>(to container: inout KeyedEncodingContainer<K>, forKey key: K) throws {
        try container.encodeIfPresent(self, forKey: key)
    }
}

/// The checked leaves of a ``MousRecord``.
public enum CheckedMousFields: MousFieldTypes {
    public typealias Uid = AlmaUid
    public typealias Time = UTCTime
    public typealias QA0 = QA0Status
    public typealias File = ArchiveFile
    public typealias Product = MousProductFile
    public typealias Sessions = [MousSession<UTCTime>]
}

/// Everything a restore needs to know about one MOUS, as a ``MetadataSource`` reports it.
///
/// The field names follow the catalogue import format (INTERFACES.md §1), which shares this field list
/// (``MousFields``); the ALMA table each comes from is noted on the field (see docs/catalog-format.md).
public typealias MousRecord = MousFields<CheckedMousFields>

/// The fields of one MOUS, with the leaf types `T` (``MousFieldTypes``).
public struct MousFields<T: MousFieldTypes>: Sendable, Codable, Hashable {
    public typealias SchedBlock = MousSchedBlock<T.Uid>
    public typealias Session = MousSession<T.Time>
    public typealias ExecBlock = MousExecBlock<T>

    /// The MOUS status uid (`ASA_OUS_ID`, `OUSStatusRef@entityId`).
    public var mous: T.Uid
    /// The project code (`ASA_PROJECT.CODE`, PPR `ProposalCode`), e.g. `2017.1.00886.L`.
    public var project: String
    /// The ObsProject uid (PPR `ObsUnitSetRef@entityId`).
    public var obsProject: T.Uid
    /// The ProjectStatus uid (PPR `ProjectStatusRef@entityId`).
    public var projectStatus: T.Uid
    /// The MOUS's part id in the ObsProject (PPR `ObsUnitSetRef@partId`).
    public var obsUnitSetPartId: String
    /// The science-goal OUS status uid (parent of the MOUS).
    public var sous: T.Uid
    /// The group OUS status uid (parent of the SOUS).
    public var gous: T.Uid
    /// The OUS title (PPR `ObsUnitSetTitle`).
    public var title: String
    /// `ASA_DELIVERY_STATUS.RELEASE_DATE`; nil when unknown.
    public var releaseDate: T.Time?
    /// The scheduling block of the MOUS (for a catalogue with several, the one ``SchedBlockSelection`` chose).
    public var schedBlock: SchedBlock
    /// `AQUA_SESSION` rows of the MOUS (end times may be missing).
    public var sessions: T.Sessions
    /// Every execution block of the MOUS, whatever its QA0 status.
    public var execBlocks: [ExecBlock]
    /// `ASA_PRODUCT_FILES` rows of the MOUS.
    public var products: [T.Product]
    /// The OUSStatus XML document, when the source has it (the authority for sessions).
    public var ousStatusXml: String?
    /// The MOUS's other scheduling blocks (`SCHED_BLOCK_STATUS` rows with the same parent: cancelled or superseded
    /// SBs); nil when it has only one. Which one a restore uses is decided by ``SchedBlockSelection``.
    public var otherSchedBlocks: [SchedBlock]?

    public init(
        mous: T.Uid, project: String, obsProject: T.Uid, projectStatus: T.Uid, obsUnitSetPartId: String,
        sous: T.Uid, gous: T.Uid, title: String, releaseDate: T.Time?, schedBlock: SchedBlock,
        sessions: T.Sessions, execBlocks: [ExecBlock], products: [T.Product], ousStatusXml: String?,
        otherSchedBlocks: [SchedBlock]? = nil
    ) {
        self.mous = mous
        self.project = project
        self.obsProject = obsProject
        self.projectStatus = projectStatus
        self.obsUnitSetPartId = obsUnitSetPartId
        self.sous = sous
        self.gous = gous
        self.title = title
        self.releaseDate = releaseDate
        self.schedBlock = schedBlock
        self.sessions = sessions
        self.execBlocks = execBlocks
        self.products = products
        self.ousStatusXml = ousStatusXml
        self.otherSchedBlocks = otherSchedBlocks
    }

    private enum CodingKeys: String, CodingKey {
        case mous, project, obsProject, projectStatus, obsUnitSetPartId, sous, gous, title, releaseDate, schedBlock
        case sessions, execBlocks, products, ousStatusXml, otherSchedBlocks
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            mous: try c.decode(T.Uid.self, forKey: .mous), project: try c.decode(String.self, forKey: .project),
            obsProject: try c.decode(T.Uid.self, forKey: .obsProject),
            projectStatus: try c.decode(T.Uid.self, forKey: .projectStatus),
            obsUnitSetPartId: try c.decode(String.self, forKey: .obsUnitSetPartId),
            sous: try c.decode(T.Uid.self, forKey: .sous), gous: try c.decode(T.Uid.self, forKey: .gous),
            title: try c.decode(String.self, forKey: .title),
            releaseDate: try c.decodeIfPresent(T.Time.self, forKey: .releaseDate),
            schedBlock: try c.decode(SchedBlock.self, forKey: .schedBlock),
            sessions: try T.Sessions.decode(from: c, forKey: .sessions),
            execBlocks: try c.decode([ExecBlock].self, forKey: .execBlocks),
            products: try c.decode([T.Product].self, forKey: .products),
            ousStatusXml: try c.decodeIfPresent(String.self, forKey: .ousStatusXml),
            otherSchedBlocks: try c.decodeIfPresent([SchedBlock].self, forKey: .otherSchedBlocks))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mous, forKey: .mous)
        try c.encode(project, forKey: .project)
        try c.encode(obsProject, forKey: .obsProject)
        try c.encode(projectStatus, forKey: .projectStatus)
        try c.encode(obsUnitSetPartId, forKey: .obsUnitSetPartId)
        try c.encode(sous, forKey: .sous)
        try c.encode(gous, forKey: .gous)
        try c.encode(title, forKey: .title)
        try c.encodeIfPresent(releaseDate, forKey: .releaseDate)
        try c.encode(schedBlock, forKey: .schedBlock)
        try sessions.encode(to: &c, forKey: .sessions)
        try c.encode(execBlocks, forKey: .execBlocks)
        try c.encode(products, forKey: .products)
        try c.encodeIfPresent(ousStatusXml, forKey: .ousStatusXml)
        try c.encodeIfPresent(otherSchedBlocks, forKey: .otherSchedBlocks)
    }
}

extension MousFields where T == CheckedMousFields {
    /// A product file (`ASA_PRODUCT_FILES`).
    public typealias ProductFile = MousProductFile
}

/// A scheduling block (`BMMV_SCHEDBLOCK` + `SCHED_BLOCK_STATUS`).
public struct MousSchedBlock<Uid: Sendable & Codable & Hashable>: Sendable, Codable, Hashable {
    /// `BMMV_SCHEDBLOCK.ARCHIVE_UID` (PPR `SchedBlockRef@entityId`).
    public var uid: Uid
    /// `BMMV_SCHEDBLOCK.NAME` (PPR `SBTitle`).
    public var name: String
    /// `SCHED_BLOCK_STATUS.STATUS_ENTITY_ID` (PPR `SBStatusRef@entityId`).
    public var statusUid: Uid
    /// `SCHED_BLOCK_STATUS.DOMAIN_ENTITY_STATE` (`FullyObserved`, `Canceled`, …); nil when the source does not say.
    public var state: String?

    public init(uid: Uid, name: String, statusUid: Uid, state: String? = nil) {
        self.uid = uid
        self.name = name
        self.statusUid = statusUid
        self.state = state
    }
}

/// An observing session (`AQUA_SESSION`).
public struct MousSession<Time: Sendable & Codable & Hashable>: Sendable, Codable, Hashable {
    /// `AQUA_SESSION.SESSIONID`.
    public var id: String
    /// `AQUA_SESSION.STARTTIME`.
    public var startTime: Time?
    /// `AQUA_SESSION.ENDTIME`; may be missing (see ``SessionMapping``).
    public var endTime: Time?

    public init(id: String, startTime: Time?, endTime: Time?) {
        self.id = id
        self.startTime = startTime
        self.endTime = endTime
    }
}

/// An execution block (`AQUA_EXECBLOCK`, `SHIFTLOG_ENTRIES`, plus its ASDM archive file).
public struct MousExecBlock<T: MousFieldTypes>: Sendable, Codable, Hashable {
    /// `AQUA_EXECBLOCK.EXECBLOCKUID`.
    public var uid: T.Uid
    /// `AQUA_EXECBLOCK.QA0STATUS`.
    public var qa0: T.QA0
    /// `AQUA_EXECBLOCK.SESSIONID`, when known.
    public var sessionId: String?
    /// `AQUA_EXECBLOCK.STARTTIME`.
    public var startTime: T.Time?
    /// `AQUA_EXECBLOCK.ENDTIME`.
    public var endTime: T.Time?
    /// The archive-store file holding the whole ASDM as one gzip'd tar; nil when the source has none.
    public var asdm: T.File?

    public init(uid: T.Uid, qa0: T.QA0, sessionId: String?, startTime: T.Time?, endTime: T.Time?, asdm: T.File?) {
        self.uid = uid
        self.qa0 = qa0
        self.sessionId = sessionId
        self.startTime = startTime
        self.endTime = endTime
        self.asdm = asdm
    }
}

extension MousExecBlock where T == CheckedMousFields {
    /// The directory name of the ASDM under `rawdata/`.
    public var asdmDiskName: AsdmDiskName { AsdmDiskName(uid) }
}

/// A product file of a ``MousRecord`` (`ASA_PRODUCT_FILES`).
public struct MousProductFile: Sendable, Codable, Hashable {
    /// `FILE_CLASS`.
    public var fileClass: FileClass
    /// The file in the archive store (`NGAS_FILE_ID`, `FILE_SIZE`, `CHECKSUM`, `CHECKSUM_VARIANT`).
    public var file: ArchiveFile

    public init(fileClass: FileClass, file: ArchiveFile) {
        self.fileClass = fileClass
        self.file = file
    }
}
