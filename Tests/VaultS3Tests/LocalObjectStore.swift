import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The real object store of the tests: OpenStack Swift with s3api, started by `tools/object-store start` in a fresh
/// directory and stopped by `tools/object-store stop`, which signals exactly the PIDs `start` recorded. Where the
/// store cannot start (Swift not installed, no Debian packages), `start` throws and the tests fail: they never skip.
final class LocalObjectStore: @unchecked Sendable {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let script = packageRoot.appendingPathComponent("tools/object-store").path

    let directory: String
    /// AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION of the store.
    let environment: [String: String]
    /// The PIDs `start` recorded (memcached and the four Swift servers).
    private(set) var pids: [pid_t]
    /// Seconds from `start` to a signed ListBuckets answered with 200.
    let startSeconds: Double

    private init(directory: String, environment: [String: String], pids: [pid_t], startSeconds: Double) {
        self.directory = directory
        self.environment = environment
        self.pids = pids
        self.startSeconds = startSeconds
    }

    static func start() throws -> LocalObjectStore {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vaults3-store-\(UUID().uuidString)").path
        let began = Date()
        let output = try run(["start", base])
        let seconds = Date().timeIntervalSince(began)
        var environment: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            environment[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        for name in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] where environment[name] == nil {
            throw StoreError("tools/object-store start printed no \(name)")
        }
        let pidLines = try String(contentsOfFile: base + "/pids", encoding: .utf8).split(separator: "\n")
        let pids = pidLines.compactMap { $0.split(separator: " ").first.flatMap { pid_t($0) } }
        return LocalObjectStore(directory: base, environment: environment, pids: pids, startSeconds: seconds)
    }

    /// Stops the store (by the PIDs it recorded) and removes its directory; returns the PIDs still alive after
    /// (none, when stop worked).
    @discardableResult
    func stop() throws -> [pid_t] {
        _ = try Self.run(["stop", directory])
        let alive = pids.filter { kill($0, 0) == 0 }
        try? FileManager.default.removeItem(atPath: directory)
        return alive
    }

    /// Stops the store's servers by the PIDs `start` recorded, keeping its directory (data, configs, ports).
    func stopServers() throws { _ = try Self.run(["stop", directory]) }

    /// Starts the servers `stopServers` stopped again, with the same data, ports and credentials.
    func restart() throws {
        _ = try Self.run(["restart", directory])
        let pidLines = try String(contentsOfFile: directory + "/pids", encoding: .utf8).split(separator: "\n")
        pids = pidLines.compactMap { $0.split(separator: " ").first.flatMap { pid_t($0) } }
    }

    /// Runs `tools/object-store ARGS` and waits for it; its stdout, or an error with its stderr. Spawned and reaped
    /// here (posix_spawn, waitpid): Foundation's `Process` reaps on its own schedule and was seen never to notice
    /// this script's exit. Output goes to files, so the servers the script leaves running hold no pipe of the test.
    private static func run(_ arguments: [String]) throws -> String {
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("object-store-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: logs + ".out")
            try? FileManager.default.removeItem(atPath: logs + ".err")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logs + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, logs + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = (["/bin/bash", script] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] =
            ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, "/bin/bash", &actions, nil, argv, envp)
        guard rc == 0 else { throw StoreError("posix_spawn /bin/bash: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(child, &status, 0) == -1 {
            guard errno == EINTR else { throw StoreError("waitpid: \(String(cString: strerror(errno)))") }
        }
        let out = (try? String(contentsOfFile: logs + ".out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: logs + ".err", encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        guard exited && (status >> 8) & 0xff == 0 else {
            throw StoreError("tools/object-store \(arguments[0]) failed (\(exited ? "exit \((status >> 8) & 0xff)" : "signal \(status & 0x7f)")): "
                + err.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return out
    }

    struct StoreError: Error, CustomStringConvertible {
        let description: String
        init(_ text: String) { description = text }
    }
}

/// The store one test class shares: started in `class setUp`, stopped in `class tearDown`. A start failure is kept
/// and reported by every test of the class (as a failure, not a skip).
final class SharedStore: @unchecked Sendable {
    private let lock = NSLock()
    private var store: LocalObjectStore?
    private var failure: String?

    func start() {
        lock.withLock {
            do {
                store = try LocalObjectStore.start()
            } catch {
                failure = "the local object store did not start: \(error)"
            }
        }
    }

    func get() throws -> LocalObjectStore {
        try lock.withLock {
            guard let store else { throw LocalObjectStore.StoreError(failure ?? "the local object store was not started") }
            return store
        }
    }

    /// Stops the store; returns a problem to report, if any.
    func stop() -> String? {
        lock.withLock {
            guard let running = store else { return nil }
            store = nil
            do {
                let alive = try running.stop()
                return alive.isEmpty ? nil : "tools/object-store stop left PIDs \(alive) running"
            } catch {
                return "\(error)"
            }
        }
    }
}
