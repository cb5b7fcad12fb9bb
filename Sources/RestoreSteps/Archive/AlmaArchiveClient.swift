public import Delivery
internal import FoundationEssentials
internal import Glibc

/// What the ALMA archive's ObsCore table says about one MOUS.
public struct AlmaArchiveRecord: Sendable, Hashable {
    /// The member OUS (`member_ous_uid`).
    public var mous: AlmaUid
    /// Its group OUS (`group_ous_uid`).
    public var groupOus: AlmaUid
    /// The project code (`proposal_id`, e.g. `2017.1.01185.S`).
    public var project: String
    /// `Public` or `Proprietary` (`data_rights`).
    public var dataRights: String
    /// When the data become (or became) public (`obs_release_date`), if stated.
    public var releaseDate: UTCTime?

    /// Creates a record.
    public init(mous: AlmaUid, groupOus: AlmaUid, project: String, dataRights: String, releaseDate: UTCTime?) {
        self.mous = mous
        self.groupOus = groupOus
        self.project = project
        self.dataRights = dataRights
        self.releaseDate = releaseDate
    }

    /// Whether ``dataRights`` is `Public` (case-insensitive).
    public var isPublic: Bool { dataRights.lowercased() == "public" }
}

/// A client of the ALMA archive's public IVOA services: TAP (`tap/sync`) to look a MOUS up in `ivoa.obscore`,
/// DataLink (`datalink/sync`) to list its files.
///
/// With a token, every request carries `Authorization: Bearer <token>`. The requests are exactly those of the
/// shared spec (`coord/packages.md`); ``lookupURL(_:)`` and ``dataLinkURL(_:)`` build them, and the parsing
/// (``record(from:mous:)``, ``dataLinkRows(from:mous:)``, ``restoreFiles(_:)``) is pure, so both can be tested
/// without a network.
public struct AlmaArchiveClient: Sendable {
    /// The archive's base URL, without a trailing `/` (e.g. `https://almascience.org`).
    public let baseURL: String
    /// The bearer token, if one is configured.
    public let token: String?
    /// Timeouts, redirects, TLS.
    public let options: HTTPStoreOptions

