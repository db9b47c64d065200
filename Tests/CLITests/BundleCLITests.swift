import Foundation
import XCTest

final class BundleCLITests: XCTestCase {
    var dir = ""
    var key = ""
    var source = ""

    override func setUpWithError() throws {
        dir = try temporaryDirectory(self)
        key = dir + "/dek.hex"
        XCTAssertEqual(try CLI.run(["bundle", "keygen", key]).status, 0)
        source = CLI.packageRoot + "/samples/vectors/known-answer/edge-cases"
    }

    func seal(_ out: String, user: String = "u0000001") throws -> CLI.Result {
        try CLI.run(["bundle", "seal", "--from", source, "--user", user, "--expiry", "2027-02-26", "--key-file", key, "--out", out, "--json"])
    }

    func testKeygenWritesPrivateFileAndRefusesToOverwrite() throws {
        let attrs = try FileManager.default.attributesOfItem(atPath: key)
        XCTAssertEqual((attrs[.posixPermissions] as! NSNumber).intValue, 0o600)
        XCTAssertEqual(try String(contentsOfFile: key, encoding: .utf8).count, 65)
        let again = try CLI.run(["bundle", "keygen", key])
        XCTAssertEqual(again.status, 73)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
    }

    func testSealInspectOpenRoundTrip() throws {
        let sealed = try seal(dir + "/b.svb")
        XCTAssertEqual(sealed.status, 0, sealed.stderr)
        let s = try XCTUnwrap(sealed.json)
        XCTAssertEqual(s["files"] as? Int, 6)

        let inspect = try CLI.run(["bundle", "inspect", dir + "/b.svb", "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let h = try XCTUnwrap(inspect.json)
        XCTAssertEqual(h["formatVersion"] as? Int, 1)
        XCTAssertEqual(h["userId"] as? String, "u0000001")
        XCTAssertEqual(h["expiryDay"] as? String, "2027-02-26")
        XCTAssertEqual(h["headerLength"] as? Int, 100)
        XCTAssertEqual(h["bundleId"] as? String, s["bundleId"] as? String)

        let open = try CLI.run(["bundle", "open", dir + "/b.svb", "--key-file", key, "--to", dir + "/out", "--json"])
        XCTAssertEqual(open.status, 0, open.stderr)
        let diff = try CLI.execute("/usr/bin/diff", ["-r", source, dir + "/out"])
        XCTAssertEqual(diff.status, 0, diff.stdout)
        XCTAssertEqual(try CLI.run(["bundle", "open", dir + "/b.svb", "--key-file", key, "--verify-only"]).status, 0)
    }

    func testIndependentReaderDecryptsABundle() throws {
        XCTAssertEqual(try seal(dir + "/b.svb").status, 0)
        // Debian's python3 with python3-cryptography (installed by .ci/run) and the zstd tool: no ShredVault code.
        let reader = CLI.packageRoot + "/tools/independent-reader.py"
        let out = try CLI.execute("/bin/sh", ["-c", "python3 '\(reader)' '\(dir)/b.svb' '\(key)' > '\(dir)/payload.tar'"])
        XCTAssertEqual(out.status, 0, out.stderr)
        let list = try CLI.execute("/bin/tar", ["-tf", dir + "/payload.tar"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains("files/messages/données-日本語 ✓.txt"), list.stdout)
        XCTAssertTrue(list.stdout.hasSuffix("manifest.json\n"))
        XCTAssertEqual(try CLI.execute("/bin/sh", ["-c", "mkdir '\(dir)/x' && tar -xf '\(dir)/payload.tar' -C '\(dir)/x' && diff -r '\(source)' '\(dir)/x/files'"]).status, 0)
    }

    func testEveryByteFlipTruncationAndExtensionFailsWithoutTarget() throws {
        try write("tiny\n", to: dir + "/one.txt", mode: 0o644)
        try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: false)
        try FileManager.default.moveItem(atPath: dir + "/one.txt", toPath: dir + "/src/one.txt")
        source = dir + "/src"
        XCTAssertEqual(try seal(dir + "/b.svb").status, 0)
        let good = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/b.svb")))
        var cases: [(String, [UInt8])] = []
        for i in stride(from: 0, to: good.count, by: 1) { var b = good; b[i] ^= 0xff; cases.append(("flip \(i)", b)) }
        for n in stride(from: 0, to: good.count, by: 7) { cases.append(("truncate \(n)", Array(good[0..<n]))) }
        cases.append(("append", good + [0x00]))
        // The exact outcome of each case, by where it hits (vault-format.md §2.1, §2.5; README "Exit codes"): 69 for an
        // unknown version or algorithm, 77 for a failed key commitment (any other header byte, the salt or the
        // commitment), 65 for everything else (magic, length fields, flags, user id, truncation, chunks).
        let h = Int(good[12]) << 8 | Int(good[13])
        func expected(_ what: String) -> (Int32, String) {
            let parts = what.split(separator: " ")
            let n = Int(parts.last!) ?? -1
            switch (parts[0], n) {
            case ("flip", 0..<8): return (65, "not a ShredVault bundle")
            case ("flip", 8..<10): return (69, "format version")
            case ("flip", 10..<12): return (69, "algorithm")
            case ("flip", 12..<16): return (65, "malformed header")
            case ("flip", 16..<92): return (77, "key commitment mismatch")
            case ("flip", 92..<h): return (65, "malformed header")
            case ("flip", h..<(h + 56)): return (77, "key commitment mismatch")
            case ("flip", _): return (65, "corrupt or truncated")
            case ("truncate", 0..<8): return (65, "not a ShredVault bundle")
            case ("truncate", 8..<h): return (65, "file ends inside the header")
            case ("truncate", _), ("append", _): return (65, "corrupt or truncated")
            default: return (-1, "?")
            }
        }
        for (what, bytes) in cases {
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/bad.svb"))
            let r = try CLI.run(["bundle", "open", dir + "/bad.svb", "--key-file", key, "--to", dir + "/out"])
            let (code, needle) = expected(what)
            XCTAssertEqual(r.status, code, "\(what): exit \(r.status) \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(needle), "\(what): stderr names '\(needle)': \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("shredvault: error: "), "\(what): \(r.stderr)")
            XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, "\(what): one line: \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"), what)
        }
        XCTAssertEqual(listing(dir), ["b.svb", "bad.svb", "dek.hex", "src"])
    }

