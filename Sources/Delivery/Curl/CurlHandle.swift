internal import CCurl
internal import FoundationEssentials
internal import Glibc

/// One libcurl easy handle with typed option setters; used by exactly one thread at a time.
final class CurlHandle {
    /// `curl_global_init`, done once per process before the first handle.
    private static let globalInit: Bool = {
        curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
    }()

    let raw: UnsafeMutableRawPointer
    private var lists: [UnsafeMutablePointer<curl_slist>] = []
    /// Filled by libcurl with a human detail of the last error (`CURLOPT_ERRORBUFFER`).
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    init() throws(DeliveryError) {
        _ = Self.globalInit
        guard let handle = curl_easy_init() else {
            throw DeliveryError(.transferFailed, "curl_easy_init failed")
        }
        raw = handle
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        _ = ccurl_setopt_pointer(raw, CURLOPT_ERRORBUFFER, errorBuffer)
        set(CURLOPT_NOSIGNAL, 1)
    }

    deinit {
        curl_easy_cleanup(raw)
        for list in lists { curl_slist_free_all(list) }
        errorBuffer.deallocate()
    }

    func set(_ option: CURLoption, _ value: Int) {
        _ = ccurl_setopt_long(raw, option, value)
    }

    func set(_ option: CURLoption, _ value: String) {
        // libcurl copies string options (since 7.17).
        _ = ccurl_setopt_string(raw, option, value)
    }

    func set(_ option: CURLoption, list values: [String]) {
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for value in values { list = curl_slist_append(list, value) }
        if let list { lists.append(list) }
        _ = ccurl_setopt_slist(raw, option, list)
    }

    func set(_ option: CURLoption, pointer: UnsafeMutableRawPointer?) {
        _ = ccurl_setopt_pointer(raw, option, pointer)
    }

    /// How the server is verified: against `caFile` (nil: the system's CAs), or not at all when `verifyPeer` is false
    /// (a test server's self-signed certificate).
    func setTLS(caFile: String?, verifyPeer: Bool) {
        if let caFile { set(CURLOPT_CAINFO, caFile) }
        if !verifyPeer {
            set(CURLOPT_SSL_VERIFYPEER, 0)
            set(CURLOPT_SSL_VERIFYHOST, 0)
        }
    }

    /// `curl_easy_perform`; blocks.
    func perform() -> CURLcode {
        errorBuffer[0] = 0
        return curl_easy_perform(raw)
    }

    func long(_ info: CURLINFO) -> Int {
        var value = 0
        _ = ccurl_getinfo_long(raw, info, &value)
        return value
    }

    /// A string info (`CURLINFO_EFFECTIVE_URL`, …), copied; nil if libcurl has none.
    func string(_ info: CURLINFO) -> String? {
        var value: UnsafeMutablePointer<CChar>? = nil
        guard ccurl_getinfo_string(raw, info, &value) == CURLE_OK, let value else { return nil }
        return String(cString: value)
    }

    /// The value of response header `name` (any case) in the latest response of the transfer, the last one if it
    /// came several times; nil if absent. libcurl's own parser (`curl_easy_header`, request -1), also usable from
    /// inside the write callback for the response being received.
    func header(_ name: String) -> String? {
        var found: UnsafeMutablePointer<curl_header>?
        guard curl_easy_header(raw, name, 0, UInt32(CURLH_HEADER), -1, &found) == CURLHE_OK, let first = found else {
            return nil
        }
        if first.pointee.amount > 1 {
            var last: UnsafeMutablePointer<curl_header>?
            if curl_easy_header(raw, name, first.pointee.amount - 1, UInt32(CURLH_HEADER), -1, &last) == CURLHE_OK,
                let value = last?.pointee.value
            {
                return String(cString: value)
            }
        }
        return first.pointee.value.map { String(cString: $0) }
    }

    /// Every header of the latest response, names lowercased (the last value of a repeated one wins).
    func headers() -> [String: String] {
        var fields: [String: String] = [:]
        var previous: UnsafeMutablePointer<curl_header>?
        while let current = curl_easy_nextheader(raw, UInt32(CURLH_HEADER), -1, previous) {
            if let name = current.pointee.name, let value = current.pointee.value {
                fields[String(cString: name).lowercased()] = String(cString: value)
            }
            previous = current
        }
        return fields
    }

    /// The server's `Retry-After` (delta-seconds or HTTP date, parsed by libcurl: `CURLINFO_RETRY_AFTER`), or nil
    /// when the response had none.
    func retryAfter() -> Duration? {
        var seconds: curl_off_t = 0
        guard header("Retry-After") != nil, ccurl_getinfo_off(raw, CURLINFO_RETRY_AFTER, &seconds) == CURLE_OK else {
            return nil
        }
        return .seconds(max(0, Int64(seconds)))
    }

    /// Whether a header line libcurl passes to `CURLOPT_HEADERFUNCTION` is a status line (`HTTP/…`): a new
    /// response of the transfer starts (redirects and `100 Continue` make several).
    static func isStatusLine(_ buffer: UnsafePointer<CChar>, _ length: Int) -> Bool {
        length >= 5 && memcmp(buffer, "HTTP/", 5) == 0
    }

    /// `curl_easy_strerror` plus the error buffer's detail.
    func describe(_ code: CURLcode) -> String {
        let generic = String(cString: curl_easy_strerror(code))
        let detail = String(cString: errorBuffer)
        return detail.isEmpty || detail == generic ? generic : "\(generic): \(detail)"
    }
}

extension Duration {
    /// Whole milliseconds, for libcurl options.
    var milliseconds: Int {
        let c = components
        return Int(c.seconds) * 1000 + Int(c.attoseconds / 1_000_000_000_000_000)
    }
}
