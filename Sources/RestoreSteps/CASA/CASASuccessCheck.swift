internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// The judgement on a CASA run.
public struct CASAVerdict: Sendable, Hashable {
    /// Everything found wrong, the decisive problem first (see ``CASASuccessCheck``). Empty on success.
    public var problems: [RestoreError]
    /// The expected measurement sets that passed every check (absolute paths, in the expected order).
    public var measurementSets: [String]
    /// SEVERE lines that were not known-harmless (at most ``CASALogScanner/Findings/maximumKept``).
    public var severeLines: [CASALogScanner.SevereLine]
    /// How many known-harmless SEVERE lines were ignored.
    public var harmlessSevereCount: Int

    /// Whether the restore succeeded.
    public var isSuccess: Bool { problems.isEmpty }
    /// The decisive problem, if any.
    public var error: RestoreError? { problems.first }

    /// Throws the decisive problem, if any.
    public func check() throws(RestoreError) {
        if let error { throw error }
    }
}

/// Decides whether a CASA restore worked — never by the exit status alone (alma-restore.md §7, §12 item 12).
///
/// Checks, and the order in which they decide (the first problem found is the one reported):
/// 1. `casaTimedOut`: the runner stopped CASA at its time limit.
/// 2. `casaErrorExit`: an `errorexit-*.txt` in `working/` or `products/` (the pipeline's own failure marker; it may
///    exit 0 after writing it).
/// 3. `casaSevere`: a SEVERE line in a `casa-*.log` in `working/` or in the stdout log, other than those in
///    ``HarmlessSevere/patterns`` (the pipeline logs "Task hifa_restoredata complete" *before* the SEVERE report,
///    so "complete" proves nothing).
/// 4. `casaFailed`: a non-zero exit status or a signal.
/// 5. Per expected `AsdmDiskName`, in order: `msMissing` (`<name>.ms` missing or without `table.dat`),
///    `msNotCalibrated` (no `CORRECTED_DATA` column, see ``MeasurementSetColumns``), `flagVersionsMissing`
///    (no `<name>.ms.flagversions` directory).
/// Each message quotes the decisive evidence; each hint names the log to read.
public enum CASASuccessCheck {
    /// Judges a run.
    ///
    /// - Parameters:
    ///   - result: what the runner returned.
    ///   - working: the `working/` directory (MSes, casa logs, errorexit markers).
    ///   - products: the `products/` directory (newer pipelines copy errorexit markers there).
    ///   - expectedAsdmNames: the PPR's `AsdmDiskName`s.
    public static func evaluate(
        result: CASARunResult, working: String, products: String, expectedAsdmNames: [String]
    ) -> CASAVerdict {
        var problems: [RestoreError] = []
        let stdoutLog = result.stdoutLog
        let casaLogs = RunnerSupport.casaLogs(in: working)
        let logsHint =
            casaLogs.isEmpty
            ? "CASA's output is in \(stdoutLog)."
            : "CASA's output is in \(stdoutLog); its log is \(casaLogs.last ?? "")."

        if result.timedOut {
            problems.append(
                RestoreError(
                    .casaTimedOut,
                    "CASA did not finish within its time limit (\(format(result.duration))) and was stopped.",
                    hint:
                        "A restore of this size may need a longer CASA timeout in the agent configuration. \(logsHint)",
                    step: .casa, isTransient: true))
        }

        let findings = CASALogScanner.scan(casaLogs + [stdoutLog])
        let markers = errorExitMarkers(in: working) + errorExitMarkers(in: products)
        if let first = markers.first {
            let more = markers.count > 1 ? " (and \(markers.count - 1) more)" : ""
            // The pipeline's marker is empty; restore_mous.py writes its reason into it. Quote whichever exists.
            let reason =
                firstLine(of: first).map { " Reason: \($0)" }
                ?? findings.decisive.first.map { " First SEVERE line: \"\($0.line)\"" } ?? ""
            let place = findings.decisive.first.map { "See \($0.file), line \($0.lineNumber). " } ?? ""
            problems.append(
                RestoreError(
                    .casaErrorExit, "The pipeline stopped with an error: it left \(first)\(more).\(reason)",
                    hint: place + logsHint, step: .casa))
        }

        if let first = findings.decisive.first {
            let more = findings.decisiveCount > 1 ? " (\(findings.decisiveCount) SEVERE lines in all)" : ""
            problems.append(
                RestoreError(
                    .casaSevere, "CASA logged a SEVERE error: \"\(first.line)\"\(more).",
                    hint: "See \(first.file), line \(first.lineNumber).", step: .casa))
        }

        if !result.exitStatus.isSuccess {
            problems.append(
                RestoreError(
                    .casaFailed, "CASA ended with \(result.exitStatus).",
                    hint: "See \(stdoutLog) for its output.", step: .casa))
        }

        var verified: [String] = []
        for name in expectedAsdmNames {
            let ms = CASAInstallation.join(working, name + ".ms")
            guard let columns = MeasurementSetColumns.columns(ofTableAt: ms) else {
                problems.append(
                    RestoreError(
                        .msMissing, "The measurement set \(ms) was not written (no \(name).ms/table.dat).",
                        hint: logsHint, step: .casa))
                continue
            }
            guard columns.contains("CORRECTED_DATA") else {
                problems.append(
                    RestoreError(
                        .msNotCalibrated,
                        "The measurement set \(ms) has no CORRECTED_DATA column: calibration was not applied.",
                        hint: logsHint, step: .casa))
                continue
            }
            var isDirectory = false
            let flagVersions = ms + ".flagversions"
            guard FileManager.default.fileExists(atPath: flagVersions, isDirectory: &isDirectory), isDirectory
            else {
                problems.append(
                    RestoreError(
                        .flagVersionsMissing,
                        "The flag versions \(flagVersions) are missing: the flags were not restored.",
                        hint: logsHint, step: .casa))
                continue
            }
            verified.append(ms)
        }

        return CASAVerdict(
            problems: problems, measurementSets: verified, severeLines: findings.decisive,
            harmlessSevereCount: findings.harmlessCount)
    }

    /// `errorexit-*.txt` files in `directory`, absolute and sorted.
    static func errorExitMarkers(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("errorexit-") && $0.hasSuffix(".txt") }.sorted()
            .map { CASAInstallation.join(directory, $0) }
    }

    /// The first non-empty line of a small file (at most 500 characters), if any.
    private static func firstLine(of path: String) -> String? {
        guard let data = FileReader(path: path)?.read(at: 0, upTo: 4096), !data.isEmpty else { return nil }
        let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingWhitespace() }.first { !$0.isEmpty }
        return line.map { String($0.prefix(500)) }
    }

    private static func format(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        return seconds >= 120 ? "\(seconds / 60) min" : "\(seconds) s"
    }
}
