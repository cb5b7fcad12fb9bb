internal import Delivery
public import FoundationEssentials
internal import Glibc

/// A pipeline manifest (`<oussid>.<recipe>.pipeline_manifest.xml`, root `piperesults`), the parts
/// `hifa_restoredata` reads (brief §5.2): the first `ous`, its sessions with `caltables`, and per `asdm`
/// the `finalflags` and `applycmds` file names.
public struct PipelineManifest: Sendable, Hashable {
    /// One `<asdm name="uid___….ms">`.
    public struct Asdm: Sendable, Hashable {
        /// `asdm@name`: the MS base name, `uid___A002_Xc7111c_X3979.ms`.
        public var name: String
        /// `finalflags@name`: the `.flagversions.tgz` file.
        public var finalFlags: String?
        /// `applycmds@name`: the `.calapply.txt` file.
        public var applyCmds: String?
        /// Whether the `asdm` holds a `hifa_renorm` element: PL2022–2023 renormalisation, which
        /// `hifa_restoredata` (`_do_renormalize`) runs at restore time with the element's attributes as arguments.
        public var renormAtRestore: Bool
        /// Child elements of unknown meaning (not `finalflags`, `applycmds`, `finalms`, `image`, `hifa_renorm`):
        /// something a newer pipeline may act on per EB at restore time.
        public var unknownElements: [String]

        public init(
            name: String, finalFlags: String?, applyCmds: String?, renormAtRestore: Bool = false,
            unknownElements: [String] = []
        ) {
            self.name = name
            self.finalFlags = finalFlags
            self.applyCmds = applyCmds
            self.renormAtRestore = renormAtRestore
            self.unknownElements = unknownElements
        }
    }

    /// One `<session name="session_1">`.
    public struct Session: Sendable, Hashable {
        /// `session@name`.
        public var name: String
        /// `caltables@name`: the session's caltables tarball.
        public var caltables: String?
        /// The session's `asdm` elements.
        public var asdms: [Asdm]

        public init(name: String, caltables: String?, asdms: [Asdm]) {
            self.name = name
            self.caltables = caltables
            self.asdms = asdms
        }
    }

    /// `ous@name`, the sanitized MOUS (`uid___A001_X1284_X265f`).
    public var ousName: String
    /// `casaversion@name`.
    public var casaVersion: String?
    /// `pipeline_version@name`.
    public var pipelineVersion: String?
    /// `procedure_name@name`.
    public var procedureName: String?
    /// The sessions, in document order.
    public var sessions: [Session]
    /// `aux_products_file@name`.
    public var auxProductsFile: String?
    /// Elements of the `ous` or of a `session` whose name contains `selfcal` (selfcal resources).
    public var selfcalElements: [String]

    public init(
        ousName: String, casaVersion: String?, pipelineVersion: String?, procedureName: String?, sessions: [Session],
        auxProductsFile: String?,
        selfcalElements: [String] = []
    ) {
        self.ousName = ousName
        self.casaVersion = casaVersion
        self.pipelineVersion = pipelineVersion
        self.procedureName = procedureName
        self.sessions = sessions
        self.auxProductsFile = auxProductsFile
        self.selfcalElements = selfcalElements
    }

    /// `asdm` children that carry no restore-time action (pipeline `manifest.py`: `add_asdm`, `add_asdm_imlist`).
    static let knownAsdmChildren: Set<String> = ["finalflags", "applycmds", "finalms", "image", "hifa_renorm"]

    /// What this manifest asks `hifa_restoredata` to do beyond import, flag restore and applycal of the listed
    /// caltables — the modular restore reproduces only those. Empty for PL2024+ manifests, whose
    /// renormalisation is an ordinary caltable in the apply lists. In order: `hifa_renorm` elements
    /// (`manifestRenormAtRestore`), selfcal resources (`manifestSelfcal`), unknown `asdm` children
    /// (`manifestUnknownRestoreAction`).
    public var restoreTimeActions: [(code: RestoreError.Code, description: String)] {
        var result: [(code: RestoreError.Code, description: String)] = []
        let asdms = sessions.flatMap(\.asdms)
        let renorm = asdms.filter(\.renormAtRestore).map(\.name)
        if !renorm.isEmpty {
            result.append(
                (
                    .manifestRenormAtRestore,
                    "<hifa_renorm> for \(renorm.joined(separator: ", ")) (ALMA IF renormalisation run at restore time, pipeline 2022–2023)"
                ))
        }
        if !selfcalElements.isEmpty {
            result.append((.manifestSelfcal, "selfcal resources (<\(selfcalElements.joined(separator: ">, <"))>)"))
        }
        for asdm in asdms where !asdm.unknownElements.isEmpty {
            result.append(
                (
                    .manifestUnknownRestoreAction,
                    "<\(asdm.unknownElements.joined(separator: ">, <"))> in <asdm name=\"\(asdm.name)\">, an element the modular restore does not know"
                ))
        }
        return result
    }

