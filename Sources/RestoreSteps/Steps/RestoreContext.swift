public import Delivery
internal import FoundationEssentials
public import Glibc
public import Logging

/// Where and how a site's restores get their data, run CASA and deliver: everything a step needs besides
/// the request. Built once by the agent from its configuration.
public struct RestoreServices: Sendable {
    /// The metadata catalogue (embedded SQLite by default).
    public var catalogue: any MetadataSource
    /// The archive store (NGAS over HTTP, or a local directory).
    public var store: any ArchiveStore
    /// The shared cache of fetched files; nil disables caching.
    public var cache: FileCache?
    /// Files fetched at once.
    public var parallelTransfers: Int
    /// Restore MOUSes whose data are still proprietary.
    public var allowProprietary: Bool
    /// argv of an asdmExportLight-compatible exporter (`{eb}` and `{dir}` are replaced); nil: ASDM tarballs
    /// come from the archive store.
    public var rawdataCommand: [String]?
    /// Limits for unpacking archives.
    public var archiveLimits: ArchiveLimits
    /// The CASA installations requests may choose from.
    public var casaInstallations: [CASAInstallation]
    /// The installation used when neither the request nor the manifest decides.
    public var defaultCASA: String?
    /// `casa.versionPolicy`: which installations may restore tables made by the manifest's `casaversion`.
    public var casaVersionPolicy: CASAVersionPolicy
    /// `casa.installOnDemand`: where a modular venv of the manifest's version is created on first use; nil: off.
    public var casaOnDemand: CASASelection.OnDemand?
    /// A CASA run longer than this is killed.
    public var casaTimeout: Duration
    /// Between SIGTERM and SIGKILL of the CASA process group.
    public var casaKillGrace: Duration
    /// How many execution blocks the modular runner restores at once, each in its own CASA process.
    public var casaParallelExecBlocks: Int
    /// The download area, one directory per request.
    public var downloadDirectory: String
    /// Public URL of the download area (`https://host/downloads`); nil gives `file://` URLs.
    public var downloadBaseURL: String?
    /// Group of delivered files (nil: the agent's).
    public var deliveryGroup: gid_t?
    /// Mode of a delivery's directories (`delivery.directoryMode`, default 0755: a web server may serve them).
    public var deliveryDirectoryMode: mode_t = 0o755
    /// Mode of delivered files (`delivery.fileMode`, default 0644).
    public var deliveryFileMode: mode_t = 0o644
    /// How long a delivery stays (`delivery.retentionDays`, in seconds); nil: for ever.
    public var deliveryRetention: Double? = 14 * 86400
    /// Written into `metadata.json`.
    public var agentVersion: String
    /// Where requests may take their data from besides the catalogue (download packages, the ALMA archive).
    public var sources: SourceSettings
    /// Transfer options for packages on web servers and the ALMA archive.
    public var httpOptions: HTTPStoreOptions
    /// Free space needed before the raw fetch, as a multiple of the raw ASDM bytes (`agent.diskSpaceFactor`;
    /// 0 disables the check). See ``DiskSpaceCheck``.
    public var diskSpaceFactor: Double
    /// Where step 5 runs CASA (`execution`): the local host (default) or a batch scheduler.
    public var execution: ExecutionSettings

    public init(
        catalogue: any MetadataSource, store: any ArchiveStore, cache: FileCache?, parallelTransfers: Int = 2,
        allowProprietary: Bool = false, rawdataCommand: [String]? = nil, archiveLimits: ArchiveLimits = ArchiveLimits(),
        casaInstallations: [CASAInstallation], defaultCASA: String?, casaVersionPolicy: CASAVersionPolicy = .default,
        casaOnDemand: CASASelection.OnDemand? = nil, casaTimeout: Duration = .seconds(48 * 3600),
        casaKillGrace: Duration = .seconds(10), casaParallelExecBlocks: Int = ModularRunner.defaultParallelExecBlocks,
        downloadDirectory: String, downloadBaseURL: String? = nil,
        deliveryGroup: gid_t? = nil, agentVersion: String, sources: SourceSettings = SourceSettings(),
        httpOptions: HTTPStoreOptions = HTTPStoreOptions(), diskSpaceFactor: Double = DiskSpaceCheck.defaultFactor,
        execution: ExecutionSettings = ExecutionSettings()
    ) {
        self.catalogue = catalogue
        self.store = store
        self.cache = cache
        self.parallelTransfers = parallelTransfers
        self.allowProprietary = allowProprietary
        self.rawdataCommand = rawdataCommand
        self.archiveLimits = archiveLimits
        self.casaInstallations = casaInstallations
        self.defaultCASA = defaultCASA
        self.casaVersionPolicy = casaVersionPolicy
        self.casaOnDemand = casaOnDemand
        self.casaTimeout = casaTimeout
        self.casaKillGrace = casaKillGrace
        self.casaParallelExecBlocks = max(1, casaParallelExecBlocks)
        self.downloadDirectory = downloadDirectory
        self.downloadBaseURL = downloadBaseURL
        self.deliveryGroup = deliveryGroup
        self.agentVersion = agentVersion
        self.sources = sources
        self.httpOptions = httpOptions
        self.diskSpaceFactor = diskSpaceFactor
        self.execution = execution
    }
}

