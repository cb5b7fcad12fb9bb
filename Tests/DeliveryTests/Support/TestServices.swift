import Foundation
import Testing
import DropboxTestKit

/// Where the repository's helper scripts live (derived from this file's path).
enum RepositoryPaths {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // Support, DeliveryTests, Tests, <root>
        return url.path
    }()
    static let services = root + "/scripts/services"
}

struct ServiceError: Error, CustomStringConvertible {
    var description: String
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func portIsOpen(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// A helper server started for one test: its port, its PID, and how to stop it (by PID).
final class TestService: @unchecked Sendable {  // immutable after init; stop() is idempotent and called once
    let name: String
    let port: Int
    let pid: pid_t
    let runDirectory: String
    private let child: Bool

    private init(name: String, port: Int, pid: pid_t, runDirectory: String, child: Bool) {
        self.name = name
        self.port = port
        self.pid = pid
        self.runDirectory = runDirectory
        self.child = child
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Stops the service by PID (SIGTERM) and waits until it is gone.
    func stop() {
        kill(pid, SIGTERM)
        if child {
            if !poll(for: 5, { hasExited(pid) }) {
                kill(pid, SIGKILL)
                _ = reap(pid)
            }
        } else {
            poll(for: 5) { kill(pid, 0) != 0 || isZombie(pid) }
        }
    }

    private static func require(_ path: String, install: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ServiceError(description: "\(path) is missing: \(install)")
        }
    }

    private static func readInt(_ path: String) -> Int? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Starts `argv` as a child and waits for `runDir/port` and an open port.
    private static func spawn(name: String, argv: [String], runDirectory: String) throws -> TestService {
        let log = runDirectory + "/stderr.log"
        let pid = try spawnProcess(argv, outputFile: log)
        var port: Int?
        let ready = poll(for: 15) {
            port = readInt(runDirectory + "/port")
            return port.map(portIsOpen) ?? false || hasExited(pid)
        }
        guard ready, !hasExited(pid), let port else {
            kill(pid, SIGKILL)
            _ = reap(pid)
            let err = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw ServiceError(description: "\(name) did not start: \(err)")
        }
        return TestService(name: name, port: port, pid: pid, runDirectory: runDirectory, child: true)
    }

    /// Starts `fault_store.py` over `store`.
    static func faultStore(store: String, runDirectory: String) throws -> TestService {
        try require("/usr/bin/python3", install: "apt-get install python3")
        return try spawn(
            name: "fault_store",
            argv: [
                "/usr/bin/python3", RepositoryPaths.services + "/fault_store.py", "--store", store, "--run-dir",
                runDirectory,
            ],
            runDirectory: runDirectory)
    }

    /// How `smtp_server.py` secures connections.
    enum SMTPMode { case startTLS, implicitTLS, plain }

    /// Starts `smtp_server.py` (aiosmtpd) requiring `user`/`password`.
    static func smtpServer(
        runDirectory: String, user: String?, password: String?, mode: SMTPMode = .startTLS
    ) throws
        -> TestService
    {
        try require("/usr/bin/python3", install: "apt-get install python3 python3-aiosmtpd")
        var argv = ["/usr/bin/python3", RepositoryPaths.services + "/smtp_server.py", "--run-dir", runDirectory]
        if let user, let password { argv += ["--user", user, "--password", password] }
        switch mode {
        case .startTLS: break
        case .implicitTLS: argv.append("--implicit-tls")
        case .plain: argv.append("--plain")
        }
        return try spawn(name: "smtp_server", argv: argv, runDirectory: runDirectory)
    }

    /// Starts nginx through `nginx-store.sh` over `store` on a free port; `autoindex` (`html`, `json`) turns
    /// the directory index of `/files/` on.
    static func nginxStore(store: String, runDirectory: String, autoindex: String? = nil) throws -> TestService {
        try require("/usr/sbin/nginx", install: "apt-get install --no-install-recommends nginx-light")
        let log = runDirectory + "/start.log"
        let pid = try spawnProcess(
            ["/bin/sh", RepositoryPaths.services + "/nginx-store.sh", "start", store, "0", runDirectory]
                + (autoindex.map { [$0] } ?? []),
            outputFile: log)
        let status = reap(pid)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        guard status == 0, let port = readInt(runDirectory + "/port"),
            let nginxPid = readInt(runDirectory + "/nginx.pid")
        else {
            throw ServiceError(description: "nginx-store.sh start failed: \(output)")
        }
        return TestService(name: "nginx", port: port, pid: pid_t(nginxPid), runDirectory: runDirectory, child: false)
    }

    /// `GET /_counters` of a fault store: bytes served and requests per file id.
    func counters(for fileId: String) throws -> (requests: Int, bytes: Int) {
        let data = try httpGet(port: port, path: "/_counters")
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let files = json?["files"] as? [String: Any]
        let entry = files?[fileId] as? [String: Any]
        return ((entry?["requests"] as? Int) ?? 0, (entry?["bytes"] as? Int) ?? 0)
    }
}

private func isZombie(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}

/// Random bytes written to `path`.
@discardableResult
func writeRandomFile(_ path: String, size: Int) throws -> Data {
    var bytes = [UInt8](repeating: 0, count: size)
    var generator = SystemRandomNumberGenerator()
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for i in words.indices { words[i] = generator.next() }
        for i in (words.count * 8)..<size { raw[i] = UInt8.random(in: 0...255) }
    }
    let data = Data(bytes)
    try data.write(to: URL(fileURLWithPath: path))
    chmod(path, 0o644)
    return data
}

/// A minimal HTTP/1.0 GET over a loopback socket (tests only); returns the body.
func httpGet(port: Int, path: String) throws -> Data {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ServiceError(description: "socket failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw ServiceError(description: "cannot connect to port \(port)") }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var response = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    let separator: [UInt8] = [13, 10, 13, 10]
    guard let split = (0..<max(0, response.count - 3)).first(where: { Array(response[$0..<$0 + 4]) == separator })
    else {
        throw ServiceError(description: "malformed HTTP response")
    }
    return Data(response[(split + 4)...])
}

/// posix_spawn of `argv` (no shell) with stdin from /dev/null and stdout+stderr to `outputFile`.
func spawnProcess(_ argv: [String], outputFile: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // The test runner's threads may block signals; the child must start with a clean mask and default actions.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var cArgs = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, &attributes, &cArgs, environ)
    guard rc == 0 else { throw ServiceError(description: "cannot spawn \(argv[0]): \(String(cString: strerror(rc)))") }
    return pid
}

/// Whether child `pid` has exited (reaping it if so).
func hasExited(_ pid: pid_t) -> Bool {
    var status: Int32 = 0
    let rc = waitpid(pid, &status, WNOHANG)
    return rc == pid || rc < 0
}

/// Waits for child `pid` and returns its exit status (or -1).
func reap(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 { if errno != EINTR { return -1 } }
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
}
