internal import Foundation
internal import Logging

/// What `casa/derive_products.py` made and checked.
public struct DerivationReport: Codable, Sendable, Equatable {
    public struct Product: Codable, Sendable, Equatable {
        public var name: String
        public var kind: String
        public var eb: String
        public var rows: Int
        public var expectedRows: Int
        public var spws: [Int]
        public var fields: [String]
    }
    public var products: [Product]
    public var plots: [String]
    public var casa: String?
    public var error: String?
}

/// Derived products (science, targets, contsub; averaged if asked) and quick-look plots, made from the restored
/// measurement sets by real CASA tasks in the modular CASA (`casa/derive_products.py`: mstransform, uvcontsub with
/// the pipeline's `cont.dat`, casatools checks of every product against the restored MS, matplotlib plots), in a
/// process group of its own, never through a shell.
enum ProductDerivation {
    static let program = "derive_products.py"

    struct Spec: Codable {
        struct EB: Codable { var ms: String }
        var ebs: [EB]
        var content: [String]
        var average: RestoreRequest.DeliveryAverage?
        var contdat: String?
        var outputDirectory: String
        var plotDirectory: String?
    }

    /// The modular installation that derives: the restore's own when modular, else the first modular one.
    static func installation(
        _ context: RestoreContext, _ metadata: RestoreMetadata
    ) throws(RestoreError) -> CASAInstallation {
        let modular = context.services.casaInstallations.filter { $0.kind == .modular }
        if let chosen = metadata.casa?.installation, let own = modular.first(where: { $0.name == chosen }) {
            return own
        }
        guard let first = modular.first(where: { $0.name == "modular" }) ?? modular.first else {
            throw RestoreError(
                .casaUnavailable,
                "derived products and quick-look plots need a modular CASA installation, and none is configured",
                hint: "Create it with `dropbox-agent casa install`.", step: .deliver)
        }
        return first
    }

    /// The pipeline's `cont.dat` among the staged products (the auxiliary products are expanded there in step 3).
    static func contDat(products: String) -> String? {
        if FileManager.default.fileExists(atPath: products + "/cont.dat") { return products + "/cont.dat" }
        guard let e = FileManager.default.enumerator(atPath: products) else { return nil }
        while let item = e.nextObject() as? String {
            if (item as NSString).lastPathComponent == "cont.dat", !item.contains(".ms/") {
                return products + "/" + item
            }
        }
        return nil
    }

    /// Runs the derivation unless a complete earlier run (same spec) left its report; returns the report.
    static func run(
        context: RestoreContext, metadata: RestoreMetadata, measurementSets: [String],
        content: [RestoreRequest.DeliveryContent],
        average: RestoreRequest.DeliveryAverage?, contdat: String?, directory: String, reporter: any StepReporter
    ) async throws -> DerivationReport {
        let spec = Spec(
            ebs: measurementSets.map { .init(ms: $0) }, content: content.filter { $0 != .calibrated }.map(\.rawValue),
            average: average,
            contdat: contdat, outputDirectory: directory + "/products", plotDirectory: directory + "/plots")
        let specPath = directory + "/spec.json"
        let reportPath = directory + "/report.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let specData = try encoder.encode(spec)
        if FileManager.default.contents(atPath: specPath) == specData,
            let data = FileManager.default.contents(atPath: reportPath),
            let done = try? JSONDecoder().decode(DerivationReport.self, from: data), done.error == nil,
            done.products.allSatisfy({ FileSystemSteps.exists(spec.outputDirectory + "/" + $0.name) })
        {
            return done
        }
        FileSystemSteps.remove(directory)
        try FileSystemSteps.createDirectory(spec.outputDirectory)
        try FileSystemSteps.writeAtomically(specData, to: specPath)
        let installation = try installation(context, metadata)
        guard let programDir = installation.programDir else {
            throw RestoreError(
                .casaUnavailable, "the CASA programs directory (casa.programDirectory) is not known", step: .deliver)
        }
        let home = context.workArea.logs + "/home"
        try FileSystemSteps.createDirectory(home)
        var environment: [String: String] = ["PATH": installation.path, "LANG": "C.UTF-8", "HOME": home]
        environment.merge(installation.extraEnvironment) { _, new in new }
        environment.merge([
            "CASASITECONFIG": CASAInstallation.join(installation.home, "casasiteconfig.py"), "MPLBACKEND": "Agg",
            "PYTHONUNBUFFERED": "1",
        ]) { _, new in new }
        let process = CASAProcess(
            executable: CASAInstallation.join(installation.home, "bin/python3"),
            arguments: [CASAInstallation.join(programDir, program), specPath, reportPath], environment: environment,
            workingDirectory: directory, stdoutLog: context.workArea.logs + "/derive-stdout.log",
            timeout: context.services.casaTimeout, gracePeriod: context.services.casaKillGrace)
        context.logger.info(
            "deriving products", metadata: ["content": "\(spec.content)", "installation": "\(installation.name)"])
        let outcome = try await process.run(reporter: reporter, logger: context.logger)
        try Task.checkCancellation()
        let report = FileManager.default.contents(atPath: reportPath).flatMap {
            try? JSONDecoder().decode(DerivationReport.self, from: $0)
        }
        guard outcome.exitStatus.isSuccess, let report, report.error == nil else {
            let why =
                report?.error
                ?? (outcome.timedOut ? "it ran longer than casa.timeoutSeconds" : "it ended \(outcome.exitStatus)")
            throw RestoreError(
                .derivationFailed, "the derived products could not be made: \(why)",
                hint: "See \(context.workArea.logs)/derive-stdout.log.", step: .deliver)
        }
        return report
    }
}

/// Passes progress on with its fraction mapped into `[start, end]` of the step, so that a part of a step (the
/// derivation, then publishing) never makes the step's progress go backwards.
struct ScaledReporter: StepReporter {
    let base: any StepReporter
    let start: Double
    let end: Double

    func report(_ progress: StepProgress) {
        var scaled = progress
        scaled.fraction = progress.fraction.map { start + (end - start) * min(1, max(0, $0)) }
        base.report(scaled)
    }

    func confirmOwnership() throws { try base.confirmOwnership() }
}

extension RestoreError.Code {
    /// CASA could not make or check the derived products (science, targets, contsub) or the quick-look plots.
    public static let derivationFailed: Self = "derivationFailed"
}
