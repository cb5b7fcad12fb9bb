import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

// MARK: - The restore cache: reusing an earlier restore of the same inputs, keeping this one

extension ProductionExecutor {
    /// Links an earlier restore of the same inputs into this working area (steps 2–5 are then skipped), if the cache
    /// has one. A failure to link is logged and the restore simply runs.
    func reuse(_ cache: RestoreCache, context: RestoreContext, job: ExecutionJob) async -> Bool {
        guard let metadata = try? context.metadata(), let key = RestoreCache.key(metadata),
            let entry = cache.lookup(key)
        else { return false }
        let products = context.workArea.products(metadata.relativePath)
        let working = context.workArea.working(metadata.relativePath)
        let reusedDirectory = context.workArea.root + "/reused"
        let jobDirectory = job.jobDirectory
        do {
            try await BlockingWork.run { (_) throws in
                try cache.materialize(
                    entry, products: products, logs: working, plots: reusedDirectory + "/plots",
                    jobDirectory: jobDirectory)
                // Made by materialize only when the entry has plots (a restore whose plots failed has none).
                try FileManager.default.createDirectory(atPath: reusedDirectory, withIntermediateDirectories: true)
                try AtomicFile.write(try encodeJSON(entry), to: reusedDirectory + "/reused.json")
            }
        } catch {
            job.logger.warning(
                "cannot reuse an earlier restore; restoring", metadata: ["key": "\(key)", "error": "\(error)"])
            return false
        }
        job.logger.notice(
            "restore reused",
            metadata: [
                "key": "\(key)", "restored.for": "\(entry.sourceRequest)",
                "measurement.sets": "\(entry.measurementSets)",
            ])
        return true
    }

    /// Keeps this restore's measurement sets (hard links), CASA logs and plots for later requests of the same inputs.
    func keep(_ cache: RestoreCache, context: RestoreContext, job: ExecutionJob) async {
        guard let metadata = try? context.metadata(), let key = RestoreCache.key(metadata) else { return }
        let products = context.workArea.products(metadata.relativePath)
        let working = context.workArea.working(metadata.relativePath)
        let measurementSets = metadata.plan.execBlocks.map(\.asdmDiskName.msName)
        let logs =
            (((try? FileManager.default.contentsOfDirectory(atPath: working)) ?? []).filter {
                $0.hasPrefix("casa-") && $0.hasSuffix(".log")
            }
            .map { working + "/" + $0 }) + [context.workArea.logs + "/casa-stdout.log"]
        let plots = context.workArea.root + "/derived/plots"
        let name = job.name
        let jobDirectory = job.jobDirectory
        do {
            try await BlockingWork.run { (_) throws in
                try cache.store(
                    key: key, mous: metadata.mous.rawValue, sourceRequest: name, measurementSets: measurementSets,
                    products: products, logs: logs, plots: plots, jobDirectory: jobDirectory,
                    staged: { CrashPoint.hit("restore-cache-staged") })
            }
        } catch {
            job.logger.warning("cannot keep the restore for reuse", metadata: ["error": "\(error)"])
        }
    }
}
