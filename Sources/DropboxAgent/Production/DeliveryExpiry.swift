import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// Removes deliveries from the download area once `delivery.retentionDays` have passed.
///
/// Every succeeded delivery is registered in `<data>/deliveries/<jobId>.json` (its random name, path, expiry and
/// status file). A pass removes the expired ones, logs each (`delivery expired`), counts them
/// (`dropbox_agent_deliveries_expired_total`), and marks the status file — while it still describes that job —
/// with `result.expiredAt`; the rest of `result` keeps saying what was delivered. Failed and rejected requests have
/// no delivery and are never registered. A request linked to an identical one (`linkedTo`) shares its delivery and
/// has a record of its own for it, so its status file says `expiredAt` too; a reused restore's request has its own
/// delivery and record like any other.
struct DeliveryExpiry: Sendable {
    struct Entry: Codable, Sendable, Equatable {
        var jobId: String
        var name: String
        var path: String
        /// Unix seconds.
        var expiresAt: Double
        var statusPath: String
    }

    let directory: String
    let downloadDirectory: String
    /// The requests' status records: an expired delivery is marked in its request's status.
    let records: StatusRecords
    let logger: Logger

    func register(_ entry: Entry) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AtomicFile.write(try encodeJSON(entry), to: directory + "/" + entry.jobId + ".json")
    }

    /// The registered deliveries.
    func entries() -> [Entry] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
            $0.hasSuffix(".json") && !$0.hasPrefix(".")
        }
        return names.sorted().compactMap { FileManager.default.readJSON(Entry.self, at: directory + "/" + $0) }
    }

    /// Removes every delivery whose expiry has passed. Call off the cooperative pool (removing a tree blocks).
    /// - Returns: the entries whose directory was removed (a linked request's record, whose delivery another
    ///   record already removed, marks its status file but is not returned).
    @discardableResult
    func sweep(now: Double = Date().timeIntervalSince1970) -> [Entry] {
        var removed: [Entry] = []
        for entry in entries() where entry.expiresAt <= now {
            // Only a delivery's own directory: a random name directly under the download area.
            let expected = downloadDirectory + "/" + entry.name
            guard DeliveryName.isValid(entry.name), entry.path == expected else {
                logger.error(
                    "delivery not removed: its record is not a delivery of this download area",
                    metadata: ["path": "\(entry.path)", "job.id": "\(entry.jobId)"])
                unlink(directory + "/" + entry.jobId + ".json")
                continue
            }
            // A delivery shared by linked requests has one record per request: the first removes the directory,
            // each marks its own status file; the metric counts the directory once.
            let present = FileManager.default.fileExists(atPath: expected)
            if present {
                do { try FileManager.default.removeItem(atPath: expected) } catch {
                    logger.error(
                        "cannot remove an expired delivery", metadata: ["path": "\(expected)", "error": "\(error)"])
                    continue
                }
            }
            let expiredAt = Timestamp.now()
            markStatus(entry, expiredAt: expiredAt)
            unlink(directory + "/" + entry.jobId + ".json")
            logger.notice(
                "delivery expired",
                metadata: [
                    "path": "\(expected)", "job.id": "\(entry.jobId)", "status.file": "\(entry.statusPath)",
                    "expired.at": "\(expiredAt)",
                ])
            if present { removed.append(entry) }
        }
        return removed
    }

    /// Writes `result.expiredAt` into the request's status (record and status file) if it still describes the job.
    private func markStatus(_ entry: Entry, expiredAt: String) {
        let name = StatusRecords.name(ofOutput: entry.statusPath)
        guard let doc = records.read(name), let requestFile = doc.requestFile,
            requestFile.contains("/" + entry.jobId + "/"), doc.result != nil
        else { return }
        do {
            try records.modifyConcluded(name: name, ifRequestFile: requestFile) { doc in
                doc.result?.expiredAt = expiredAt
                doc.warnings =
                    (doc.warnings ?? []) + [
                        "the delivery expired and was removed at \(expiredAt) (delivery.retentionDays)"
                    ]
            }
        } catch {
            logger.warning(
                "cannot write the status file", metadata: ["path": "\(entry.statusPath)", "error": "\(error)"])
        }
    }

    /// Seconds between two passes: a twentieth of the retention, between 1 s and 10 min.
    static func interval(retentionSeconds: Double) -> Double { min(600, max(1, retentionSeconds / 20)) }
}
