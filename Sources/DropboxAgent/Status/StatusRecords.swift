import Delivery
import FoundationEssentials
import Glibc
import Synchronization

/// Where a request's status lives: the record in the job store is the state, the status file in the spool is the
/// output written from it.
///
/// The record `<work>/status/<NAME>.json` is the document the agent last published for the request name — the one
/// every later decision reads (intake: was it already `waiting`, does an earlier request of the name continue the
/// `sequence`; the claimer: the history so far; cancellation: has it ended; a re-submission: how its original
/// ended; the conclusion: did a stale write from another host replace the final document). It lives in the shared
/// work directory, private to the agents (0700), next to the claims and leases, so it holds across hosts and
/// restarts exactly as they do. Each write goes to the record first and then, with the same bytes, to
/// `<spool>/<NAME>.status.json`: the status file is never read by the agent, and a dropper who edits or deletes
/// it changes nothing the agent decides.
struct StatusRecords: Sendable {
    /// `<work>/status`.
    let directory: String
    let spoolDirectory: String
    /// The status file's mode (`spool.statusFileMode`); records are the agents' own (0600).
    let mode: mode_t

    init(workDirectory: String, spoolDirectory: String, mode: mode_t) {
        self.directory = workDirectory + "/status"
        self.spoolDirectory = spoolDirectory
        self.mode = mode
    }

    /// The records of the agent configured by `c`.
    init(configuration c: AgentConfiguration) {
        self.init(
            workDirectory: c.agent.workDirectory!, spoolDirectory: c.spool.directory!,
            mode: mode_t(c.spool.statusFileMode, radix: 8) ?? 0o644)
    }

    /// The status file of `name`: `<spool>/<NAME>.status.json`, the output.
    func outputPath(_ name: String) -> String { spoolDirectory + "/" + SpoolNames.statusFile(for: name) }

    /// The record of `name`: `<work>/status/<NAME>.json`, the state.
    func recordPath(_ name: String) -> String { directory + "/" + name + ".json" }

    /// The request name a status file path belongs to (entries queued for mail or expiry name the status file).
    static func name(ofOutput path: String) -> String {
        let file = PathString.lastComponent(path)
        return file.hasSuffix(".status.json") ? String(file.dropLast(".status.json".count)) : file
    }

    /// The document last published for `name`, from its record (never from the status file).
    func read(_ name: String) -> StatusDocument? {
        guard let data = FileManager.default.contents(atPath: recordPath(name)) else { return nil }
        return try? StatusDocument.decode(data)
    }

    /// Publishes `document` for `name`: the record, then the status file. `precondition` (a fencing check) is asked
    /// right before each of the two renames; when it says no, nothing more is replaced.
    ///
    /// - Parameter group: group commit (intake): the two directory `fsync`s are left to the group, shared with the
    ///   other writes of the batch (``SpoolAgent/handle(entries:)``).
    /// - Returns: false when `precondition` stopped the write.
    @discardableResult
    func write(
        _ document: StatusDocument, name: String, group: DirectorySyncGroup? = nil,
        if precondition: () -> Bool = { true }
    ) throws -> Bool {
        try write(document, name: name, group: group, amends: false, if: precondition)
    }

    /// - Parameter amends: the document changes a concluded request without concluding it again (for the
    ///   dashboard's counters, ``DashboardFeed``).
    private func write(
        _ document: StatusDocument, name: String, group: DirectorySyncGroup?, amends: Bool,
        if precondition: () -> Bool
    ) throws -> Bool {
        let data = try document.encoded()
        // Both files are written back together (one disk wait on the pickup path), the record renamed first.
        let written = try AtomicFile.write(
            [.init(data, at: recordPath(name), mode: 0o600), .init(data, at: outputPath(name), mode: mode)],
            group: group, if: precondition)
        // The record is the state: what it now says is what the dashboard shows.
        if written { DashboardFeed.published(document, spool: spoolDirectory, amends: amends) }
        return written
    }

    /// Publishes `document` only if `name` has no record yet (exclusive across agents and hosts, like every
    /// `link(2)` creation in the job store).
    ///
    /// - Returns: false when a record existed (nothing written).
    @discardableResult
    func create(_ document: StatusDocument, name: String, group: DirectorySyncGroup? = nil) throws -> Bool {
        let data = try document.encoded()
        let created = try AtomicFile.create(
            .init(data, at: recordPath(name), mode: 0o600), then: .init(data, at: outputPath(name), mode: mode),
            group: group)
        if created { DashboardFeed.published(document, spool: spoolDirectory) }
        return created
    }

    /// Removes the record and the status file of `name` if the record describes the job kept in `jobDirectory`
    /// (finished requests past their retention).
    func remove(name: String, ifJobDirectory jobDirectory: String) {
        guard read(name)?.requestFile?.hasPrefix(jobDirectory + "/") == true else { return }
        unlink(outputPath(name))
        unlink(recordPath(name))
        DashboardFeed.removed(name, spool: spoolDirectory)
    }

    private static let concludedLock = Mutex(())

    /// Changes the document of a concluded request (its publisher is done with it), if the record still names
    /// `requestFile` (it describes that job): read-modify-write of the record under one lock per process, so the
    /// mail queue, the delivery expiry and the job's last touches never undo each other.
    func modifyConcluded(
        name: String, ifRequestFile requestFile: String, _ change: (inout StatusDocument) -> Void
    )
        throws
    {
        try Self.concludedLock.withLock { _ in
            guard var doc = read(name), doc.requestFile == requestFile else { return }
            change(&doc)
            doc.updatedAt = Timestamp.now()
            doc.advanceSequence()
            _ = try write(doc, name: name, group: nil, amends: true, if: { true })
        }
    }
}
