internal import Logging
internal import Foundation

/// Step 5: CASA restores the measurement sets from the PPR, with the installation the request chose (only
/// ever a configured one), the manifest named, or the site default. Success is judged by
/// ``CASASuccessCheck`` — errorexit markers, SEVERE lines, the measurement sets themselves — never by the exit
/// code alone.
public struct CASAStep: PipelineStep {
    public let name = StepName.casa
    public init() {}

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let metadata = try context.metadata()
        let area = context.workArea
        let working = area.working(metadata.relativePath)
        let rawdata = area.rawdata(metadata.relativePath)
        let manifest = manifest(rawdata: rawdata)
        let manifestVersion = manifest?.document.casaVersion
        // A manifest the modular restore cannot reproduce (hifa_renorm, selfcal, …) was already refused before
        // anything was fetched unless a pipeline installation is configured; here it makes that one run.
        let installation = try CASASelection.select(
            requested: context.request.casa, manifestCasaVersion: manifestVersion,
            installations: context.services.casaInstallations, defaultName: context.services.defaultCASA,
            modularRefusal: manifest.flatMap { CASASelection.modularRefusal(for: $0.document, manifestName: $0.name) })
        // A CASA left running by an agent that was killed must not write into the same directory as ours.
        await LeftoverProcesses.stop(workingIn: working, grace: context.services.casaKillGrace, logger: context.logger)

        let runner: any CASARunner = switch installation.kind {
        case .pipeline: PipelineRunner(installation: installation, gracePeriod: context.services.casaKillGrace, logger: context.logger)
        case .modular: ModularRunner(
            installation: installation, programDir: installation.programDir, gracePeriod: context.services.casaKillGrace,
            parallelExecBlocks: context.services.casaParallelExecBlocks, logger: context.logger)
        }
        let asdmNames = metadata.plan.execBlocks.map(\.asdmDiskName.rawValue)
        let invocation = CASAInvocation(
            ppr: PPRStep.path(context, metadata), root: area.root, relativePath: metadata.relativePath.rawValue,
            logsDirectory: area.logs, timeout: context.services.casaTimeout, asdmNames: asdmNames)
        context.logger.info("starting CASA", metadata: ["installation": "\(installation.name)", "kind": "\(installation.kind.rawValue)", "version": "\(installation.version)", "manifest.casaversion": "\(manifestVersion ?? "-")"])
        let result = try await runner.run(invocation, reporter: reporter)
        try Task.checkCancellation()
        let seconds = Double(result.duration.components.seconds) + Double(result.duration.components.attoseconds) / 1e18
        let record = CASARunRecord(installation: installation.name, version: installation.version, durationSeconds: seconds, result: result)
        if let data = try? JSONEncoder().encode(record) { try? FileSystemSteps.writeAtomically(data, to: area.logs + "/casa-run.json") }
        let verdict = CASASuccessCheck.evaluate(
            result: result, working: working, products: area.products(metadata.relativePath), expectedAsdmNames: asdmNames)
        context.logger.info("CASA finished", metadata: [
            "exit": "\(result.exitStatus)", "seconds": "\(result.duration)", "success": "\(verdict.isSuccess)",
            "harmless.severe": "\(verdict.harmlessSevereCount)",
        ])
        try verdict.check()
        reporter.report(StepProgress(fraction: 1, message: "\(asdmNames.count) measurement sets restored"))
    }

    private func manifest(rawdata: String) -> (name: String, document: PipelineManifest)? {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: rawdata)) ?? []).filter { $0.hasSuffix("pipeline_manifest.xml") }
        guard let chosen = PipelineManifest.select(from: names), let document = try? PipelineManifest.parse(file: rawdata + "/" + chosen) else { return nil }
        return (chosen, document)
    }
}

/// `logs/casa-run.json`: how the CASA run went, for operators and the overhead benchmark.
struct CASARunRecord: Codable {
    var installation: String
    var version: String
    /// Wall time of the CASA process alone.
    var durationSeconds: Double
    var result: CASARunResult
}
