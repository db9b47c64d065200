import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `tools/fault-proxy` between shredvault and the local object store: a loopback HTTP proxy of our own that forwards
/// every signed request unchanged and injects the faults its control file names (errors, dropped connections,
/// delays, truncated or corrupted bodies, "stop"). Started by PID, stopped by that PID.
final class FaultProxy: @unchecked Sendable {
    static let script = LocalObjectStore.packageRoot.appendingPathComponent("tools/fault-proxy").path

    let directory: String
    let pid: pid_t
    let port: Int
    var endpoint: String { "http://127.0.0.1:\(port)" }
    private var controlPath: String { directory + "/control" }
    private var logPath: String { directory + "/log" }

    private init(directory: String, pid: pid_t, port: Int) {
        self.directory = directory
        self.pid = pid
        self.port = port
    }

    /// Starts a proxy in front of `upstream` (the store's AWS_ENDPOINT_URL), with no faults, and waits for its port.
    static func start(upstream: String) throws -> FaultProxy {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fault-proxy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory + "/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, directory + "/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // The Debian interpreter the store itself runs on (python3-swift needs it), standard library only.
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        let arguments = [python, script, "--upstream", upstream, "--control", directory + "/control", "--log", directory + "/log",
                         "--port-file", directory + "/port"]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, python, &actions, nil, argv, envp)
        guard rc == 0 else { throw LocalObjectStore.StoreError("posix_spawn \(python): \(String(cString: strerror(rc)))") }
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: directory + "/port", encoding: .utf8),
               let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return FaultProxy(directory: directory, pid: child, port: port)
            }
            var status: Int32 = 0
            if waitpid(child, &status, WNOHANG) == child {
                let err = (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? ""
                throw LocalObjectStore.StoreError("tools/fault-proxy exited at start: \(err)")
            }
            usleep(20_000)
        }
        kill(child, SIGKILL)
        var status: Int32 = 0
        waitpid(child, &status, 0)
        throw LocalObjectStore.StoreError("tools/fault-proxy did not listen within 15 s")
    }

    /// Replaces the rules (atomically) and clears the log; request numbers count from here. A proxy stopped by a
    /// "stop" rule listens again once it sees the change (it is waited for here).
    func setRules(_ rules: [[String: Any]]) throws {
        let wasStopped = events().contains("stop") && events().last != "resume"
        try? FileManager.default.removeItem(atPath: logPath)
        let data = try JSONSerialization.data(withJSONObject: ["rules": rules])
        try data.write(to: URL(fileURLWithPath: controlPath + ".tmp"))
        guard rename(controlPath + ".tmp", controlPath) == 0 else { throw LocalObjectStore.StoreError("rename control: \(errno)") }
        // The proxy reloads on its next request or within 50 ms; wait for that so the first request counts as 1.
        usleep(200_000)
        if wasStopped {
            let deadline = Date().addingTimeInterval(10)
            while !events().contains("resume") && Date() < deadline { usleep(20_000) }
        }
    }

    /// The requests logged since the last `setRules`: method, path (and query), status (0: dropped), fault.
    func requests() -> [(method: String, path: String, status: Int, fault: String?)] {
        entries().compactMap { entry in
            guard entry["event"] == nil, let method = entry["method"] as? String, let path = entry["path"] as? String,
                  let status = entry["status"] as? Int else { return nil }
            return (method, path, status, entry["fault"] as? String)
        }
    }

    /// Events logged since the last `setRules` ("stop", "resume", "held").
    func events() -> [String] { entries().compactMap { $0["event"] as? String } }

    private func entries() -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// Waits until `event` was logged; false after `seconds`.
    func waitFor(event: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if events().contains(event) { return true }
            usleep(20_000)
        }
        return false
    }

    /// Stops the proxy (its PID) and removes its directory.
    func stop() {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        try? FileManager.default.removeItem(atPath: directory)
    }
}
