internal import Foundation
internal import Delivery

/// Everything a restore needs to know about one MOUS, as a ``MetadataSource`` reports it.
///
/// The field names follow the catalogue import format (INTERFACES.md §1); the ALMA table each comes from is
/// noted on the field (see docs/catalog-format.md).
public struct MousRecord: Sendable, Codable, Hashable {
    /// The MOUS status uid (`ASA_OUS_ID`, `OUSStatusRef@entityId`).
    public var mous: AlmaUid
    /// The project code (`ASA_PROJECT.CODE`, PPR `ProposalCode`), e.g. `2017.1.00886.L`.
    public var project: String
    /// The ObsProject uid (PPR `ObsUnitSetRef@entityId`).
    public var obsProject: AlmaUid
    /// The ProjectStatus uid (PPR `ProjectStatusRef@entityId`).
    public var projectStatus: AlmaUid
    /// The MOUS's part id in the ObsProject (PPR `ObsUnitSetRef@partId`).
    public var obsUnitSetPartId: String
    /// The science-goal OUS status uid (parent of the MOUS).
    public var sous: AlmaUid
    /// The group OUS status uid (parent of the SOUS).
    public var gous: AlmaUid
    /// The OUS title (PPR `ObsUnitSetTitle`).
    public var title: String
    /// `ASA_DELIVERY_STATUS.RELEASE_DATE`; nil when unknown.
    public var releaseDate: UTCTime?
    /// The scheduling block of the MOUS (for a catalogue with several, the one ``SchedBlockSelection`` chose).
    public var schedBlock: SchedBlock
    /// The MOUS's other scheduling blocks (cancelled or superseded ones); nil when it has only one.
    public var otherSchedBlocks: [SchedBlock]?
    /// `AQUA_SESSION` rows of the MOUS (end times may be missing).
    public var sessions: [Session]
    /// Every execution block of the MOUS, whatever its QA0 status.
    public var execBlocks: [ExecBlock]
    /// `ASA_PRODUCT_FILES` rows of the MOUS.
    public var products: [ProductFile]
    /// The OUSStatus XML document, when the source has it (the authority for sessions).
    public var ousStatusXml: String?

    public init(
        mous: AlmaUid, project: String, obsProject: AlmaUid, projectStatus: AlmaUid, obsUnitSetPartId: String,
        sous: AlmaUid, gous: AlmaUid, title: String, releaseDate: UTCTime?, schedBlock: SchedBlock,
        sessions: [Session], execBlocks: [ExecBlock], products: [ProductFile], ousStatusXml: String?,
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

    /// A scheduling block (`BMMV_SCHEDBLOCK` + `SCHED_BLOCK_STATUS`).
    public struct SchedBlock: Sendable, Codable, Hashable {
        /// `BMMV_SCHEDBLOCK.ARCHIVE_UID` (PPR `SchedBlockRef@entityId`).
        public var uid: AlmaUid
        /// `BMMV_SCHEDBLOCK.NAME` (PPR `SBTitle`).
        public var name: String
        /// `SCHED_BLOCK_STATUS.STATUS_ENTITY_ID` (PPR `SBStatusRef@entityId`).
        public var statusUid: AlmaUid
        /// `SCHED_BLOCK_STATUS.DOMAIN_ENTITY_STATE` (`FullyObserved`, `Canceled`, …); nil when the source does not say.
        public var state: String?

        public init(uid: AlmaUid, name: String, statusUid: AlmaUid, state: String? = nil) {
            self.uid = uid
            self.name = name
            self.statusUid = statusUid
            self.state = state
        }
    }

    /// An observing session (`AQUA_SESSION`).
    public struct Session: Sendable, Codable, Hashable {
        /// `AQUA_SESSION.SESSIONID`.
        public var id: String
        /// `AQUA_SESSION.STARTTIME`.
        public var startTime: UTCTime?
        /// `AQUA_SESSION.ENDTIME`; may be missing (see ``SessionMapping``).
        public var endTime: UTCTime?

        public init(id: String, startTime: UTCTime?, endTime: UTCTime?) {
            self.id = id
            self.startTime = startTime
            self.endTime = endTime
        }
    }

    /// An execution block (`AQUA_EXECBLOCK`, `SHIFTLOG_ENTRIES`, plus its ASDM archive file).
    public struct ExecBlock: Sendable, Codable, Hashable {
        /// `AQUA_EXECBLOCK.EXECBLOCKUID`.
        public var uid: AlmaUid
        /// `AQUA_EXECBLOCK.QA0STATUS`.
        public var qa0: QA0Status
        /// `AQUA_EXECBLOCK.SESSIONID`, when known.
        public var sessionId: String?
        /// `AQUA_EXECBLOCK.STARTTIME`.
        public var startTime: UTCTime?
        /// `AQUA_EXECBLOCK.ENDTIME`.
        public var endTime: UTCTime?
        /// The archive-store file holding the whole ASDM as one gzip'd tar; nil when the source has none.
        public var asdm: ArchiveFile?

        public init(
            uid: AlmaUid, qa0: QA0Status, sessionId: String?, startTime: UTCTime?, endTime: UTCTime?, asdm: ArchiveFile?
        ) {
            self.uid = uid
            self.qa0 = qa0
            self.sessionId = sessionId
            self.startTime = startTime
            self.endTime = endTime
            self.asdm = asdm
        }

        /// The directory name of the ASDM under `rawdata/`.
        public var asdmDiskName: AsdmDiskName { AsdmDiskName(uid) }
    }

    /// A product file (`ASA_PRODUCT_FILES`).
    public struct ProductFile: Sendable, Codable, Hashable {
        /// `FILE_CLASS`.
        public var fileClass: FileClass
        /// The file in the archive store (`NGAS_FILE_ID`, `FILE_SIZE`, `CHECKSUM`, `CHECKSUM_VARIANT`).
        public var file: ArchiveFile

        public init(fileClass: FileClass, file: ArchiveFile) {
            self.fileClass = fileClass
            self.file = file
        }
    }
}

/// A file in the archive store: NGAS file id, size and checksum.
public struct ArchiveFile: Sendable, Codable, Hashable {
    /// The NGAS file id, also the local file name (validated safe: see ``ArchiveFile/isSafeFileId(_:)``).
    public var ngasFileId: String
    /// Size in bytes.
    public var size: Int64
    /// The NGAS checksum as a decimal string (CRC; `crc32` may be stored signed).
    public var checksum: String?
    /// The checksum variant.
    public var checksumVariant: ArchiveChecksumVariant?