    /// Creates a client.
    ///
    /// - Parameters:
    ///   - baseURL: the archive (config `sources.almaArchive.url`); trailing `/` are dropped.
    ///   - token: the bearer token (contents of `sources.almaArchive.tokenFile`); surrounding white space is
    ///     dropped, an empty token counts as none.
    ///   - options: transfer tuning.
    public init(baseURL: String, token: String? = nil, options: HTTPStoreOptions = .init()) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        let trimmed = token?.trimmingWhitespaceAndNewlines()
        self.token = trimmed?.isEmpty == false ? trimmed : nil
        self.options = options
    }

    /// The headers sent with every request: `Authorization: Bearer <token>` when a token is set.
    public var requestHeaders: [String: String] {
        token.map { ["Authorization": "Bearer \($0)"] } ?? [:]
    }

    // MARK: - Requests

    /// The ADQL of the MOUS lookup, exactly:
    /// `SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date FROM ivoa.obscore WHERE member_ous_uid = '<uid>'`.
    public static func lookupADQL(_ mous: AlmaUid) -> String {
        "SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date "
            + "FROM ivoa.obscore WHERE member_ous_uid = '\(mous.rawValue)'"
    }

    /// `<base>/tap/sync?REQUEST=doQuery&LANG=ADQL&FORMAT=votable&QUERY=<percent-encoded ADQL>`.
    public func lookupURL(_ mous: AlmaUid) -> String {
        "\(baseURL)/tap/sync?REQUEST=doQuery&LANG=ADQL&FORMAT=votable&QUERY=\(Self.encode(Self.lookupADQL(mous)))"
    }

    /// `<base>/datalink/sync?ID=<percent-encoded uid>`.
    public func dataLinkURL(_ mous: AlmaUid) -> String {
        "\(baseURL)/datalink/sync?ID=\(Self.encode(mous.rawValue))"
    }

    /// Percent-encodes everything but the unreserved characters `A-Z a-z 0-9 - . _ ~` (so a space is `%20`).
    static func encode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let scalar = Unicode.Scalar(byte)
            if ("A"..."Z").contains(scalar) || ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
                || "-._~".unicodeScalars.contains(scalar)
            {
                result.unicodeScalars.append(scalar)
            } else {
                result += "%" + TextEssentials.hex(byte)
            }
        }
        return result
    }

    // MARK: - Lookup

    /// Looks `mous` up in `ivoa.obscore` (TAP sync).
    ///
    /// - Returns: the record, or nil when the archive has no row for the MOUS.
    /// - Throws: ``RestoreError``: `archiveQueryFailed`, `archiveResponseUnreadable`, `archiveAccessDenied`,
    ///   `archiveUnavailable` (transient for network trouble and 5xx), `cancelled`.
    public func lookup(_ mous: AlmaUid) async throws(RestoreError) -> AlmaArchiveRecord? {
        let table = try await votable(lookupURL(mous), what: "TAP lookup of \(mous)")
        return try Self.record(from: table, mous: mous)
    }

    /// The record for `mous` in a TAP answer: its first row whose `member_ous_uid` is `mous`.
    ///
    /// - Throws: ``RestoreError`` `archiveResponseUnreadable` when a column is missing or a value malformed.
    public static func record(from table: VOTable, mous: AlmaUid) throws(RestoreError) -> AlmaArchiveRecord? {
        let columns = ["member_ous_uid", "group_ous_uid", "proposal_id", "data_rights", "obs_release_date"]
        guard
            table.rows.isEmpty
                || columns.allSatisfy({ column in table.fields.contains { $0.name.lowercased() == column } })
        else {
            throw RestoreError(
                .archiveResponseUnreadable,
                "TAP answer for \(mous) lacks columns: expected \(columns.joined(separator: ", ")), got "
                    + table.fields.map(\.name).joined(separator: ", "))
        }
        guard let row = table.rows.first(where: { $0["member_ous_uid"].flatMap { AlmaUid($0) } == mous }) else {
            return nil
        }
        func bad(_ column: String, _ value: String?) -> RestoreError {
            RestoreError(
                .archiveResponseUnreadable,
                "TAP answer for \(mous): \(column) '\(value ?? "")' is not valid")
        }
        guard let gous = row["group_ous_uid"].flatMap({ AlmaUid($0) }) else {
            throw bad("group_ous_uid", row["group_ous_uid"])
        }
        guard let project = row["proposal_id"] else { throw bad("proposal_id", nil) }
        var release: UTCTime?
        if let text = row["obs_release_date"] {
            guard let time = UTCTime(parsing: text) else { throw bad("obs_release_date", text) }
            release = time
        }
        return AlmaArchiveRecord(
            mous: mous, groupOus: gous, project: project, dataRights: row["data_rights"] ?? "", releaseDate: release)
    }

    // MARK: - DataLink

    /// Lists the links of `mous` (DataLink sync): every row, nested service rows included
    /// (``DataLinkRow/isServiceRow``).
    ///
    /// - Throws: ``RestoreError``: `archiveUnknownMous` when the service reports an error for the MOUS itself or
    ///   lists nothing; the codes of ``lookup(_:)`` otherwise.
    public func files(_ mous: AlmaUid) async throws(RestoreError) -> [DataLinkRow] {
        let table = try await votable(dataLinkURL(mous), what: "DataLink of \(mous)")
        return try Self.dataLinkRows(from: table, mous: mous)
    }

    /// The rows of a DataLink answer for `mous`.
    ///
    /// - Throws: ``RestoreError`` `archiveUnknownMous` for an error row about the MOUS itself (no access URL, no
    ///   service) or an empty answer; `archiveResponseUnreadable` when `ID` is missing or `content_length`
    ///   / `readable` is malformed.
    public static func dataLinkRows(from table: VOTable, mous: AlmaUid) throws(RestoreError) -> [DataLinkRow] {
        var rows: [DataLinkRow] = []
        for (number, row) in table.rows.enumerated() {
            func bad(_ column: String, _ value: String?) -> RestoreError {
                RestoreError(
                    .archiveResponseUnreadable,
                    "DataLink answer for \(mous), row \(number + 1): \(column) '\(value ?? "")' is not valid")
            }
            guard let id = row["ID"] else { throw bad("ID", nil) }
            var length: Int64?
            if let text = row["content_length"] {
                guard let value = Int64(text), value >= 0 else { throw bad("content_length", text) }
                length = value
            }
            var readable: Bool?
            if let text = row["readable"] {
                switch text.lowercased() {
                case "true", "t", "1": readable = true
                case "false", "f", "0": readable = false
                default: throw bad("readable", text)
                }
            }
            rows.append(
                DataLinkRow(
                    id: id, accessURL: row["access_url"], serviceDef: row["service_def"],
                    errorMessage: row["error_message"], semantics: row["semantics"], description: row["description"],
                    contentType: row["content_type"], contentLength: length, readable: readable))
        }
        if let failure = rows.first(where: {
            $0.errorMessage != nil && $0.accessURL == nil && $0.serviceDef == nil
                && (AlmaUid($0.id) == mous || $0.id == mous.rawValue)
        }) {
            throw RestoreError(
                .archiveUnknownMous,
                "the archive's DataLink service has no files for \(mous): \(failure.errorMessage ?? "")",
                hint: "check the MOUS uid; it may not be archived or not yet released")
        }
        guard rows.contains(where: { $0.errorMessage == nil }) else {
            throw RestoreError(
                .archiveUnknownMous, "the archive's DataLink service lists no files for \(mous)",
                hint: "check the MOUS uid; it may not be archived or not yet released")
        }
        return rows
    }

    /// The files a restore fetches: the auxiliary tar (calibration, scripts, logs) and the raw ASDM tars.
    ///
    /// The auxiliary tar is the link with semantics `#auxiliary`, else one whose name ends in `_auxiliary.tar`;
    /// raw tars are the links whose name ends in `.asdm.sdm.tar` (`#progenitor`). Product tars (`#this`) are never
    /// chosen, nor are service rows and error rows. File names come from the last path component of the access
    /// URL and must be safe (``DataLinkRow/fileName``). Raw tars come sorted by name, each once.
    /// - Throws: ``RestoreError``: `archiveNoAuxiliary` (none, or several different ones),
    ///   `archiveUnsafeFileName`, `archiveAccessDenied` when a chosen link is marked not readable.
    public static func restoreFiles(
        _ rows: [DataLinkRow]
    ) throws(RestoreError) -> (
        auxiliary: DataLinkRow, raw: [DataLinkRow]
    ) {
        let usable = rows.filter {
            !$0.isServiceRow && $0.accessURL != nil && $0.errorMessage == nil && $0.semantics?.lowercased() != "#this"
        }
        func named(_ row: DataLinkRow) throws(RestoreError) -> String {
            guard let name = row.fileName else {
                throw RestoreError(
                    .archiveUnsafeFileName,
                    "the archive link '\(row.accessURL ?? "")' does not end in a safe file name",
                    hint: "file names must be plain names (no '/', '..', control characters, leading '.' or '-')")
            }
            return name
        }
        var auxiliaries = usable.filter { $0.semantics?.lowercased() == "#auxiliary" }
        if auxiliaries.isEmpty {
            auxiliaries = usable.filter { $0.lastPathComponent?.hasSuffix("_auxiliary.tar") == true }
        }
        var auxiliaryNames: [String: DataLinkRow] = [:]
        for row in auxiliaries { auxiliaryNames[try named(row)] = auxiliaryNames[try named(row)] ?? row }
        guard auxiliaryNames.count == 1, let auxiliary = auxiliaryNames.values.first else {
            let failed = rows.first { $0.semantics?.lowercased() == "#auxiliary" && $0.errorMessage != nil }
            let detail =
                auxiliaryNames.isEmpty
                ? "DataLink lists no auxiliary tar (#auxiliary, *_auxiliary.tar)"
                    + (failed?.errorMessage.map { "; the service said: \($0)" } ?? "")
                : "DataLink lists several auxiliary tars: " + auxiliaryNames.keys.sorted().joined(separator: ", ")
            throw RestoreError(
                .archiveNoAuxiliary, detail,
                hint: "the auxiliary tar holds the calibration and scripts a restore needs; without it the MOUS "
                    + "cannot be restored from this archive")
        }
        var raw: [String: DataLinkRow] = [:]
        for row in usable where row.lastPathComponent?.hasSuffix(".asdm.sdm.tar") == true {
            let name = try named(row)
            if raw[name] == nil { raw[name] = row }
        }
        let chosen = [auxiliary] + raw.keys.sorted().compactMap { raw[$0] }
        if let closed = chosen.first(where: { $0.readable == false }) {
            throw RestoreError(
                .archiveAccessDenied,
                "the archive marks '\(closed.fileName ?? "")' as not readable with the current identity",
                hint: "the data are proprietary: configure `sources.almaArchive.tokenFile` with a token of an "
                    + "authorised account")
        }
        return (auxiliary, Array(chosen.dropFirst()))
    }

    /// A store that fetches `rows` (by ``DataLinkRow/fileName``) from their access URLs with this client's
    /// headers; rows without a safe file name or access URL are left out.
    public func fileStore(for rows: [DataLinkRow]) -> URLFileStore {
        var urls: [String: String] = [:]
        for row in rows {
            if let name = row.fileName, let url = row.accessURL { urls[name] = url }
        }
        return URLFileStore(urls: urls, headers: requestHeaders, options: options)
    }

    // MARK: - Availability (dropbox-agent check)

    /// What the TAP service's VOSI availability resource says.
    public struct Availability: Sendable, Hashable {
        /// `<available>`: whether the service accepts queries.
        public var available: Bool
        /// The first `<note>`, if any.
        public var note: String?
    }

    /// `<base>/tap/availability`: the VOSI availability resource every TAP service has (TAP 1.1 §2, VOSI 1.1 §3.3).
    public var availabilityURL: String { "\(baseURL)/tap/availability" }

    /// A real request to the archive with the configured token: `GET <base>/tap/availability`. A service that
    /// checks bearer tokens answers 401 to an invalid or expired one (RFC 6750 §3.1), so the token is verified too.
    ///
    /// - Throws: ``RestoreError``: `archiveAccessDenied` for 401/403 (the server's `WWW-Authenticate` and body
    ///   excerpt in the message), `archiveUnavailable` when the archive cannot be reached or answers another
    ///   error, `archiveResponseUnreadable` when the answer is no VOSI availability document, `cancelled`.
    public func availability() async throws(RestoreError) -> Availability {
        let what = "VOSI availability of \(baseURL)"
        let document: HTTPDocument
        do throws(DeliveryError) {
            document = try await HTTPDocument.fetch(
                url: availabilityURL, headers: requestHeaders, maxBytes: 1 << 20, options: options)
            if document.status == 401 || document.status == 403, let challenge = document.headers["www-authenticate"] {
                throw DeliveryError(
                    .accessDenied, "HTTP \(document.status), WWW-Authenticate: \(challenge)",
                    httpStatus: document.status)
            }
            try document.requireSuccess()
        } catch {
            throw Self.restoreError(error, what: what)
        }
        guard let parsed = Self.availability(from: String(decoding: document.body, as: UTF8.self)) else {
            throw RestoreError(
                .archiveResponseUnreadable, "\(what): the answer has no <available> element",
                hint: "check `sources.almaArchive.url` (the archive's base URL)")
        }
        return parsed
    }

    /// The `<available>` and first `<note>` of a VOSI availability document (any namespace prefix); nil if absent.
    public static func availability(from xml: String) -> Availability? {
        func element(_ name: String) -> String? {
            guard let match = xml.firstMatch(of: try! Regex("<(?:[A-Za-z_][\\w.-]*:)?\(name)(?:\\s[^>]*)?>([^<]*)</"))
            else { return nil }
            return (match.output[1].substring.map(String.init) ?? "").trimmingWhitespaceAndNewlines()
        }
        guard let available = element("available") else { return nil }
        return Availability(
            available: available == "true" || available == "1", note: element("note").flatMap { $0.isEmpty ? nil : $0 })
    }

    // MARK: - Transport

    /// Fetches and parses a VOTable, reading error documents sent with a non-2xx status too.
    private func votable(_ url: String, what: String) async throws(RestoreError) -> VOTable {
        let document: HTTPDocument
        do {
            document = try await HTTPDocument.fetch(url: url, headers: requestHeaders, options: options)
            if !(200..<300).contains(document.status) {
                let looksLikeVOTable = String(decoding: document.body.prefix(2048), as: UTF8.self).contains("VOTABLE")
                if looksLikeVOTable { _ = try VOTable.parse(document.body, name: what) }
                try document.requireSuccess()
            }
        } catch let error as DeliveryError {
            throw Self.restoreError(error, what: what)
        } catch let error as RestoreError {
            throw error
        } catch {
            throw RestoreError(.internalError, "\(what): \(error)")
        }
        return try VOTable.parse(document.body, name: what)
    }

    /// Maps a transport error to the archive codes.
    static func restoreError(_ error: DeliveryError, what: String) -> RestoreError {
        let message = "\(what): \(error.message)"
        switch error.code {
        case .cancelled:
            return RestoreError(.cancelled, message)
        case .accessDenied:
            return RestoreError(.archiveAccessDenied, message, hint: error.hint)
        case .responseTooLarge:
            return RestoreError(.archiveResponseUnreadable, message)
        case .fileNotFound, .invalidConfiguration:
            return RestoreError(
                .archiveUnavailable, message, hint: "check `sources.almaArchive.url` (the archive's base URL)")
        default:
            let transient = error.httpStatus.map { $0 >= 500 || $0 == 429 } ?? true
            return RestoreError(
                .archiveUnavailable, message, hint: error.hint ?? "the archive may be down; try again later",
                isTransient: transient)
        }
    }
}
