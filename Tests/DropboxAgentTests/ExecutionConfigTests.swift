import Foundation
import RestoreSteps
import Testing

@testable import DropboxAgent

@Suite("execution configuration")
struct ExecutionConfigTests {
    private func load(_ json: String) throws -> AgentConfiguration {
        let path = NSTemporaryDirectory() + "execution-\(UUID().uuidString).json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try AgentConfiguration.load(path: path)
    }

    @Test("local by default")
    func defaults() throws {
        let c = try load("{}")
        #expect(c.execution.backend == .local)
        #expect(c.execution.slurm.settings == SlurmSettings())
    }

    @Test("every slurm key is read")
    func keys() throws {
        let c = try load(
            #"{"execution": {"backend": "slurm", "slurm": {"partition": "p", "account": "a", "cpusPerTask": 8, "memory": "32G", "timeLimit": "1-00:00:00", "extraArguments": ["--qos=x"], "pollSeconds": 2}}}"#
        )
        #expect(c.execution.backend == .slurm)
        #expect(
            c.execution.slurm.settings
                == SlurmSettings(
                    partition: "p", account: "a", cpusPerTask: 8, memory: "32G", timeLimit: "1-00:00:00",
                    extraArguments: ["--qos=x"], pollSeconds: 2))
    }

    @Test(
        "typos, shell strings and nonsense are refused with the key's path",
        arguments: [
            (#"{"execution": {"backend": "Slurm"}}"#, "$.execution.backend", "did you mean \"slurm\""),
            (#"{"execution": {"backend": "condor"}}"#, "$.execution.backend", "local, slurm"),
            (#"{"execution": {"slurm": {"partitions": "p"}}}"#, "$.execution.slurm.partitions", "unknown key"),
            (
                #"{"execution": {"slurm": {"extraArguments": "--qos=x --mem=1G"}}}"#,
                "$.execution.slurm.extraArguments", "never a shell string"
            ),
            (
                #"{"execution": {"slurm": {"extraArguments": ["job.sh"]}}}"#, "$.execution.slurm.extraArguments[0]",
                "not an option"
            ),
            (#"{"execution": {"slurm": {"cpusPerTask": 0}}}"#, "$.execution.slurm.cpusPerTask", "at least 1"),
            (#"{"execution": {"slurm": {"partition": "a b"}}}"#, "$.execution.slurm.partition", "one word"),
            (#"{"execution": {"slurm": {"pollSeconds": 0}}}"#, "$.execution.slurm.pollSeconds", "between"),
        ])
    func refused(json: String, path: String, words: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try load(json) }
        #expect(error.path.hasSuffix(path), "\(error)")
        #expect(error.message.contains(words), "\(error)")
    }
}
