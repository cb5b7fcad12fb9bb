internal import CCurl
internal import FoundationEssentials
internal import Glibc
internal import Logging

/// What one HTTP attempt ended in; the retry policy lives in ``HTTPTransfer``.
enum HTTPAttemptOutcome: Sendable {
    /// The verified file is at the destination.
    case done(RetrievedFile)
    /// A transient failure; the `.part` is kept for a resume unless `restartFromZero`.
    case retry(DeliveryError, retryAfter: Duration?, restartFromZero: Bool)
    /// Size or checksum wrong after a complete transfer; the `.part` has been removed.
    case verificationFailed(DeliveryError)
    /// Permanent failure (404, NGAS FAILURE, local I/O, cancellation).
    case fatal(DeliveryError)
}

/// One `GET <url>` (an NGAS `RETRIEVE?file_id=…`, or any file URL) into `<destination>.part`, resuming from an
/// existing `.part`.
///
/// Runs synchronously on a dedicated thread; libcurl calls back into ``Context``.
struct HTTPTransferAttempt {
    let file: ExpectedFile
    let url: String
    /// Extra request headers (`Authorization`, …), validated by ``HTTPRequestHeaders/lines(_:)``.
    let headers: [String: String]
    let destination: String
    let options: HTTPStoreOptions
    let storeDescription: String

    /// State shared with libcurl's C callbacks through `Unmanaged` (used only on the transfer thread).
    final class Context {
        enum Mode { case undecided, file, errorBody, discard }
        let writer: HashingFileWriter
        let resumeOffset: Int64
        let cancelled: CancellationFlag
        let progress: ProgressHandler
        let expectedTotal: Int64?
        let handle: CurlHandle
        /// The status and headers of the response being received, read from libcurl once per response in
        /// ``decide()`` (and after the transfer), never per write callback.
        var headers = HTTPResponseHeaders()
        /// Status lines seen (the header callback only counts them): which response of the transfer is current.
        var responseIndex = 0
        var mode = Mode.undecided
        var decidedResponse = 0
        var errorBody: [UInt8] = []
        var sniff: [UInt8] = []
        /// Whether the final response is XML (an NGAS status document instead of the file): decided once per
        /// response in ``decide()``, not per write callback.
        var sniffXML = false
        var bodyBytes: Int64 = 0
        var rangeIgnored = false
        var rangeMismatch = false
        var writeError: DeliveryError?

        init(
            writer: HashingFileWriter, handle: CurlHandle, cancelled: CancellationFlag,
            progress: @escaping ProgressHandler, expectedTotal: Int64?
        ) {
            self.writer = writer
            self.handle = handle
            self.resumeOffset = writer.bytesWritten
            self.cancelled = cancelled
            self.progress = progress
            self.expectedTotal = expectedTotal
        }

        /// Decides, at the first body byte of the final response, where the body goes.
        func decide() {
            decidedResponse = responseIndex
            headers = HTTPResponseHeaders(of: handle)
            let status = headers.status
            sniffXML = headers.isXML
            if (300..<400).contains(status) {
                mode = .discard
            } else if status == 200 || status == 206 {
                mode = .file
                if status == 200 && writer.bytesWritten > 0 {
                    // Server ignored our Range: start again from byte zero, and say so.
                    rangeIgnored = true
                    do throws(DeliveryError) { try writer.restart() } catch { writeError = error }
                } else if status == 206, let start = headers.contentRangeStart, start != writer.bytesWritten {
                    rangeMismatch = true
                }
            } else {
                mode = .errorBody
            }
        }

        func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
            // Decide per response: a redirect's body (if libcurl passes one) must not decide the final one.
            if mode == .undecided || decidedResponse != responseIndex { decide() }
            if mode != .discard { bodyBytes += Int64(bytes.count) }
            switch mode {
            case .file:
                if rangeMismatch { return false }
                if sniffXML && sniff.count < 4096 { sniff.append(contentsOf: bytes.prefix(4096 - sniff.count)) }
                do throws(DeliveryError) { try writer.write(bytes) } catch {
                    writeError = error
                    return false
                }
            case .errorBody:
                if errorBody.count < 65536 { errorBody.append(contentsOf: bytes.prefix(65536 - errorBody.count)) }
            case .discard, .undecided:
                break
            }
            return true
        }

        private var lastReport: ContinuousClock.Instant?

        /// Calls the progress handler at most every 100 ms (libcurl calls back far more often).
        func reportProgress() {
            let now = ContinuousClock.now
            if let lastReport, now - lastReport < .milliseconds(100) { return }
            lastReport = now
            progress(bytesDone, expectedTotal)
        }

