/// A calendar day in UTC (proleptic Gregorian), stored as days since 1970-01-01.
/// Bundles expire by day (vault-format.md §2.1, field `expiryDay`).
public struct CivilDay: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Days since 1970-01-01 (day 0).
    public let daysSinceEpoch: Int64

    public init(daysSinceEpoch: Int64) { self.daysSinceEpoch = daysSinceEpoch }

    /// 1970-01-01, the first day a vault can hold.
    public static let first = CivilDay(daysSinceEpoch: 0)
    /// 9999-12-31, the last day a vault can hold: key subjects, bundle paths and reports spell a day with a four-digit
    /// year (vault-format.md §1), so a job whose clock or expiry day would pass it is refused, never wrapped around.
    public static let last = CivilDay(daysSinceEpoch: CivilDay.days(year: 9999, month: 12, day: 31))

    /// Whether the day lies in `first...last`, the range `iso` spells and `init(iso:)` reads back.
    public var isRepresentable: Bool { self >= Self.first && self <= Self.last }

    /// Parses exactly `YYYY-MM-DD` (years 1970...9999); nil for anything else, including invalid dates like 2026-02-30.
    public init?(iso text: String) {
        let u = Array(text.utf8)
        guard u.count == 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-") else { return nil }
        func number(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard u[i] >= UInt8(ascii: "0"), u[i] <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int(u[i] - UInt8(ascii: "0"))
            }
            return v
        }
        guard let y = number(0..<4), let m = number(5..<7), let d = number(8..<10),
              y >= 1970, (1...12).contains(m), d >= 1, d <= CivilDay.daysInMonth(year: y, month: m)
        else { return nil }
        self.daysSinceEpoch = CivilDay.days(year: y, month: m, day: d)
    }

    /// The UTC day containing the given Unix time (floor division; defined for every Int64, which matters for times
    /// read from files: a bundle header's created-at or a snapshot's taken-at).
    public init(unixSeconds: Int64) {
        self.daysSinceEpoch = unixSeconds >= 0 ? unixSeconds / 86_400 : (unixSeconds + 1) / 86_400 - 1
    }

    /// Unix time of 00:00:00 UTC on this day.
    public var startUnixSeconds: Int64 { daysSinceEpoch * 86_400 }

    public func adding(days: Int64) -> CivilDay { CivilDay(daysSinceEpoch: daysSinceEpoch + days) }

    /// 0 = Monday ... 6 = Sunday (1970-01-01 was a Thursday).
    public var weekdayIndex: Int { Int(((daysSinceEpoch % 7) + 7 + 3) % 7) }

    public var components: (year: Int, month: Int, day: Int) {
        // Inverse of `days(year:month:day:)`: era-based civil-from-days conversion.
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (Int(y), Int(m), Int(d))
    }

    /// `YYYY-MM-DD`.
    public var iso: String {
        let c = components
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))"
    }

    public var description: String { iso }

    public static func < (a: CivilDay, b: CivilDay) -> Bool { a.daysSinceEpoch < b.daysSinceEpoch }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
