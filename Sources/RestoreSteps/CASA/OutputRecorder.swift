internal import Foundation
internal import Logging

/// Writes CASA's output to the stdout log as it arrives (never holding it in memory) and passes `PROGRESS` lines
/// to the reporter. Used from one task only.
final class OutputRecorder {
    private let handle: FileHandle?
    private let reporter: any StepReporter
    private let logger: Logger
    private var pending: [UInt8] = []
    private var writeFailed = false
    /// Lines longer than this are not inspected for `PROGRESS` (they are still written to the log).
    private let maximumLineLength = 64 * 1024

    init(logPath: String, reporter: any StepReporter, logger: Logger) {
        self.handle = FileHandle(forWritingAtPath: logPath)
        _ = try? handle?.seekToEnd()
        self.reporter = reporter
        self.logger = logger
    }

    /// Records a chunk of output.
    func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        if let handle, !writeFailed {
            do {
                try handle.write(contentsOf: Data(bytes))
            } catch {
                // Keep draining the pipe so CASA is not blocked; the log is incomplete from here on.
                writeFailed = true
                logger.error("cannot write the CASA output log", metadata: ["error": "\(error)"])
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
        try? handle?.close()
    }

    private func inspect(_ line: [UInt8]) {
        guard line.starts(with: Array("PROGRESS ".utf8)) else { return }
        if let progress = ProgressLine.parse(String(decoding: line, as: UTF8.self)) {
            reporter.report(progress)
        }
    }
}
