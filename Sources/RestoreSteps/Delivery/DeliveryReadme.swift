internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// The `README.txt` of a delivery, for the astronomer who downloads it. Pure: built from facts, no file system.
public struct DeliveryReadme: Sendable {
    /// One delivered file.
    public struct File: Sendable, Equatable {
        public var path: String
        public var size: Int64
        public var sha256: String
        public init(path: String, size: Int64, sha256: String) {
            self.path = path
            self.size = size
            self.sha256 = sha256
        }
    }

    public var mous: String
    public var project: String
    /// `uid (session)` of each execution block.
    public var execBlocks: [String]
    public var requestName: String
    public var requestId: String?
    public var agentVersion: String
    /// The CASA that restored the data and the one that made the calibration tables.
    public var restoredWith: String?
    public var tablesMadeWith: String?
    public var warning: String?
    /// What each delivered product is (one line each: name, then what it holds).
    public var products: [(name: String, what: String)]
    /// Quick-look plots (relative paths).
    public var plots: [String] = []
    public var links: DeliveryLinks
    public var expiresAt: String?
    public var files: [File]

    public init(
        mous: String, project: String, execBlocks: [String], requestName: String, requestId: String?,
        agentVersion: String,
        restoredWith: String?, tablesMadeWith: String?, warning: String?, products: [(name: String, what: String)],
        plots: [String] = [], links: DeliveryLinks, expiresAt: String?, files: [File]
    ) {
        self.mous = mous
        self.project = project
        self.execBlocks = execBlocks
        self.requestName = requestName
        self.requestId = requestId
        self.agentVersion = agentVersion
        self.restoredWith = restoredWith
        self.tablesMadeWith = tablesMadeWith
        self.warning = warning
        self.products = products
        self.plots = plots
        self.links = links
        self.expiresAt = expiresAt
        self.files = files
    }

    /// Bytes as a short human figure (binary units).
    public static func size(_ bytes: Int64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) bytes" : TextEssentials.fixed(value, fractionDigits: 1) + " " + units[unit]
    }

    /// The text (UTF-8, LF line ends).
    public var text: String {
        var lines = [
            "ALMA data restored for you by dropbox-agent \(agentVersion)",
            "",
            "MOUS:              \(mous)",
            "Project:           \(project)",
            "Execution blocks:  \(execBlocks.joined(separator: ", "))",
            "Request:           \(requestName)" + (requestId.map { " (id \($0))" } ?? ""),
        ]
        if let restoredWith { lines.append("Restored with:     CASA \(restoredWith)") }
        lines.append("Calibration made with: CASA \(tablesMadeWith ?? "(the pipeline manifest does not say)")")
        if let warning { lines += ["", "WARNING: \(warning)"] }
        lines += ["", "What is here", "------------"]
        for product in products { lines.append("  \(product.name)\n      \(product.what)") }
        if !plots.isEmpty {
            lines += ["", "Quick-look plots (PNG; look at these first):"]
            lines += plots.map { "  \($0)  \(links.url(of: $0))" }
        }
        lines += ["", "Download", "--------", "  \(links.url)"]
        if let command = links.downloadCommand { lines += ["  All of it with one command:", "    \(command)"] }
        if let expiresAt {
            lines += ["", "This delivery is removed on \(expiresAt) (UTC). Download it before then."]
        }
        lines += [
            "", "Open it in CASA",
            "---------------",
            "  listobs(vis='<name>.ms')          # what is in a measurement set",
            "  plotms(vis='<name>.ms', xaxis='uvdist', yaxis='amp', ydatacolumn='corrected')",
            "", "Files (size in bytes, SHA-256; MANIFEST.json has the same list as JSON)",
            "----------------------------------------------------------------------",
        ]
        let total = files.reduce(Int64(0)) { $0 + $1.size }
        for file in files { lines.append("  \(file.sha256)  \(String(file.size).leftPadded(12))  \(file.path)") }
        lines.append(
            "  total: \(files.count) files, \(Self.size(total)) (\(total) bytes), README.txt, urls.txt and MANIFEST.json not counted"
        )
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
