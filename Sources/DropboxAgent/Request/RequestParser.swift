import FoundationEssentials
import Glibc
import RestoreSteps
import Delivery

/// One problem found in a request, with the JSON path where it is (`$.delivery.format`).
struct RequestProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    var path: String
    var message: String
    var description: String { "\(path): \(message)" }
}

/// Why a request file cannot be run: a syntax error, or a list of validation problems.
struct RequestRejection: Error, Sendable, Equatable {
    /// Stable code for the status file: `invalidJSON`, `invalidRequest`, `incompleteRequest`, …
    var code: RestoreError.Code
    var problems: [RequestProblem]
    /// True when the bytes end in the middle of a JSON document (the writer may not be done).
    var truncated: Bool = false

    /// All problems on one line, for the status file's `error.message`.
    var message: String { problems.map(\.description).joined(separator: "; ") }
}

/// The result of parsing a request: the normalised request and what was ignored.
struct ParsedRequest: Sendable {
    var request: RestoreRequest
    /// Event form only: fields the agent does not use, ignored as the contract says (and logged).
    var ignoredFields: [String]
    /// Whether the request chose its delivery format (otherwise the configured default applies).
    var choseDeliveryFormat: Bool = false
}

/// Parses and validates the two request forms of the contract.
enum RequestParser {
    static let nativeSchema = "dropbox-agent/request/v1"
    static let eventName = "runAlmaBasicRestoreWorkflow"
    static let eventType = "edu.nrao.archive.workflow.messaging.commands.StartWorkflow"

    /// Parses `bytes` as a request, reporting every problem found (not just the first).
    static func parse(_ bytes: [UInt8]) throws(RequestRejection) -> ParsedRequest {
        let value: JSONValue
        do { value = try StrictJSONParser.parse(bytes) } catch {
            throw RequestRejection(
                code: error.truncated ? .incompleteRequest : .invalidJSON,
                problems: [RequestProblem(path: "$", message: error.description)],
                truncated: error.truncated)
        }
        guard case .object(let members) = value else {
            throw RequestRejection(
                code: .invalidRequest,
                problems: [RequestProblem(path: "$", message: "expected a JSON object, found \(value.typeName)")])
        }
        let keys = Set(members.map(\.key))
        if keys.contains("eventName") || keys.contains("metadata") || keys.contains("type") {
            return try parseEvent(value)
        }
        return try parseNative(value)
    }

    // MARK: - Native form

    private static func parseNative(_ value: JSONValue) throws(RequestRejection) -> ParsedRequest {
        var v = Validator()
        let known: Set<String> = ["schema", "mous", "email", "requestId", "casa", "delivery", "source"]
        v.rejectUnknown(value, known: known, at: "$")
        if let schema = value["schema"] {
            if case .string(let s) = schema, s == nativeSchema {
            } else {
                v.problem("$.schema", "must be \"\(nativeSchema)\" when present")
            }
        }
        let mous = v.uid(value["mous"], at: "$.mous", required: true)
        let email = v.emails(value["email"], at: "$.email", allowSingleString: false)
        let requestId = v.identifier(value["requestId"], at: "$.requestId")
        let casaName = v.identifier(value["casa"], at: "$.casa")
        var format = RestoreRequest.DeliveryFormat.ms
        var content: [RestoreRequest.DeliveryContent]?
        var average: RestoreRequest.DeliveryAverage?
        if let delivery = value["delivery"] {
            if case .object = delivery {
                v.rejectUnknown(delivery, known: ["format", "content", "average"], at: "$.delivery")
                if let f = delivery["format"] {
                    if case .string(let s) = f, let parsed = RestoreRequest.DeliveryFormat(rawValue: s) {
                        format = parsed
                    } else {
                        v.problem("$.delivery.format", "must be one of \"ms\", \"tar\", \"tgz\"")
                    }
                }
                content = v.deliveryContent(delivery["content"], at: "$.delivery.content")
                average = v.deliveryAverage(
                    delivery["average"], content: content ?? [.calibrated], at: "$.delivery.average")
            } else {
                v.problem("$.delivery", "expected an object, found \(delivery.typeName)")
            }
        }
        let source = v.source(value["source"], at: "$.source")
        try v.finish()
        var request = RestoreRequest(
            form: .native, mous: mous!, requestId: requestId, email: email, casa: casaName.map { .name($0) },
            deliveryFormat: format, source: source)
        request.deliveryContent = content
        request.deliveryAverage = average
        return ParsedRequest(
            request: request, ignoredFields: [], choseDeliveryFormat: value["delivery"]?["format"] != nil)
    }

