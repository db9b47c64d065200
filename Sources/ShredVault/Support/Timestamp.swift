#if canImport(Glibc)
import Glibc
#endif

/// Unix-seconds timestamps in UTC, parsed from and printed as ISO-8601.
public enum Timestamp {
    /// The real clock. Jobs take `--now` instead where a simulated clock is wanted.
    public static var now: Int64 { Int64(time(nil)) }

    /// The last second of 9999-12-31 (`CivilDay.last`): no job's clock may pass it.
    public static let latestRepresentable: Int64 = CivilDay.last.startUnixSeconds + 86_399

    /// Whether a job may run at `seconds`: between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the days a vault
    /// can spell (a zone offset can move a parsed time outside them: `9999-12-31T23:00:00-05:00`).
    public static func isRepresentable(_ seconds: Int64) -> Bool { (0...latestRepresentable).contains(seconds) }

    /// Parses `YYYY-MM-DD` (00:00 UTC), `YYYY-MM-DDTHH:MM[:SS[.fff]]` followed by `Z` or `±HH:MM`
    /// (a missing zone means UTC). nil for anything else.
    public static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        guard u.count >= 10, let day = CivilDay(iso: String(decoding: u[0..<10], as: UTF8.self)) else { return nil }
        var seconds = day.startUnixSeconds
        if u.count == 10 { return seconds }
        guard u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: " ") else { return nil }
        var i = 11
        func two() -> Int? {
            guard i + 2 <= u.count, let a = digit(u[i]), let b = digit(u[i + 1]) else { return nil }
            i += 2
            return a * 10 + b
        }
        guard let hh = two(), hh < 24, i < u.count, u[i] == UInt8(ascii: ":") else { return nil }
        i += 1
        guard let mm = two(), mm < 60 else { return nil }
        var ss = 0
        if i < u.count, u[i] == UInt8(ascii: ":") {
            i += 1
            guard let s = two(), s < 60 else { return nil }
            ss = s
            if i < u.count, u[i] == UInt8(ascii: ".") {
                i += 1
                let start = i
                while i < u.count, digit(u[i]) != nil { i += 1 }
                guard i > start else { return nil }
            }
        }
        seconds += Int64(hh * 3600 + mm * 60 + ss)
        if i == u.count { return seconds }
        if u[i] == UInt8(ascii: "Z"), i + 1 == u.count { return seconds }
        guard u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") else { return nil }
        let sign: Int64 = u[i] == UInt8(ascii: "+") ? 1 : -1
        i += 1
        guard let oh = two(), oh < 24, i < u.count, u[i] == UInt8(ascii: ":") else { return nil }
        i += 1
        guard let om = two(), om < 60, i == u.count else { return nil }
        return seconds - sign * Int64(oh * 3600 + om * 60)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`.
    public static func format(_ seconds: Int64) -> String {
        let day = CivilDay(unixSeconds: seconds)
        let r = seconds % 86_400  // not seconds - day.startUnixSeconds, which overflows near Int64.min
        let rem = r < 0 ? r + 86_400 : r
        func pad(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(day.iso)T\(pad(rem / 3600)):\(pad(rem % 3600 / 60)):\(pad(rem % 60))Z"
    }

    private static func digit(_ c: UInt8) -> Int? {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? Int(c - UInt8(ascii: "0")) : nil
    }
}