    /// Parses a manifest document.
    ///
    /// - Parameter name: how to call the document in error messages (its file name).
    /// - Throws: ``RestoreError`` `manifestUnreadable`.
    public static func parse(_ xml: String, name: String = "pipeline manifest") throws(RestoreError) -> PipelineManifest
    {
        let tree: XMLTree
        do {
            tree = try XMLTree.parse(string: xml, name: name)
        } catch {
            throw RestoreError(
                .manifestUnreadable, error.message, hint: "The calibration products may be damaged; fetch them again.")
        }
        return try read(tree, name: name)
    }

    /// Parses the manifest file at `path`.
    ///
    /// - Throws: ``RestoreError`` `manifestUnreadable`.
    public static func parse(file path: String) throws(RestoreError) -> PipelineManifest {
        let tree: XMLTree
        do {
            tree = try XMLTree.parse(file: path)
        } catch {
            throw RestoreError(
                .manifestUnreadable, error.message, hint: "The calibration products may be damaged; fetch them again.")
        }
        return try read(tree, name: path.split(separator: "/").last.map(String.init) ?? path)
    }

    private static func read(_ tree: XMLTree, name: String) throws(RestoreError) -> PipelineManifest {
        guard let root = tree.root, root.localName == "piperesults" else {
            throw RestoreError(
                .manifestUnreadable,
                "\(name) is not a pipeline manifest (root element is <\(tree.root?.localName ?? "")>, expected <piperesults>)"
            )
        }
        guard let ous = root.element("ous") else {
            throw RestoreError(.manifestUnreadable, "\(name) has no <ous> element")
        }
        func nameAttribute(_ node: XMLNode?) -> String? {
            guard let value = node?.attribute("name")?.trimmingWhitespace, !value.isEmpty else { return nil }
            return value
        }
        let sessions = ous.elements("session").map { session in
            Session(
                name: nameAttribute(session) ?? "",
                caltables: nameAttribute(session.element("caltables")),
                asdms: session.elements("asdm").map { asdm in
                    Asdm(
                        name: nameAttribute(asdm) ?? "", finalFlags: nameAttribute(asdm.element("finalflags")),
                        applyCmds: nameAttribute(asdm.element("applycmds")),
                        renormAtRestore: asdm.element("hifa_renorm") != nil,
                        unknownElements: asdm.elements.map(\.localName).filter { !knownAsdmChildren.contains($0) })
                }
            )
        }
        let selfcal = (ous.elements + ous.elements("session").flatMap(\.elements)).map(\.localName).filter {
            $0.lowercased().contains("selfcal")
        }
        return PipelineManifest(
            ousName: nameAttribute(ous) ?? "",
            casaVersion: nameAttribute(ous.element("casaversion")),
            pipelineVersion: nameAttribute(ous.element("pipeline_version")),
            procedureName: nameAttribute(ous.element("procedure_name")),
            sessions: sessions,
            auxProductsFile: nameAttribute(ous.element("aux_products_file")),
            selfcalElements: selfcal
        )
    }

    /// The manifest `hifa_restoredata` would pick in `directory` (see ``select(from:)``), or nil if none.
    ///
    /// - Throws: the file system's error when the directory cannot be listed.
    public static func select(in directory: URL) throws -> URL? {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        return select(from: names).map { directory.appendingPathComponent($0) }
    }

    /// The manifest `hifa_restoredata` would pick among `fileNames` (brief §6.2): all `*pipeline_manifest.xml`;
    /// if more than one, those matching `*cal*pipeline_manifest.xml` if any; then the first in sorted order.
    public static func select(from fileNames: [String]) -> String? {
        let suffix = "pipeline_manifest.xml"
        let all = fileNames.filter { $0.hasSuffix(suffix) }.sorted()
        guard all.count > 1 else { return all.first }
        let calibration = all.filter { $0.dropLast(suffix.count).contains("cal") }
        return (calibration.isEmpty ? all : calibration).first
    }
}

extension String {
    var trimmingWhitespace: String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