    // MARK: - Workflow event form

    private static func parseEvent(_ value: JSONValue) throws(RequestRejection) -> ParsedRequest {
        var v = Validator()
        var ignored: [String] = []
        let topKnown: Set<String> = ["eventName", "type", "additionalPaths", "metadata"]
        if case .object(let members) = value {
            ignored += members.map(\.key).filter { !topKnown.contains($0) }.map { "$.\($0)" }
        }
        switch value["eventName"] {
        case .string(let s) where s == eventName: break
        case nil: v.problem("$.eventName", "required (\"\(eventName)\")")
        default: v.problem("$.eventName", "must be \"\(eventName)\"")
        }
        switch value["type"] {
        case .string(let s) where s == eventType: break
        case nil: v.problem("$.type", "required (\"\(eventType)\")")
        default: v.problem("$.type", "must be \"\(eventType)\"")
        }
        if let paths = value["additionalPaths"] {
            if case .array(let items) = paths, items.isEmpty {
            } else {
                v.problem("$.additionalPaths", "must be an empty array (additional paths are not supported)")
            }
        }
        guard let metadata = value["metadata"], case .object(let members) = metadata else {
            v.problem("$.metadata", value["metadata"] == nil ? "required" : "expected an object")
            try v.finish()
            fatalError("unreachable: finish() throws when there are problems")
        }
        let metaKnown: Set<String> = [
            "workflowName", "processingSite", "deliveryFormat", "telescope", "fileSetIds", "ousStatusId",
            "projectCodeOrDataType", "cliCorrId", "casaHome", "email",
        ]
        ignored += members.map(\.key).filter { !metaKnown.contains($0) }.map { "$.metadata.\($0)" }
        if let name = metadata["workflowName"] {
            if case .string(let s) = name, s == "AlmaOusRestoreWorkflow" {
            } else {
                v.problem("$.metadata.workflowName", "must be \"AlmaOusRestoreWorkflow\"")
            }
        }
        if let telescope = metadata["telescope"] {
            if case .string(let s) = telescope, s == "ALMA" {
            } else {
                v.problem("$.metadata.telescope", "must be \"ALMA\"")
            }
        }
        var format = RestoreRequest.DeliveryFormat.ms
        if let f = metadata["deliveryFormat"] {
            switch f {
            case .string("CMS"), .string("ms"): format = .ms
            case .string("tar"): format = .tar
            default:
                v.problem("$.metadata.deliveryFormat", "must be \"CMS\" (a directory of measurement sets) or \"tar\"")
            }
        }
        let mous = v.uid(metadata["ousStatusId"], at: "$.metadata.ousStatusId", required: true)
        var fileSetIds: [String]?
        if let ids = metadata["fileSetIds"] {
            if case .array(let items) = ids {
                fileSetIds = items.enumerated().compactMap { i, item in
                    v.uid(item, at: "$.metadata.fileSetIds[\(i)]", required: true)
                }
                if items.isEmpty { v.problem("$.metadata.fileSetIds", "must list at least one execution block") }
            } else {
                v.problem("$.metadata.fileSetIds", "expected an array of EB uids, found \(ids.typeName)")
            }
        }
        var projectCode: String?
        if let p = metadata["projectCodeOrDataType"] {
            if case .string(let s) = p,
                s.wholeMatch(of: #/[0-9]{4}\.[0-9A-Z]\.[0-9]{5}\.[A-Z]+/#) != nil
            {
                projectCode = s
            } else {
                v.problem("$.metadata.projectCodeOrDataType", "must be an ALMA project code such as 2017.1.00886.L")
            }
        }
        let requestId = v.identifier(metadata["cliCorrId"], at: "$.metadata.cliCorrId")
        var casa: RestoreRequest.CASAChoice?
        if let home = metadata["casaHome"] {
            if case .string(let s) = home, s.hasPrefix("/"), !s.contains("\0"), s.utf8.count <= 4096 {
                casa = .home(s)
            } else {
                v.problem("$.metadata.casaHome", "must be the absolute path of a configured CASA installation")
            }
        }
        let email = v.emails(metadata["email"], at: "$.metadata.email", allowSingleString: true)
        try v.finish()
        return ParsedRequest(
            request: RestoreRequest(
                form: .workflowEvent, mous: mous!, requestId: requestId, email: email, casa: casa,
                deliveryFormat: format,
                fileSetIds: fileSetIds, projectCode: projectCode),
            ignoredFields: ignored, choseDeliveryFormat: metadata["deliveryFormat"] != nil)
    }
}

/// Collects problems while reading fields.
private struct Validator {
    var problems: [RequestProblem] = []

