import XCTest
@testable import ShredVault

/// `PolicyChange` as a pure value: what may change after init (a vault may forget sooner, never later).
final class PolicyChangeTests: XCTestCase {
    private let base = RetentionPolicy(archiveDays: 60, inactiveDays: 365, deletionBusinessDays: 5, backupDays: 20,
                                       holidays: ["2026-12-25"], backupEpochDays: 7)

    private func refused(_ change: PolicyChange, _ needle: String, line: UInt = #line) {
        XCTAssertThrowsError(try change.applied(to: base), line: line) { error in
            XCTAssertTrue("\(error)".contains(needle), "\(error)", line: line)
        }
    }

    func testLimitsOnlyShorten() throws {
        let (p, changes) = try PolicyChange(archiveDays: 30, inactiveDays: 200, deletionBusinessDays: 3, backupDays: 10).applied(to: base)
        XCTAssertEqual([p.archiveDays, p.inactiveDays, p.deletionBusinessDays, p.backupDays], [30, 200, 3, 10])
        XCTAssertEqual(changes.map(\.field), ["archiveDays", "inactiveDays", "deletionBusinessDays", "backupDays"])
        XCTAssertEqual(changes.first, PolicyChange.Field(field: "archiveDays", old: "60", new: "30"))
        refused(PolicyChange(archiveDays: 61), "only be shortened")
        refused(PolicyChange(archiveDays: 91), "between 1 and 90")
        refused(PolicyChange(inactiveDays: 366), "only be shortened")
        refused(PolicyChange(deletionBusinessDays: 6), "only be shortened")
        refused(PolicyChange(backupDays: 21), "only be shortened")
        refused(PolicyChange(backupDays: 6), "shorter than the backup epoch")
    }

    func testClockBoundGoesEitherWayWithinItsRange() throws {
        XCTAssertEqual(try PolicyChange(maxClockJumpDays: 90).applied(to: base).policy.maxClockJumpDays, 90)
        XCTAssertEqual(try PolicyChange(maxClockJumpDays: 1).applied(to: base).policy.maxClockJumpDays, 1)
        refused(PolicyChange(maxClockJumpDays: 0), "between 1 and 90")
    }

    func testHolidays() throws {
        let (p, changes) = try PolicyChange(addHolidays: ["2027-01-01", "2026-12-24"], removeHolidays: ["2026-12-25"]).applied(to: base)
        XCTAssertEqual(p.holidays, ["2026-12-24", "2027-01-01"])
        XCTAssertEqual(changes, [PolicyChange.Field(field: "holidays", old: "2026-12-25", new: "2026-12-24,2027-01-01")])
        XCTAssertFalse(p.isBusinessDay(CivilDay(iso: "2027-01-01")!), "an added holiday counts at once")
        XCTAssertTrue(p.isBusinessDay(CivilDay(iso: "2026-12-25")!), "a removed one is a business day again (a Friday)")
        XCTAssertEqual(try PolicyChange(addHolidays: ["2026-12-25"]).applied(to: base).changes, [], "already there: no change")
        refused(PolicyChange(removeHolidays: ["2026-12-26"]), "not in the policy")
        refused(PolicyChange(addHolidays: ["2026-13-01"]), "YYYY-MM-DD")
        refused(PolicyChange(addHolidays: ["2027-01-01"], removeHolidays: ["2027-01-01"]), "both added and removed")
    }
}
