import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn that the test reaps itself (Foundation's `Process` reaps on its own
/// schedule). Until `waitpid` has returned its exit, the PID cannot be reused, so a signal sent through this type
/// always reaches this child: it is never sent once the child was reaped.
final class SpawnedProcess {
    let pid: pid_t
    let stdoutPath: String
    let stderrPath: String
    /// The raw wait status, once the child has been reaped.
    private(set) var waitStatus: Int32?

    /// Starts `executable` with exactly `environment`; stdin is /dev/null, stdout and stderr go to the given files.
    init(_ executable: String, _ arguments: [String], environment: [String: String], stdout: String, stderr: String) throws {
        stdoutPath = stdout
        stderrPath = stderr
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        // The child starts with no blocked signal and default dispositions, whatever the test thread has.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw NSError(domain: "posix_spawn", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(rc))])
        }
        pid = child
    }

    /// `shredvault ARGS` with the test's environment minus every `SHREDVAULT_*` variable, plus `environment`.
    static func shredvault(_ arguments: [String], environment: [String: String] = [:], logs: String) throws -> SpawnedProcess {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SHREDVAULT_") }
        for (k, v) in environment { env[k] = v }
        return try SpawnedProcess(CLI.binary, arguments, environment: env, stdout: logs + ".out", stderr: logs + ".err")
    }

    var reaped: Bool { waitStatus != nil }

    /// Non-blocking: reaps the child if it has exited; true once it has.
    func hasExited() -> Bool {
        if waitStatus != nil { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { waitStatus = status }
        return waitStatus != nil
    }

    /// Stops the child (SIGSTOP, which it cannot catch) and waits until every thread of it is stopped. Returns false
    /// when it exited instead; it is then reaped and never signalled again.
    func stop() -> Bool {
        precondition(waitStatus == nil, "the child was reaped; its PID may belong to another process now")
        kill(pid, SIGSTOP)
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WUNTRACED)
            if r == -1 && errno == EINTR { continue }
            precondition(r == pid, "waitpid: \(String(cString: strerror(errno)))")
            if status & 0xff == 0x7f { return true }
            waitStatus = status
            return false
        }
    }

    /// Lets a stopped child run on.
    func resume() {
        precondition(waitStatus == nil)
        kill(pid, SIGCONT)
    }

    /// SIGKILLs the child (stopped or running, never reaped) and reaps it. Returns true when the SIGKILL is what ended
    /// it: the child had not exited before the signal arrived.
    @discardableResult
    func killAndReap() -> Bool {
        precondition(waitStatus == nil, "the child was reaped; its PID may belong to another process now")
        kill(pid, SIGKILL)
        return waitUntilExit() == nil && terminationSignal == SIGKILL
    }

    /// Waits for the child to end; returns its exit code, or nil when a signal ended it.
    @discardableResult
    func waitUntilExit() -> Int32? {
        while waitStatus == nil {
            var status: Int32 = 0
            let r = waitpid(pid, &status, 0)
            if r == -1 && errno == EINTR { continue }
            precondition(r == pid, "waitpid: \(String(cString: strerror(errno)))")
            if status & 0xff == 0x7f { continue }  // a stop report, not the end
            waitStatus = status
        }
        let s = waitStatus!
        return s & 0x7f == 0 ? (s >> 8) & 0xff : nil
    }

    /// The signal that ended the child, if one did.
    var terminationSignal: Int32? {
        guard let s = waitStatus, s & 0x7f != 0, s & 0x7f != 0x7f else { return nil }
        return s & 0x7f
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Whether the child holds a flock(2) lock on `path` (read from /proc/locks, by its PID and the file's inode).
    func holdsLock(on path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return false }
        // "1: FLOCK  ADVISORY  WRITE 12345 fd:01:1234 0 EOF"; a waiter's line has "->" after the number.
        return locks.split(separator: "\n").contains { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, f[1] == "FLOCK", f[0].hasSuffix(":") else { return false }
            return f[4] == "\(pid)" && f[5].hasSuffix(":\(st.st_ino)")
        }
    }

    /// Whether the child has `path` open (a link in /proc/PID/fd).
    func hasOpen(_ path: String) -> Bool {
        let dir = "/proc/\(pid)/fd"
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return false }
        return fds.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0)) == path }
    }

    deinit {
        // A test that failed half way must not leave a child behind; this one is ours (not reaped yet).
        if waitStatus == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
    }
}