        /// Bytes in the `.part` now (for progress).
        var bytesDone: Int64 { writer.bytesWritten }
    }

    /// Performs the attempt. Never throws: every failure is an outcome.
    func perform(
        cancelled: CancellationFlag, progress: @escaping ProgressHandler
    ) -> (
        HTTPAttemptOutcome, Int64, String?
    ) {
        let part = destination + ".part"
        let writer: HashingFileWriter
        let handle: CurlHandle
        let headerLines: [String]
        do throws(DeliveryError) {
            headerLines = try HTTPRequestHeaders.lines(headers)
            writer = try HashingFileWriter(path: part, variant: file.effectiveVariant, resume: true)
            handle = try CurlHandle()
        } catch {
            return (.fatal(error), 0, nil)
        }
        let context = Context(
            writer: writer, handle: handle, cancelled: cancelled, progress: progress, expectedTotal: file.size)
        configure(handle, context: context, headerLines: headerLines)
        let code = withExtendedLifetime(context) { handle.perform() }
        context.headers = HTTPResponseHeaders(of: handle)  // the final response, also when it had no body
        let outcome = conclude(code, handle: handle, context: context, part: part)
        return (outcome, context.bodyBytes, context.headers.dispositionFileName)
    }

    private func configure(_ handle: CurlHandle, context: Context, headerLines: [String]) {
        handle.set(CURLOPT_URL, url)
        handle.set(CURLOPT_FOLLOWLOCATION, 1)
        handle.set(CURLOPT_MAXREDIRS, options.maxRedirects)
        // libcurl drops these headers on a redirect to another host (CURLOPT_UNRESTRICTED_AUTH stays off).
        handle.set(CURLOPT_HTTPHEADER, list: ["Accept-Encoding: identity"] + headerLines)
        handle.set(CURLOPT_USERAGENT, options.userAgent)
        handle.set(CURLOPT_CONNECTTIMEOUT_MS, options.connectTimeout.milliseconds)
        handle.set(CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimitBytes)
        handle.set(CURLOPT_LOW_SPEED_TIME, max(1, options.lowSpeedTime.milliseconds / 1000))
        handle.set(CURLOPT_BUFFERSIZE, options.receiveBufferBytes)
        handle.set(CURLOPT_PROTOCOLS_STR, "http,https")
        handle.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        handle.setTLS(caFile: options.caFile, verifyPeer: options.verifyPeer)
        if context.resumeOffset > 0 { handle.set(CURLOPT_RANGE, "\(context.resumeOffset)-") }
        let opaque = Unmanaged.passUnretained(context).toOpaque()
        handle.set(CURLOPT_HEADERDATA, pointer: opaque)
        handle.set(CURLOPT_WRITEDATA, pointer: opaque)
        handle.set(CURLOPT_XFERINFODATA, pointer: opaque)
        handle.set(CURLOPT_NOPROGRESS, 0)
        _ = ccurl_setopt_header(handle.raw) { buffer, size, count, user in
            let context = Unmanaged<Context>.fromOpaque(user!).takeUnretainedValue()
            let length = size * count
            if let buffer, CurlHandle.isStatusLine(buffer, length) { context.responseIndex += 1 }
            return length
        }
        _ = ccurl_setopt_write(handle.raw) { buffer, size, count, user in
            let context = Unmanaged<Context>.fromOpaque(user!).takeUnretainedValue()
            let length = size * count
            return context.receive(UnsafeRawBufferPointer(start: buffer, count: length)) ? length : 0
        }
        _ = ccurl_setopt_xferinfo(handle.raw) { user, _, _, _, _ in
            let context = Unmanaged<Context>.fromOpaque(user!).takeUnretainedValue()
            if context.cancelled.isCancelled { return 1 }
            if context.mode == .file { context.reportProgress() }
            return 0
        }
    }

    private func conclude(_ code: CURLcode, handle: CurlHandle, context: Context, part: String) -> HTTPAttemptOutcome {
        let writer = context.writer
        let status = handle.long(CURLINFO_RESPONSE_CODE)
        let what = "'\(file.fileId)' from \(storeDescription)"
        if context.cancelled.isCancelled {
            writer.closeQuietly()
            return .fatal(DeliveryError(.cancelled, "retrieval of \(what) cancelled"))
        }
        if let error = context.writeError {
            writer.closeQuietly()
            FileSystem.remove(part)
            return .fatal(error)
        }
        if context.rangeIgnored, let logger = options.logger {
            logger.warning(
                "server ignored Range; restarted from byte 0",
                metadata: ["file.id": "\(file.fileId)", "resume.offset": "\(context.resumeOffset)"])
        }
        if context.rangeMismatch {
            writer.closeQuietly()
            FileSystem.remove(part)
            return .retry(
                DeliveryError(
                    .transferFailed, "\(what): server answered a different range than byte \(context.resumeOffset)",
                    httpStatus: status),
                retryAfter: .zero, restartFromZero: true)
        }
        if code != CURLE_OK {
            writer.closeQuietly()
            let error = DeliveryError(
                .transferFailed, "transfer of \(what) failed: \(handle.describe(code))",
                hint: "the store or network is unreliable; the partial file is kept and the next attempt resumes",
                curlCode: Int(code.rawValue), httpStatus: status == 0 ? nil : status)
            let transient: Set<UInt32> = [
                CURLE_COULDNT_CONNECT.rawValue, CURLE_PARTIAL_FILE.rawValue, CURLE_OPERATION_TIMEDOUT.rawValue,
                CURLE_GOT_NOTHING.rawValue, CURLE_RECV_ERROR.rawValue, CURLE_SEND_ERROR.rawValue,
                CURLE_HTTP2.rawValue, CURLE_HTTP2_STREAM.rawValue, CURLE_SSL_CONNECT_ERROR.rawValue,
                CURLE_COULDNT_RESOLVE_HOST.rawValue,
            ]
            if transient.contains(code.rawValue) {
                return .retry(error, retryAfter: nil, restartFromZero: false)
            }
            FileSystem.remove(part)
            return .fatal(error)
        }
        switch status {
        case 200, 206:
            if context.headers.isXML, let message = NgamsStatus.failureMessage(in: context.sniff) {
                writer.closeQuietly()
                FileSystem.remove(part)
                return .fatal(
                    DeliveryError(.archiveFailure, "NGAS failure for \(what): \(message)", httpStatus: status))
            }
            if let length = context.headers.contentLength, length != context.bodyBytes {
                writer.closeQuietly()
                return .retry(
                    DeliveryError(
                        .transferFailed,
                        "\(what): received \(context.bodyBytes) bytes of a \(length)-byte response", httpStatus: status),
                    retryAfter: nil, restartFromZero: false)
            }
            return finish(context: context, part: part, status: status)
        case 416:
            // Range start at or beyond the end: either the .part is already complete, or it is junk.
            if let expected = file.size, writer.bytesWritten == expected {
                return finish(context: context, part: part, status: status)
            }
            writer.closeQuietly()
            FileSystem.remove(part)
            return .retry(
                DeliveryError(
                    .transferFailed, "\(what): server refused to resume at byte \(context.resumeOffset) (416)",
                    httpStatus: status),
                retryAfter: .zero, restartFromZero: true)
        default:
            writer.closeQuietly()
            if context.writer.bytesWritten == 0 { FileSystem.remove(part) }
            let ngas = NgamsStatus.failureMessage(in: context.errorBody)
            let detail = ngas.map { "NGAS: \($0)" } ?? "HTTP \(status)"
            switch status {
            case 429, 503, 500, 502, 504:
                return .retry(
                    DeliveryError(.archiveFailure, "\(what) unavailable: \(detail)", httpStatus: status),
                    retryAfter: handle.retryAfter(), restartFromZero: false)
            case 404:
                return .fatal(
                    DeliveryError(
                        .fileNotFound, "\(what) not found: \(detail)",
                        hint: "check the file id against the archive catalogue", httpStatus: status))
            case 401, 403:
                return .fatal(
                    DeliveryError(
                        .accessDenied, "\(what) refused: \(detail)", hint: HTTPRequestHeaders.accessDeniedHint,
                        httpStatus: status))
            default:
                if ngas != nil && ngas!.contains("NGAMS_ER_UNAVAIL_FILE") {
                    return .fatal(DeliveryError(.fileNotFound, "\(what) not available: \(detail)", httpStatus: status))
                }
                return .fatal(DeliveryError(.archiveFailure, "\(what) failed: \(detail)", httpStatus: status))
            }
        }
    }

    /// Fsyncs, verifies and renames a complete `.part`.
    private func finish(context: Context, part: String, status: Int) -> HTTPAttemptOutcome {
        let writer = context.writer
        let checksum: Checksum
        do throws(DeliveryError) {
            checksum = try writer.finish()
        } catch {
            return .fatal(error)
        }
        var expectation = file
        if expectation.size == nil, let total = context.headers.contentRangeTotal, status == 206 {
            expectation.size = total
        }
        if let error = Verification.check(
            expectation, size: writer.bytesWritten, checksum: checksum, source: storeDescription)
        {
            FileSystem.remove(part)
            return .verificationFailed(error)
        }
        do throws(DeliveryError) {
            try FileSystem.rename(part, destination)
        } catch {
            return .fatal(error)
        }
        context.progress(writer.bytesWritten, writer.bytesWritten)
        return .done(
            RetrievedFile(
                fileId: file.fileId, path: destination, size: writer.bytesWritten, checksum: checksum.decimalString,
                bytesTransferred: 0, fromCache: false, serverFileName: context.headers.dispositionFileName))
    }
}
