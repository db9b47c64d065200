import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

final class PolicyTests: XCTestCase {
    let policy = RetentionPolicy(holidays: ["2026-12-25", "2027-01-01"])
    func day(_ s: String) -> CivilDay { CivilDay(iso: s)! }

    func testExpiryIsArchiveDayPlusArchiveDaysMinusOne() {
        XCTAssertEqual(policy.expiryDay(archivedOn: day("2026-11-29")), day("2027-02-26"))
        XCTAssertEqual(RetentionPolicy(archiveDays: 1).expiryDay(archivedOn: day("2026-11-29")), day("2026-11-29"))
    }

    func testInactivityThresholdIsReachedOnTheDay() {
        XCTAssertTrue(policy.isInactive(lastActive: day("2025-11-29"), today: day("2026-11-29")))   // 365 days
        XCTAssertFalse(policy.isInactive(lastActive: day("2025-11-30"), today: day("2026-11-29")))  // 364 days
    }

    func testDeletionDeadlineCountsBusinessDaysSkippingWeekendsAndHolidays() {
        // Friday 2026-11-27 + 5 business days = Friday 2026-12-04.
        XCTAssertEqual(policy.deletionDeadline(received: day("2026-11-27")), day("2026-12-04"))
        // Saturday: Mon..Fri of the next week.
        XCTAssertEqual(policy.deletionDeadline(received: day("2026-11-28")), day("2026-12-04"))
        // Across Christmas and New Year (both Fridays in 2026): Mon 12-21 + 5 = 12-28 (12-25 skipped).
        XCTAssertEqual(policy.deletionDeadline(received: day("2026-12-21")), day("2026-12-29"))
    }

    /// 20 000 holidays in a row (55 years) right after the request: the deadline is the fifth business day after
    /// them, and finding it is one set lookup per day, not a scan of every holiday for every day (that took 37 s).
    func testManyHolidaysCostOneLookupPerDay() {
        let received = day("2026-11-27")  // a Friday
        let holidays = (1...20_000).map { received.adding(days: Int64($0)).iso }
        var policy = RetentionPolicy(holidays: holidays)
        XCTAssertNil(policy.problem)
        let start = Date()
        let deadline = policy.deletionDeadline(received: received)
        let elapsed = Date().timeIntervalSince(start)
        var expected = received.adding(days: 20_000)
        var remaining = 5
        while remaining > 0 {
            expected = expected.adding(days: 1)
            if expected.weekdayIndex < 5 { remaining -= 1 }
        }
        XCTAssertEqual(deadline, expected)
        XCTAssertLessThan(elapsed, 5, "one deadline over 20 000 holidays took \(elapsed) s")
        // The lookup set follows the holidays when they change.
        policy.holidays = []
        XCTAssertEqual(policy.deletionDeadline(received: received), day("2026-12-04"))
        XCTAssertFalse(RetentionPolicy(holidays: ["2026-12-25"]).isBusinessDay(day("2026-12-25")))
        XCTAssertTrue(RetentionPolicy(holidays: ["2026-12-25"]).isBusinessDay(day("2026-12-24")))
    }

    func testInvalidPolicyFieldsAreNamed() {
        XCTAssertEqual(RetentionPolicy(archiveDays: 91).invalidField?.field, "archiveDays")
        XCTAssertEqual(RetentionPolicy(inactiveDays: 0).invalidField?.field, "inactiveDays")
        XCTAssertEqual(RetentionPolicy(inactiveDays: 36_501).invalidField?.field, "inactiveDays")
        XCTAssertNil(RetentionPolicy(inactiveDays: 36_500).invalidField)
        XCTAssertEqual(RetentionPolicy(deletionBusinessDays: 8).invalidField?.field, "deletionBusinessDays")
        XCTAssertEqual(RetentionPolicy(backupDays: 31).invalidField?.field, "backupDays")
        XCTAssertEqual(RetentionPolicy(holidays: ["2026-12-25", "2026-13-01"]).invalidField?.field, "holidays[1]")
        XCTAssertEqual(RetentionPolicy(backupDays: 7, backupEpochDays: 8).invalidField?.field, "backupEpochDays")
    }

    func testPolicyBoundsFollowThePrivacyPolicy() {
        XCTAssertNil(RetentionPolicy().problem)
        XCTAssertNotNil(RetentionPolicy(archiveDays: 91).problem)
        XCTAssertNotNil(RetentionPolicy(archiveDays: 0).problem)
        XCTAssertNotNil(RetentionPolicy(backupDays: 31).problem)
        XCTAssertNotNil(RetentionPolicy(holidays: ["christmas"]).problem)
    }

    func testReleaseExpiryIsTheLaterDay() {
        XCTAssertEqual(policy.expiryAfterRelease(originalExpiry: day("2027-02-26"), releaseDay: day("2027-03-05")), day("2027-03-05"))
        XCTAssertEqual(policy.expiryAfterRelease(originalExpiry: day("2027-02-26"), releaseDay: day("2027-01-05")), day("2027-02-26"))
    }
}