    public init(ngasFileId: String, size: Int64, checksum: String?, checksumVariant: ArchiveChecksumVariant?) {
        self.ngasFileId = ngasFileId
        self.size = size
        self.checksum = checksum
        self.checksumVariant = checksumVariant
    }

    /// Whether `id` is safe as a flat file name: Delivery's rule for a name that denotes one file and is
    /// neither hidden nor an option (``PlainFileName/isOrdinary(_:)``, which is also what every archive store
    /// checks before a transfer), restricted to NGAS's own characters `[A-Za-z0-9._+-]`.
    public static func isSafeFileId(_ id: String) -> Bool {
        PlainFileName.isOrdinary(id)
            && id.unicodeScalars.allSatisfy { c in
                ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "." || c == "_"
                    || c == "-" || c == "+"
            }
    }
}

/// NGAS checksum variants (INTERFACES.md §1).
///
/// Same raw values as Delivery's `ChecksumVariant` (convert with `ChecksumVariant(rawValue: v.rawValue)`).
/// A separate type because Delivery's is not on this branch; named differently so that a module importing
/// both RestoreSteps and Delivery sees no ambiguity. The lead may replace it with a typealias after merging.
public enum ArchiveChecksumVariant: String, Sendable, Codable, Hashable, CaseIterable {
    /// zlib crc32, possibly stored signed (compare `& 0xffffffff`).
    case crc32
    /// CRC-32C (Castagnoli).
    case crc32c
    /// zlib crc32, unsigned.
    case crc32z
}

/// `ASA_PRODUCT_FILES.FILE_CLASS`.
public enum FileClass: String, Sendable, Codable, Hashable, CaseIterable {
    case calibration, script, science, qa, log, auxiliary
}

/// QA0 status of an execution block.
public enum QA0Status: String, Sendable, Codable, Hashable, CaseIterable {
    case pass = "Pass"
    case semiPass = "SemiPass"
    case fail = "Fail"
    case unset = "Unset"
    case pending = "Pending"

    /// Reads the values ALMA tables hold, leniently: case-insensitive, and `Pending…`/`Pass…` prefixes as the
    /// shiftlog's `SE_QA0FLAG LIKE 'Pass%'` queries do. `SemiPass` is tested before `Pass`.
    public init?(lenient text: String) {
        let lower = text.trimmingCharacters(in: .whitespaces).lowercased()
        if lower.hasPrefix("semipass") {
            self = .semiPass
        } else if lower.hasPrefix("pass") {
            self = .pass
        } else if lower.hasPrefix("fail") {
            self = .fail
        } else if lower.hasPrefix("unset") {
            self = .unset
        } else if lower.hasPrefix("pending") {
            self = .pending
        } else {
            return nil
        }
    }
}
