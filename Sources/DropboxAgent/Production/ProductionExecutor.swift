import Foundation
import Logging
import RestoreSteps

// INTEGRATION PENDING: the real steps are wired in here once RestoreSteps has them. Until then every
// request fails at step 1 with an explicit error; nothing claims success.
struct ProductionExecutor: RestoreExecutor {
    init(configuration: AgentConfiguration, logger: Logger) throws {}

    func execute(_ job: ExecutionJob, completed: Set<StepName>, observer: any PipelineObserver, reporter: any StepReporter) async -> (PipelineOutcome, ExecutionResult) {
        (.failed(RestoreError("notImplemented", "this build has no restore steps yet", step: .prepare)), ExecutionResult())
    }

    func cleanUp(_ job: ExecutionJob, succeeded: Bool) async {}
}

struct MailNotifier: Notifier {
    init(configuration: AgentConfiguration, logger: Logger) throws {}
    func notify(_ status: StatusDocument, request: RestoreRequest, facts: [String: String]) async -> [StatusDocument.Notification] { [] }
}

enum PlanPreview {
    static func render(for request: RestoreRequest, configuration: AgentConfiguration) throws -> String {
        throw RestoreError("notImplemented", "--plan needs the catalogue integration")
    }
}
