import Foundation
import GRDB
import XCTest
import VaultCrypto
@testable import ShredVault

/// `check` reads bundles on several threads, a batch at a time (more bundles here than one batch holds): whatever the
/// number of threads, it finds the same violations, in catalog order, each bundle's own findings (sidecar) before
/// what reading it found, and its progress counts every bundle once.
final class CheckBatchTests: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/secrets/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    let users = 150

    override func setUpWithError() throws {
        XCTAssertGreaterThan(users, 2 * Vault.checkBatchCount, "the vault spans more than two batches")
        dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/secrets", withIntermediateDirectories: false)
        var accounts = "user_id,last_active\n"
        for i in 0..<users {
            let u = String(format: "u%03d", i)
            accounts += "\(u),2025-01-01\n"
            try writeFile(dir + "/src/users/\(u)/mail.txt", pseudoRandomBytes(2_000 + 37 * i, seed: UInt64(i + 1), text: true))
        }
        try writeFile(dir + "/src/accounts.csv", Array(accounts.utf8))
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
        XCTAssertEqual(try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0).archived.count, users)
    }

    /// Live bundles in the order `check` walks them.
    func rows() throws -> [BundleRecord] {
        let queue = try DatabaseQueue(path: vaultPath + "/catalog.db")
        defer { try? queue.close() }
        return try queue.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY expiry_day, id") }
    }

    func check(jobs: Int, readData: Bool, progress: ProgressHandler? = nil) throws -> CheckReport {
        let key = readData ? try MasterKey.readRestoreKey(restoreKeyPath) : nil
        return try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: readData, restoreKey: key, jobs: jobs, progress: progress)
    }

    func testEveryThreadCountFindsTheSameViolationsInCatalogOrder() throws {
        let walk = try rows()
        XCTAssertEqual(walk.count, users)
        func path(_ i: Int) -> String { vaultPath + "/" + walk[i].location }
        func sidecar(_ i: Int) -> String { vaultPath + "/" + DEKSidecar.location(forBundle: walk[i].location) }
        // Damage spread over every batch: a flipped byte, a missing file, a truncation, a missing sidecar, and a
        // bundle with both a missing sidecar and a flipped byte.
        var bytes = try readBytes(path(3))
        bytes[bytes.count - 30] ^= 0x40
        try writeFile(path(3), bytes)
        XCTAssertEqual(unlink(path(70)), 0)
        bytes = try readBytes(path(100))
        try writeFile(path(100), Array(bytes.dropLast(100)))
        XCTAssertEqual(unlink(sidecar(130)), 0)
        XCTAssertEqual(unlink(sidecar(140)), 0)
        bytes = try readBytes(path(140))
        bytes[bytes.count - 30] ^= 0x40
        try writeFile(path(140), bytes)
        let expected: [(Int, String)] = [(3, "bundle-mismatch"), (70, "bundle-missing"), (100, "bundle-mismatch"),
                                         (130, "sidecar"), (140, "sidecar"), (140, "bundle-mismatch")]
        for readData in [false, true] {
            var reports: [CheckReport] = []
            for jobs in [1, 2, 5] {
                final class Calls: @unchecked Sendable { var seen: [(Int, Int64)] = [] }
                let calls = Calls()
                let report = try check(jobs: jobs, readData: readData) { done, total, _, bytes in
                    XCTAssertEqual(total, self.users)
                    calls.seen.append((done, bytes))
                }
                let what = "readData \(readData), jobs \(jobs)"
                XCTAssertEqual(report.checkedBundles, users, what)
                XCTAssertEqual(report.violations.map(\.kind), expected.map(\.1), "\(what): \(report.violations)")
                XCTAssertEqual(report.violations.map(\.subject), expected.map { "bundle \(walk[$0.0].id) of \(walk[$0.0].userId)" }, what)
                // Each bundle once, counted up to the total, and the bytes of them all at the end.
                XCTAssertEqual(calls.seen.map(\.0), Array(1...users) + [users], what)
                XCTAssertEqual(calls.seen.last?.1, walk.reduce(0) { $0 + $1.size }, what)
                reports.append(report)
            }
            XCTAssertEqual(reports[1].violations, reports[0].violations)
            XCTAssertEqual(reports[2].violations, reports[0].violations)
        }
    }

    func testAHealthyVaultPassesOnEveryThreadCount() throws {
        for jobs in [1, 2, 5] {
            XCTAssertEqual(try check(jobs: jobs, readData: true).violations, [], "jobs \(jobs)")
        }
    }
}