    func testErrorsHaveDocumentedExitCodes() throws {
        XCTAssertEqual(try seal(dir + "/b.svb").status, 0)
        // Existing target.
        try FileManager.default.createDirectory(atPath: dir + "/exists", withIntermediateDirectories: false)
        XCTAssertEqual(try CLI.run(["bundle", "open", dir + "/b.svb", "--key-file", key, "--to", dir + "/exists"]).status, 73)
        // Missing bundle.
        XCTAssertEqual(try CLI.run(["bundle", "open", dir + "/nope.svb", "--key-file", key, "--to", dir + "/o"]).status, 66)
        // World-readable key file.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: key)
        let loose = try CLI.run(["bundle", "open", dir + "/b.svb", "--key-file", key, "--to", dir + "/o"])
        XCTAssertEqual(loose.status, 77)
        XCTAssertTrue(loose.stderr.contains("chmod 600"), loose.stderr)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        // Wrong key.
        try write(String(repeating: "ab", count: 32) + "\n", to: dir + "/other.hex")
        let wrong = try CLI.run(["bundle", "open", dir + "/b.svb", "--key-file", dir + "/other.hex", "--to", dir + "/o"])
        XCTAssertEqual(wrong.status, 77)
        XCTAssertTrue(wrong.stderr.contains("wrong data key"), wrong.stderr)
        // Malformed key file.
        try write("not a key\n", to: dir + "/bad.hex")
        XCTAssertEqual(try CLI.run(["bundle", "open", dir + "/b.svb", "--key-file", dir + "/bad.hex", "--to", dir + "/o"]).status, 77)
        // Future version.
        var v2 = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/b.svb")))
        v2[9] = 2
        try Data(v2).write(to: URL(fileURLWithPath: dir + "/v2.svb"))
        let future = try CLI.run(["bundle", "inspect", dir + "/v2.svb"])
        XCTAssertEqual(future.status, 69)
        XCTAssertTrue(future.stderr.contains("version 2"), future.stderr)
        // Not a bundle.
        try write("hello\n", to: dir + "/text.svb")
        XCTAssertEqual(try CLI.run(["bundle", "inspect", dir + "/text.svb"]).status, 65)
        // Bad arguments.
        XCTAssertEqual(try CLI.run(["bundle", "seal", "--from", source, "--user", "../evil", "--expiry", "2027-02-26", "--key-file", key, "--out", dir + "/x.svb"]).status, 64)
        XCTAssertEqual(try CLI.run(["bundle", "seal", "--from", source, "--user", "u1", "--expiry", "2027-02-30", "--key-file", key, "--out", dir + "/x.svb"]).status, 64)
        // Existing output is never overwritten.
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/b.svb"))
        XCTAssertEqual(try seal(dir + "/b.svb").status, 73)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/b.svb")), before)
        XCTAssertFalse(listing(dir).contains { $0.contains("partial") })
    }

    func testHelpTeaches() throws {
        let help = try CLI.run(["bundle", "seal", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--key-file"))
        let top = try CLI.run(["--help"])
        XCTAssertTrue(top.stdout.contains("EXIT CODES"), top.stdout)
        let bundle = try CLI.run(["bundle", "--help"])
        XCTAssertTrue(bundle.stdout.contains("shredvault bundle keygen"), bundle.stdout)
    }
}
