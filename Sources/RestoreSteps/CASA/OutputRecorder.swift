internal import FoundationEssentials
internal import Glibc
internal import Logging

/// Writes CASA's output to the stdout log as it arrives (never holding it in memory) and passes `PROGRESS` lines
/// to the reporter. Used from one task only.
final class OutputRecorder {
    /// The log, opened for appending (-1 when it cannot be opened).
    private let descriptor: Int32
    private let reporter: any StepReporter
    private let logger: Logger
    private var pending: [UInt8] = []
    private var writeFailed = false
    /// Lines longer than this are not inspected for `PROGRESS` (they are still written to the log).
    private let maximumLineLength = 64 * 1024

    init(logPath: String, reporter: any StepReporter, logger: Logger) {
        self.descriptor = open(logPath, O_WRONLY | O_APPEND | O_CLOEXEC)
        self.reporter = reporter
        self.logger = logger
    }

    /// Records a chunk of output.
    func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        if descriptor >= 0, !writeFailed {
            if let failure = Self.writeAll(bytes, to: descriptor) {
                // Keep draining the pipe so CASA is not blocked; the log is incomplete from here on.
                writeFailed = true
                logger.error("cannot write the CASA output log", metadata: ["error": "\(failure)"])
            }
        }
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                inspect(pending)
                pending.removeAll(keepingCapacity: true)
            } else if pending.count < maximumLineLength {
                pending.append(byte)
            }
        }
    }

    /// Inspects the last unterminated line and closes the log.
    func finish() {
        if !pending.isEmpty { inspect(pending) }
        pending = []
        if descriptor >= 0 { close(descriptor) }
    }

    /// Writes all of `bytes`; the `strerror` text of a failed write, nil on success.
    private static func writeAll(_ bytes: UnsafeRawBufferPointer, to descriptor: Int32) -> String? {
        var written = 0
        while written < bytes.count {
            let n = write(descriptor, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return String(cString: strerror(n < 0 ? errno : EIO)) }
            written += n
        }
        return nil
    }

    private func inspect(_ line: [UInt8]) {
        guard line.starts(with: Array("PROGRESS ".utf8)) else { return }
        if let progress = ProgressLine.parse(String(decoding: line, as: UTF8.self)) {
            reporter.report(progress)
        }
    }
}
