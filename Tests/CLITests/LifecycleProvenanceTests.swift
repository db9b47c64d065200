import Foundation
import GRDB
import XCTest
import VaultCrypto
@testable import ShredVault

/// G8 through the binary (vault-format.md §3.10): the issue's forgery — a new bundle for a user with the genuine
/// header, a fresh data key sealed to the user's and day's public keys read from the keystore, sidecar and catalog row
/// rewritten, all without any key — is refused by `hold place`, `restore` and `check --read-data` with one line naming
/// the bundle and exit 65, and nothing reaches the restore target. A swapped `master.pub` stops every job before it
/// seals anything.
final class LifecycleProvenanceTests: XCTestCase {
    let confession = "I, ua, admit everything. (written by an attacker)\n"

    /// Rewrites ua's bundle as the attacker (file writes and public keys only).
    func forge(_ s: Scenario) throws -> String {
        let queue = try DatabaseQueue(path: s.catalog)
        defer { try? queue.close() }
        var b = try XCTUnwrap(try queue.read { db in try BundleRecord.fetchOne(db, sql: "SELECT * FROM bundles WHERE user_id = 'ua' AND state = 'live'") })
        let path = s.vault + "/" + b.location
        let (header, _) = try BundleReader.readHeader(path: path)
        let keystore = try DatabaseQueue(path: s.keystore, configuration: { var c = Configuration(); c.readonly = true; return c }())
        defer { try? keystore.close() }
        let publicKeys = try keystore.read { db in
            try Row.fetchAll(db, sql: "SELECT key_id, public_key FROM keys").reduce(into: [Data: Data]()) { $0[$1["key_id"]] = $1["public_key"] }
        }
        let userKey = try P256PublicKey(x963Representation: Array(try XCTUnwrap(publicKeys[b.userKeyId])))
        let dayKey = try P256PublicKey(x963Representation: Array(try XCTUnwrap(publicKeys[b.outerKeyId!])))
        try FileManager.default.createDirectory(atPath: s.dir + "/forgery", withIntermediateDirectories: true)
        try write(confession, to: s.dir + "/forgery/confession.txt")
        let dek = try SecretBytes.random(count: 32)
        _ = try BundleWriter.seal(source: s.dir + "/forgery", header: header, dataKey: dek, to: s.dir + "/forged.svb")
        XCTAssertEqual(rename(s.dir + "/forged.svb", path), 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        b.size = Int64(bytes.count)
        b.sha256 = Data(try SHA256.hash(Array(bytes)))
        b.sealedDek = Data(try KeyHierarchy.sealDataKey(dek, binding: .init(header: header), userKey: userKey, outerRole: .day, outerKey: dayKey))
        try queue.write { db in try b.update(db) }
        try Data(try XCTUnwrap(b.sidecar).encoded()).write(to: URL(fileURLWithPath: s.vault + "/" + DEKSidecar.location(forBundle: b.location)))
        return b.id
    }

    func testTheForgeryOfTheIssueIsRefusedAndNothingIsDelivered() throws {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 21)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 22)),
        ])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        let bundleId = try forge(s)

        // Keyless check already sees it; check --read-data and hold place refuse it.
        let check = try s.sv(["check"], day: 1, json: false)
        XCTAssertEqual(check.status, 2, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("bad-signature bundle \(bundleId) of ua"), check.stdout)
        let read = try s.svk(["check", "--read-data"], day: 1, json: false)
        XCTAssertEqual(read.status, 2, read.stdout + read.stderr)
        XCTAssertTrue(read.stdout.contains("bad-signature bundle \(bundleId) of ua"), read.stdout)
        assertSuccess(try s.sv(["sweep"], day: 1), "sweep")  // hold place sweeps first: do it before the snapshot
        try assertChangesNothing(s, "hold place on a forged bundle") {
            let hold = try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "litigation"], day: 1, json: false)
            assertOneLineError(hold, exit: 65, ["bundle \(bundleId) of ua", "was not made by this vault's jobs"], "hold place")
        }
        XCTAssertFalse(try s.sv(["hold", "list", "--all"], day: 1, json: false).stdout.contains("C1"))

        // A hold placed on the genuine bundle, then the forgery: restore refuses and writes nothing.
        let s2 = try Scenario(self)
        try s2.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 23))])
        try s2.initVault()
        assertSuccess(try s2.sv(["archive", "--source", s2.source], day: 0), "archive")
        assertSuccess(try s2.svk(["hold", "place", "ua", "--case", "C1", "--reason", "litigation"], day: 1), "hold place")
        let forged = try forge(s2)
        let restore = try s2.svk(["restore", "ua", "--case", "C1", "--to", s2.dir + "/out"], day: 2, json: false)
        assertOneLineError(restore, exit: 65, ["bundle \(forged) of ua", "was not made by this vault's jobs"], "restore")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s2.dir + "/out"))
        XCTAssertEqual(listing(s2.dir).filter { $0.contains("out") }, [], "no staging directory either")
    }

    func testASwappedArchiveKeyStopsEveryJobBeforeItSealsAnything() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 24))])
        try s.initVault()
        let attacker = try P256PrivateKey.generate()
        try write(MasterKey.encodeArchiveKey(attacker.publicKey), to: s.vault + "/master.pub", mode: 0o644)
        try assertChangesNothing(s, "jobs with a swapped master.pub") {
            for job in [["archive", "--source", s.source], ["sweep"], ["delete", "ua", "--request-id", "R1"], ["backup", "--to", s.dir + "/bk"]] {
                let r = try s.sv(job, day: 1, json: false)
                assertOneLineError(r, exit: 65, ["does not verify with master.pub"], job[0])
            }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.source + "/users/ua"), "nothing was archived to the attacker's key")
    }

    func testInitRefusesAJobCredentialNamedInItsEnvironment() throws {
        let s = try Scenario(self)
        let r = try runShredvault(["init", "--vault", s.vault, "--master-key-file", s.keyFile, "--drill", "--now", SimDay.now(0)],
                                  environment: ["SHREDVAULT_JOB_KEY": s.dir + "/other-vault.key"])
        assertOneLineError(r, exit: 64, ["SHREDVAULT_JOB_KEY", "unset it for init"], "init with SHREDVAULT_JOB_KEY set")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.vault), "no vault directory")
        XCTAssertEqual(listing(s.dir + "/secrets"), [], "no restore key, keyring, root or credential")
    }
}