    mutating func problem(_ path: String, _ message: String) {
        problems.append(RequestProblem(path: path, message: message))
    }

    func finish() throws(RequestRejection) {
        if !problems.isEmpty { throw RequestRejection(code: .invalidRequest, problems: problems) }
    }

    mutating func rejectUnknown(_ value: JSONValue, known: Set<String>, at path: String) {
        guard case .object(let members) = value else { return }
        for m in members where !known.contains(m.key) {
            problem("\(path).\(m.key)", "unknown field (allowed: \(known.sorted().joined(separator: ", ")))")
        }
    }

    /// An ALMA uid such as `uid://A001/X1284/X265f`.
    mutating func uid(_ value: JSONValue?, at path: String, required: Bool) -> String? {
        guard let value else {
            if required { problem(path, "required") }
            return nil
        }
        guard case .string(let s) = value else {
            problem(path, "expected a string, found \(value.typeName)")
            return nil
        }
        guard AlmaUid(s) != nil else {
            problem(path, "\"\(s.prefix(80))\" is not an ALMA uid (uid://A001/X1284/X265f)")
            return nil
        }
        return s
    }

    /// `{"package": "<absolute path or http(s) URL>"}`, `{"archive": "alma"}` or `{"catalogue": {}}`.
    ///
    /// Only the form is checked here; whether a path lies under `sources.packageRoots` (or a URL under
    /// `sources.packageURLs`) is configuration, checked by `validate --config` and by step 1 before anything is read.
    mutating func source(_ value: JSONValue?, at path: String) -> RestoreSource? {
        guard let value else { return nil }
        guard case .object(let members) = value, members.count == 1, let member = members.first else {
            problem(path, "expected an object with exactly one of \"package\", \"archive\", \"catalogue\"")
            return nil
        }
        switch member.key {
        case "package":
            guard case .string(let location) = member.value else {
                problem("\(path).package", "expected a string (an absolute directory path or an http(s) URL)")
                return nil
            }
            if let reason = PackageLocation.problem(location) {
                problem("\(path).package", reason)
                return nil
            }
            return .package(location)
        case "archive":
            guard case .string("alma") = member.value else {
                problem("\(path).archive", "must be \"alma\" (the public ALMA archive)")
                return nil
            }
            return .almaArchive
        case "catalogue":
            guard case .object(let inner) = member.value, inner.isEmpty else {
                problem("\(path).catalogue", "must be an empty object")
                return nil
            }
            return .catalogue
        default:
            problem("\(path).\(member.key)", "unknown source (allowed: package, archive, catalogue)")
            return nil
        }
    }

    /// A client identifier: 1–128 bytes (UTF-8) of printable characters without path separators. Bytes, not
    /// characters: one grapheme cluster can be any number of bytes, and every limit downstream (file names,
    /// status fields, mail headers) is in bytes.
    /// `delivery.content`: one name or a non-empty array of distinct names.
    mutating func deliveryContent(_ value: JSONValue?, at path: String) -> [RestoreRequest.DeliveryContent]? {
        guard let value else { return nil }
        let names = RestoreRequest.DeliveryContent.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        var items: [JSONValue]
        switch value {
        case .string: items = [value]
        case .array(let a): items = a
        default:
            problem(path, "expected one of \(names), or an array of them")
            return nil
        }
        if items.isEmpty { problem(path, "must name at least one of \(names)") }
        var out: [RestoreRequest.DeliveryContent] = []
        for (i, item) in items.enumerated() {
            guard case .string(let s) = item, let c = RestoreRequest.DeliveryContent(rawValue: s) else {
                problem(
                    items.count == 1 && value.typeName == "string" ? path : "\(path)[\(i)]", "must be one of \(names)")
                continue
            }
            if out.contains(c) { problem("\(path)[\(i)]", "\"\(s)\" is named twice") } else { out.append(c) }
        }
        return out.isEmpty ? nil : out.sorted()
    }