/// One restore: the request, its working area and the site's services.
public struct RestoreContext: Sendable {
    /// The validated request.
    public var request: RestoreRequest
    /// The request's name in the spool; names the delivery directory.
    public var requestName: String
    /// A unique id of this restore (the agent's job id): the delivery directory is named after it.
    public var restoreId: String
    /// The working area (`SCIPIPE_ROOTDIR` of the restore).
    public var workArea: WorkArea
    public var services: RestoreServices
    public var logger: Logger
    /// What step 6 delivered in this run, handed to whoever runs the pipeline (``DeliverStep`` sets it).
    public let delivered = DeliveredRecord()

    public init(
        request: RestoreRequest, requestName: String, restoreId: String, root: String, services: RestoreServices,
        logger: Logger
    ) {
        self.request = request
        self.requestName = requestName
        self.restoreId = restoreId
        self.workArea = WorkArea(root: root)
        self.services = services
        self.logger = logger
    }

    /// The six production steps, in order.
    public static var steps: [any PipelineStep<RestoreContext>] {
        [PrepareStep(), RawdataStep(), CalibrationStep(), PPRStep(), CASAStep(), DeliverStep()]
    }

    /// Chooses the CASA installation for this restore and checks it against `casa.versionPolicy`
    /// (``CASASelection/choose(requested:manifestCasaVersion:manifestRead:installations:defaultName:policy:onDemand:step:)``).
    public func chooseCASA(
        manifestVersion: String?, manifestRead: Bool, step: StepName, modularRefusal: RestoreError? = nil
    ) throws(RestoreError) -> (CASAInstallation, ChosenCASA) {
        try CASASelection.choose(
            requested: request.casa, manifestCasaVersion: manifestVersion, manifestRead: manifestRead,
            installations: services.casaInstallations, defaultName: services.defaultCASA,
            policy: services.casaVersionPolicy,
            onDemand: services.casaOnDemand, step: step, modularRefusal: modularRefusal)
    }

    /// `metadata.json`, written by step 1; every later step reads it (so steps resume after a restart).
    public func metadata() throws(RestoreError) -> RestoreMetadata {
        guard let data = FileManager.default.contents(atPath: workArea.metadataFile) else {
            throw RestoreError(
                .workingAreaDamaged, "\(workArea.metadataFile) is missing; step 1 must run again",
                hint: "Remove the working area and drop the request again.")
        }
        do { return try RestoreMetadata.decode(data) } catch {
            throw RestoreError(.workingAreaDamaged, "\(workArea.metadataFile) cannot be read: \(error)")
        }
    }
}

/// The per-request working area: `<root>/metadata.json`, `<root>/logs/`, and the pipeline's tree
/// `<root>/<RelativePath>/{rawdata,working,products}` (`SCIPIPE_ROOTDIR=<root>`).
public struct WorkArea: Sendable, Hashable {
    public var root: String
    public init(root: String) { self.root = root }

    public var metadataFile: String { root + "/metadata.json" }
    public var logs: String { root + "/logs" }
    /// Files being fetched; hard links to the cache.
    public var downloads: String { root + "/downloads" }
    public func mousDirectory(_ relativePath: RelativePath) -> String { root + "/" + relativePath.rawValue }
    public func rawdata(_ relativePath: RelativePath) -> String { mousDirectory(relativePath) + "/rawdata" }
    public func working(_ relativePath: RelativePath) -> String { mousDirectory(relativePath) + "/working" }
    public func products(_ relativePath: RelativePath) -> String { mousDirectory(relativePath) + "/products" }
}
