public import FoundationEssentials
internal import Glibc

/// A table read from an IVOA VOTable document (TAP and DataLink answers), `TABLEDATA` serialization only.
///
/// Reading rules: elements are matched by local name, whatever the namespace (VOTable 1.1–1.4 and none); the
/// table is that of the first `RESOURCE type="results"`, else of the first `RESOURCE` holding a `TABLE`;
/// columns are its `FIELD`s (``Field/name``, with ``Field/id`` kept); rows are `TR`/`TD`, a `TD` whose text is
/// empty (after trimming white space) is `nil`. `INFO name="QUERY_STATUS"` (in that resource or directly under
/// `VOTABLE`) gives ``queryStatus`` and ``queryStatusMessage``; `ERROR` makes ``parse(_:name:)`` throw.
public struct VOTable: Sendable, Hashable {
    /// One column.
    public struct Field: Sendable, Hashable {
        /// The `name` attribute (TAP: the column name).
        public var name: String
        /// The `ID` attribute, if any.
        public var id: String?
        /// The `datatype` attribute (`char`, `long`, `boolean`, …), if any.
        public var datatype: String?

        /// Creates a field.
        public init(name: String, id: String? = nil, datatype: String? = nil) {
            self.name = name
            self.id = id
            self.datatype = datatype
        }
    }

    /// One row; values are read by field name (or ID), case-insensitively.
    public struct Row: Sendable, Hashable {
        /// The cells in field order; `nil` for an empty `TD`.
        public let values: [String?]
        private let index: ColumnIndex

        fileprivate init(values: [String?], index: ColumnIndex) {
            self.values = values
            self.index = index
        }

        /// The value of the field named `field` (case-insensitive; a field's `ID` also matches), or nil if the
        /// cell is empty or there is no such field.
        public subscript(_ field: String) -> String? {
            guard let column = index.column(field), column < values.count else { return nil }
            return values[column]
        }

        /// Whether the table has a field named `field` (see ``subscript(_:)``).
        public func has(_ field: String) -> Bool { index.column(field) != nil }
    }

    /// Field name → column, lower-cased; names win over IDs.
    fileprivate struct ColumnIndex: Sendable, Hashable {
        let columns: [String: Int]

        init(_ fields: [Field]) {
            var columns: [String: Int] = [:]
            for (i, field) in fields.enumerated().reversed() {
                if let id = field.id { columns[id.lowercased()] = i }
            }
            for (i, field) in fields.enumerated().reversed() { columns[field.name.lowercased()] = i }
            self.columns = columns
        }

        func column(_ name: String) -> Int? { columns[name.lowercased()] }
    }

    /// The columns.
    public let fields: [Field]
    /// The rows, in document order.
    public let rows: [Row]
    /// The `value` of `INFO name="QUERY_STATUS"` (`OK`, `OVERFLOW`, `ERROR`), if present.
    public let queryStatus: String?
    /// The text content of that `INFO` (the error message of a failed query), if any.
    public let queryStatusMessage: String?

    /// Creates a table from values (for tests and callers that build answers).
    public init(fields: [Field], rows: [[String?]], queryStatus: String? = nil, queryStatusMessage: String? = nil) {
        let index = ColumnIndex(fields)
        self.fields = fields
        self.rows = rows.map { Row(values: $0, index: index) }
        self.queryStatus = queryStatus
        self.queryStatusMessage = queryStatusMessage
    }

    /// Whether the server said the result was truncated (`QUERY_STATUS` `OVERFLOW`).
    public var isOverflow: Bool { queryStatus?.uppercased() == "OVERFLOW" }

    /// Reads a VOTable document.
    ///
    /// - Parameters:
    ///   - data: the document.
    ///   - name: what it is (a URL, a fixture name), for error messages.
    /// - Returns: the table.
    /// - Throws: ``RestoreError`` `archiveQueryFailed` when `QUERY_STATUS` is `ERROR` (the message is the
    ///   server's); `archiveResponseUnreadable` when the document is not well-formed XML, not a VOTable, has no
    ///   results table, uses a serialization other than `TABLEDATA` (`BINARY`, `BINARY2`, `FITS`), or a row has
    ///   more cells than there are fields.
    public static func parse(_ data: Data, name: String) throws(RestoreError) -> VOTable {
        let tree: XMLTree
        do {
            tree = try XMLTree.parse(string: String(decoding: data, as: UTF8.self), name: name)
        } catch {
            throw unreadable("\(error)")
        }
        guard let root = tree.root, root.localName == "VOTABLE" else {
            throw unreadable("\(name): not a VOTable (root element '\(tree.root?.localName ?? "")')")
        }
        let resources = root.descendants("RESOURCE")
        let results =
            resources.first { $0.attribute("type")?.lowercased() == "results" }
            ?? resources.first { $0.element("TABLE") != nil }
        var infos = root.elements("INFO")
        if let results { infos = results.elements("INFO") + infos }
        let status = infos.first { $0.attribute("name")?.uppercased() == "QUERY_STATUS" }
        let statusValue = status?.attribute("value")
        let statusText = status.map { $0.trimmedText }.flatMap { $0.isEmpty ? nil : $0 }
        if statusValue?.uppercased() == "ERROR" {
            throw RestoreError(
                .archiveQueryFailed,
                "the archive reported an error for \(name): \(statusText ?? "no message")",
                hint: "check the query and the archive's status page; a repeated failure is worth reporting")
        }
        guard let results else { throw unreadable("\(name): no RESOURCE with a results table") }
        guard let table = results.element("TABLE") else {
            throw unreadable("\(name): the results RESOURCE has no TABLE")
        }
        let fields = table.elements("FIELD").map {
            Field(
                name: $0.attribute("name") ?? $0.attribute("ID") ?? "", id: $0.attribute("ID"),
                datatype: $0.attribute("datatype"))
        }
        var rows: [[String?]] = []
        if let dataElement = table.element("DATA") {
            guard let tableData = dataElement.element("TABLEDATA") else {
                let kind = dataElement.elements.first?.localName ?? "none"
                throw unreadable(
                    "\(name): unsupported serialization \(kind) (only TABLEDATA is read)",
                    hint: "ask the service for FORMAT=votable with TABLEDATA serialization")
            }
            for (number, tr) in tableData.elements("TR").enumerated() {
                var cells = tr.elements("TD").map { td -> String? in
                    let text = td.trimmedText
                    return text.isEmpty ? nil : text
                }
                guard cells.count <= fields.count else {
                    throw unreadable("\(name): row \(number + 1) has \(cells.count) cells for \(fields.count) fields")
                }
                cells += [String?](repeating: nil, count: fields.count - cells.count)
                rows.append(cells)
            }
        }
        return VOTable(fields: fields, rows: rows, queryStatus: statusValue, queryStatusMessage: statusText)
    }

    private static func unreadable(_ message: String, hint: String? = nil) -> RestoreError {
        RestoreError(.archiveResponseUnreadable, message, hint: hint, isTransient: false)
    }
}