final class KeyHierarchyTests: XCTestCase {
    func header(user: String = "u1", bundle: UInt8 = 1, expiry: String = "2027-02-26") -> BundleHeader {
        BundleHeader(vaultId: Array(repeating: 7, count: 16), bundleId: Array(repeating: bundle, count: 16), createdAt: 0,
                     expiryDay: CivilDay(iso: expiry)!, userKeyId: Array(repeating: 9, count: 16), dayKeyId: BundleHeader.zeroId,
                     userId: UserID(user)!)
    }

    func testSealedDEKOpensOnlyWithBothKeysAndItsOwnBinding() throws {
        let userKey = try P256PrivateKey.generate(), dayKey = try P256PrivateKey.generate(), holdKey = try P256PrivateKey.generate()
        let dek = try SecretBytes.random(count: 32)
        let binding = KeyHierarchy.Binding(header: header())
        let sealed = try KeyHierarchy.sealDataKey(dek, binding: binding, userKey: userKey.publicKey, outerRole: .day, outerKey: dayKey.publicKey)
        XCTAssertEqual(sealed.count, 194)
        XCTAssertEqual(try KeyHierarchy.openDataKey(sealed, binding: binding, outerRole: .day, outerKey: dayKey, userKey: userKey), dek)
        // Moved to another bundle, user or day: refused.
        for other in [header(bundle: 2), header(user: "u2"), header(expiry: "2027-02-27")] {
            XCTAssertThrowsError(try KeyHierarchy.openDataKey(sealed, binding: .init(header: other), outerRole: .day, outerKey: dayKey, userKey: userKey))
        }
        // Either key missing (a different key in its place): refused.
        XCTAssertThrowsError(try KeyHierarchy.openDataKey(sealed, binding: binding, outerRole: .day, outerKey: try .generate(), userKey: userKey))
        XCTAssertThrowsError(try KeyHierarchy.openDataKey(sealed, binding: binding, outerRole: .day, outerKey: dayKey, userKey: try .generate()))
        // Resealing to a hold key changes the outer layer only.
        let held = try KeyHierarchy.resealOuter(sealed, binding: binding, from: (.day, dayKey), to: (.hold, holdKey.publicKey))
        XCTAssertEqual(try KeyHierarchy.openDataKey(held, binding: binding, outerRole: .hold, outerKey: holdKey, userKey: userKey), dek)
        XCTAssertThrowsError(try KeyHierarchy.openDataKey(held, binding: binding, outerRole: .day, outerKey: holdKey, userKey: userKey), "role is bound")
    }

    func testSealedPrivateKeyIsBoundToRoleSubjectAndVault() throws {
        let master = try P256PrivateKey.generate(), key = try P256PrivateKey.generate()
        let id = try KeyHierarchy.keyId(key.publicKey)
        let vault = Array(repeating: UInt8(3), count: 16)
        let sealed = try KeyHierarchy.sealPrivateKey(key, master: master.publicKey, vaultId: vault, role: .day, subject: "2027-02-26", keyId: id)
        let opened = try KeyHierarchy.openPrivateKey(sealed, restoreKey: master, vaultId: vault, role: .day, subject: "2027-02-26", keyId: id)
        XCTAssertEqual(opened.publicKey, key.publicKey)
        XCTAssertThrowsError(try KeyHierarchy.openPrivateKey(sealed, restoreKey: master, vaultId: vault, role: .day, subject: "2027-02-27", keyId: id))
        XCTAssertThrowsError(try KeyHierarchy.openPrivateKey(sealed, restoreKey: master, vaultId: vault, role: .user, subject: "2027-02-26", keyId: id))
        XCTAssertThrowsError(try KeyHierarchy.openPrivateKey(sealed, restoreKey: master, vaultId: BundleHeader.zeroId, role: .day, subject: "2027-02-26", keyId: id))
        XCTAssertThrowsError(try KeyHierarchy.openPrivateKey(sealed, restoreKey: try .generate(), vaultId: vault, role: .day, subject: "2027-02-26", keyId: id))
    }

    func testAccountsCSVIsStrict() throws {
        let ok = try AccountsCSV.parse("user_id,email,last_active\nu1,\"a,b@x\",2025-01-01\r\nu2,,2025-02-01\n", path: "a.csv")
        XCTAssertEqual(ok.map(\.userId.rawValue), ["u1", "u2"])
        for (bad, fragment) in [("", "empty"), ("user,last_active\nu1,2025-01-01\n", "header"), ("user_id,last_active\nu1,2025-13-01\n", "line 2"),
                                ("user_id,last_active\n../x,2025-01-01\n", "user_id"), ("user_id,last_active\nu1,2025-01-01\nu1,2025-01-02\n", "twice"),
                                ("user_id,last_active\nu1,2025-01-01,extra\n", "fields"), ("user_id,last_active\n\"u1,2025-01-01\n", "unterminated")] {
            XCTAssertThrowsError(try AccountsCSV.parse(bad, path: "a.csv"), bad) { XCTAssertTrue("\($0)".contains(fragment), "\($0) lacks \(fragment)") }
        }
    }
}
