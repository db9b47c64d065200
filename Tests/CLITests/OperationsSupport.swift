import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Support for the operational-safety tests (issue #12 items 3, 4, 7): running the binary without root's power over
// file permissions, read-only bind mounts, the chaos shim's path-targeted faults, file names as raw bytes, and
// catalog edits that fabricate what an interrupted job leaves.

/// Runs a program, returning its exit status and its stdout and stderr together.
func runProgram(_ program: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    do { try p.run() } catch { return (-1, "\(error)") }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, output.trimmingCharacters(in: .whitespacesAndNewlines))
}

/// Makes `path` read-only by bind-mounting it read-only over itself (root: chmod would not stop root), undone when the
/// test ends; as another user, removes the write bits of `path` and everything below it instead. Nil on success,
/// else why it could not (the caller fails the test with it: CI runs as root, and no test skips).
func makeReadOnly(_ path: String, _ test: XCTestCase) -> String? {
    if geteuid() != 0 {
        let r = runProgram("/bin/chmod", ["-R", "a-w", path])
        test.addTeardownBlock { _ = runProgram("/bin/chmod", ["-R", "u+w", path]) }
        return r.status == 0 ? nil : "chmod -R a-w \(path): \(r.output)"
    }
    let bind = runProgram("/bin/mount", ["--bind", path, path])
    guard bind.status == 0 else { return "mount --bind \(path): \(bind.output) (this test needs mount rights as root, as in CI)" }
    test.addTeardownBlock { _ = runProgram("/bin/umount", ["-l", path]) }
    let ro = runProgram("/bin/mount", ["-o", "remount,bind,ro", path])
    return ro.status == 0 ? nil : "mount -o remount,bind,ro \(path): \(ro.output)"
}

/// Undoes `makeReadOnly` before the test ends.
func makeWritable(_ path: String) {
    if geteuid() != 0 {
        _ = runProgram("/bin/chmod", ["-R", "u+w", path])
    } else {
        _ = runProgram("/bin/umount", [path])
    }
}

extension Scenario {
    /// `sv`, but as root without the capabilities that let root read and write any file regardless of its mode
    /// (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, dropped with setpriv), so a mode-000 file is unreadable to the job as
    /// it is to any other user. As another user, the plain `sv`.
    func svWithoutOverride(_ args: [String], day: Int) throws -> CLI.Result {
        guard geteuid() == 0 else { return try sv(args, day: day) }
        let full = args + ["--vault", vault, "--now", SimDay.now(day), "--json"]
        let caps = "-dac_override,-dac_read_search"
        return try CLI.execute("/usr/bin/setpriv", ["--bounding-set", caps, "--inh-caps", caps, CLI.binary] + full, scrubbed: true)
    }

    /// `sv` with the chaos shim loaded (tools/chaos-shim.c) and its fault variables.
    func svWithShim(_ args: [String], day: Int, _ faults: [String: String]) throws -> CLI.Result {
        let shim = try ChaosShim.path.get()
        return try sv(args, day: day, environment: faults.merging(["LD_PRELOAD": shim]) { a, _ in a })
    }

    /// Runs SQL that changes the catalog (committed), to fabricate what an interrupted job leaves behind.
    func editCatalog(_ statements: [String]) throws {
        let script = """
            import sqlite3, sys
            con = sqlite3.connect(sys.argv[1])
            for sql in sys.argv[2:]:
                con.execute(sql)
            con.commit()
            con.close()
            """
        let r = try CLI.execute("/usr/bin/env", ["python3", "-c", script, catalog] + statements)
        guard r.status == 0 else { throw NSError(domain: "sqlite", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
    }

    /// The users of the report's `archived`, `failed` or other list of `{user: …}` objects, sorted.
    static func users(_ r: CLI.Result, _ key: String) -> [String] {
        ((r.json?[key] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }.sorted()
    }
}

/// The names in a directory as raw bytes, sorted (Swift Strings would merge canonically equivalent spellings).
func rawNames(_ directory: String) throws -> [[UInt8]] {
    guard let dir = opendir(directory) else { throw NSError(domain: "opendir", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: directory]) }
    defer { closedir(dir) }
    var names: [[UInt8]] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
        if name != [0x2e] && name != [0x2e, 0x2e] { names.append(name) }
    }
    return names.sorted { $0.lexicographicallyPrecedes($1) }
}

/// The contents of the file whose name in `directory` is exactly these bytes.
func readFile(in directory: String, rawName: [UInt8]) throws -> [UInt8] {
    let path = Array(directory.utf8) + [0x2f] + rawName + [0]
    let fd = path.withUnsafeBufferPointer { p in p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { open($0, O_RDONLY) } }
    guard fd >= 0 else { throw NSError(domain: "open", code: Int(errno)) }
    defer { close(fd) }
    var out: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { break }
        out += buffer[0..<n]
    }
    return out
}