    /// `delivery.average`: `{"time": "<n>s", "channels": <n>}`, only for derived products.
    mutating func deliveryAverage(
        _ value: JSONValue?, content: [RestoreRequest.DeliveryContent], at path: String
    ) -> RestoreRequest.DeliveryAverage? {
        guard let value else { return nil }
        guard case .object = value else {
            problem(path, "expected an object such as {\"time\": \"30s\", \"channels\": 4}")
            return nil
        }
        rejectUnknown(value, known: ["time", "channels"], at: path)
        var average = RestoreRequest.DeliveryAverage()
        if let t = value["time"] {
            if case .string(let s) = t, let n = Double(s.hasSuffix("s") ? String(s.dropLast()) : "x"), n > 0,
                n <= 86400, n.isFinite
            {
                average.time = s
            } else {
                problem(path + ".time", "must be seconds such as \"30s\" (more than 0, at most 86400)")
            }
        }
        if let c = value["channels"] {
            if case .number(let s) = c, let n = Int(s), n >= 2, n <= 65536 {
                average.channels = n
            } else {
                problem(path + ".channels", "must be a whole number of channels from 2 to 65536")
            }
        }
        if value["time"] == nil && value["channels"] == nil { problem(path, "must give time, channels or both") }
        if content == [.calibrated] {
            problem(
                path,
                "averaging applies to the science, targets and contsub products; the full calibrated measurement sets are delivered as CASA made them"
            )
        }
        return average.time == nil && average.channels == nil ? nil : average
    }

    mutating func identifier(_ value: JSONValue?, at path: String) -> String? {
        guard let value else { return nil }
        guard case .string(let s) = value else {
            problem(path, "expected a string, found \(value.typeName)")
            return nil
        }
        guard !s.isEmpty, s.utf8.count <= 128,
            s.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F && $0 != "/" && $0 != "\\" })
        else {
            problem(path, "must be 1–128 bytes (UTF-8) of printable characters without '/'")
            return nil
        }
        return s
    }

    mutating func emails(_ value: JSONValue?, at path: String, allowSingleString: Bool) -> [String] {
        guard let value else { return [] }
        var list: [(String, String)] = []
        switch value {
        case .array(let items):
            for (i, item) in items.enumerated() {
                if case .string(let s) = item {
                    list.append((s, "\(path)[\(i)]"))
                } else {
                    problem("\(path)[\(i)]", "expected a string, found \(item.typeName)")
                }
            }
        case .string(let s) where allowSingleString:
            for part in s.split(separator: ",") { list.append((part.trimmingWhitespace(), path)) }
        default:
            problem(
                path,
                allowSingleString
                    ? "expected an address or a list of addresses"
                    : "expected an array of addresses, found \(value.typeName)")
        }
        var result: [String] = []
        for (address, p) in list {
            if RequestRecipient.isValid(address) {
                result.append(address)
            } else {
                problem(p, "\"\(address.prefix(80))\" is not a valid email address")
            }
        }
        if result.count > 20 { problem(path, "at most 20 recipients") }
        return result
    }
}

/// A request's recipient: a bare `local@domain` address (no display name, no angle brackets, no address
/// literal, a dotted domain name) that Delivery's ``MailAddress`` parser accepts, so the request is checked by
/// the same rules as the mail that will be sent (nothing that could inject a header, at most 254 bytes).
enum RequestRecipient {
    static func isValid(_ s: String) -> Bool {
        guard let parsed = try? MailAddress(s), parsed.displayName == nil, parsed.address == s else { return false }
        return parsed.domain.contains(".") && !parsed.domain.hasPrefix("[")
    }
}
