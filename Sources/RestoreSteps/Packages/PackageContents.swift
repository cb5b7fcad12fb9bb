internal import FoundationEssentials
internal import Glibc

/// Where one execution block's ASDM is in a package.
public struct AsdmSource: Sendable, Codable, Hashable {
    public enum Kind: String, Sendable, Codable, Hashable {
        /// The untarred `…/raw/uid___….asdm.sdm` directory (linked into `rawdata/`, as scriptForPI does).
        case directory
        /// A local tar holding it (unpacked into `rawdata/` by step 2).
        case tar
        /// A tar at `url`, fetched by step 2 through the cache, then unpacked.
        case remoteTar
    }
    public var kind: Kind
    /// The directory or tar path; for ``Kind/remoteTar`` the file name.
    public var path: String
    /// The URL of a ``Kind/remoteTar``.
    public var url: String?
    /// Bytes (the tar's size, or the directory tree's); 0 when unknown.
    public var size: Int64
    /// Why a local tar cannot be complete (no end-of-archive blocks), when reading it showed so.
    public var incomplete: String?

    public init(kind: Kind, path: String, url: String? = nil, size: Int64, incomplete: String? = nil) {
        self.kind = kind
        self.path = path
        self.url = url
        self.size = size
        self.incomplete = incomplete
    }
}

/// A product staged into `products/` under the name the manifest gives it, from a file of the package.
public struct StagedProduct: Sendable, Codable, Hashable {
    /// The name in `products/` (the pipeline's name, as the manifest spells it).
    public var name: String
    /// The file in the package (absolute path).
    public var source: String
    public var size: Int64

    public init(name: String, source: String, size: Int64) {
        self.name = name
        self.source = source
        self.size = size
    }
}

/// How a restore from a download package gets its files: recorded in the plan by step 1, used by steps 2 and 3.
public struct PackageStaging: Sendable, Codable, Hashable {
    /// What the request named (a path or URL), or the archive's DataLink URL.
    public var location: String
    /// The MOUS directory the calibration and script products were read from.
    public var memberDirectory: String
    /// Where the PPR's ProjectStructure came from: the package's `pprequest.xml` name, or `defaults`.
    public var structureSource: String
    /// The manifest's `casaversion` and `pipeline_version` (the CASA and pipeline that made the tables).
    public var casaVersion: String?
    public var pipelineVersion: String?
    /// The products to stage into `products/`.
    public var products: [StagedProduct]
    /// Each planned EB's ASDM, by disk name.
    public var asdms: [String: AsdmSource]
    /// Things a person may want to know (a renamed file, a default used).
    public var notes: [String]
    /// Set when the manifest asks for what the modular restore cannot reproduce (``CASASelection/modularRefusal(for:manifestName:)``):
    /// only a pipeline CASA installation may then be chosen.
    public var modularRefusal: RestoreError?

    public init(
        location: String, memberDirectory: String, structureSource: String, casaVersion: String?,
        pipelineVersion: String?,
        products: [StagedProduct], asdms: [String: AsdmSource], notes: [String], modularRefusal: RestoreError? = nil
    ) {
        self.location = location
        self.memberDirectory = memberDirectory
        self.structureSource = structureSource
        self.casaVersion = casaVersion
        self.pipelineVersion = pipelineVersion
        self.products = products
        self.asdms = asdms
        self.notes = notes
        self.modularRefusal = modularRefusal
    }
}

/// What step 1 found in a download package, before planning: the MOUS tree, the files of its `calibration/`
/// and `script/` folders, the ASDMs, and the parsed manifest and calibration PPR.
public struct PackageContents: Sendable {
    /// A parsed document and its file name in the package.
    public struct Named<Document: Sendable>: Sendable {
        public var name: String
        public var document: Document
        public init(name: String, document: Document) {
            self.name = name
            self.document = document
        }
    }

    public var location: String
    public var tree: MemberTree
    /// Regular files of `calibration/`, name → absolute path.
    public var calibrationFiles: [String: String]
    /// Regular files of `script/`, name → absolute path.
    public var scriptFiles: [String: String]
    /// The ASDMs the package holds, by disk name (`uid___A002_…`).
    public var asdms: [String: AsdmSource]
    /// The pipeline manifest ``PipelineManifest/select(from:)`` picks among the calibration files.
    public var manifest: Named<PipelineManifest>?
    /// `script/*pprequest.xml`, when the package has one.
    public var calibrationPPR: Named<CalibrationPPR>?
    /// The project code when the tree does not carry it (from the tar names or the archive).
    public var projectHint: String?
    /// The release date (archive source only).
    public var releaseDate: UTCTime?
    /// What reading the package noticed (an unreadable pprequest.xml, a directory preferred to a tar, …).
    public var notes: [String] = []

    public init(
        location: String, tree: MemberTree, calibrationFiles: [String: String], scriptFiles: [String: String],
        asdms: [String: AsdmSource], manifest: Named<PipelineManifest>?, calibrationPPR: Named<CalibrationPPR>?,
        projectHint: String? = nil, releaseDate: UTCTime? = nil
    ) {
        self.location = location
        self.tree = tree
        self.calibrationFiles = calibrationFiles
        self.scriptFiles = scriptFiles
        self.asdms = asdms
        self.manifest = manifest
        self.calibrationPPR = calibrationPPR
        self.projectHint = projectHint
        self.releaseDate = releaseDate
    }

    /// Sizes of the files, for the plan (0 when a file cannot be stat'ed).
    func size(of path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? UInt).map { Int64($0) } ?? 0
    }
}
