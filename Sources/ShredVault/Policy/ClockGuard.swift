/// The clock guard of a production vault (vault-format.md §6.4) as a pure decision: is a job's clock plausible next to
/// the latest time a job of the vault ran? Every destruction is scheduled by the clock, so a clock that went back
/// (users archived "on day 5" after a sweep on day 100 get an already-destroyed expiry day) or leapt ahead (a sweep
/// "in 2030" destroys every day key at once) must stop the job until somebody looks.
public struct ClockGuard: Sendable, Equatable {
    /// How far a job's clock may be behind the latest time a job ran: clock steps of NTP and the skew between the
    /// hosts that run jobs on one vault, nothing a day-granular schedule can notice.
    public static let backwardToleranceSeconds: Int64 = 5 * 60

    /// How far ahead of the latest job time the clock may be (`RetentionPolicy.maxClockJumpDays`).
    public var maxJumpSeconds: Int64

    public init(maxJumpDays: Int) { maxJumpSeconds = Int64(maxJumpDays) * 86_400 }

    public enum Verdict: Sendable, Equatable {
        /// Nothing remembered yet (a new vault, or one made before the guard).
        case first
        /// Plausible: at most the tolerance behind, at most the bound ahead.
        case plausible
        /// The clock is behind the latest job time by more than the tolerance.
        case behind(seconds: Int64)
        /// The clock is ahead of the latest job time by more than the bound.
        case jumped(seconds: Int64)

        public var isPlausible: Bool { self == .first || self == .plausible }
    }

    /// Judges a job's clock `now` against `latest`, the latest time a job of the vault ran (or an operator accepted).
    public func judge(now: Int64, latest: Int64?) -> Verdict {
        guard let latest else { return .first }
        let behind = latest.subtractingReportingOverflow(now)
        if !behind.overflow, behind.partialValue > Self.backwardToleranceSeconds { return .behind(seconds: behind.partialValue) }
        let ahead = now.subtractingReportingOverflow(latest)
        if ahead.overflow || ahead.partialValue > maxJumpSeconds { return .jumped(seconds: ahead.overflow ? .max : ahead.partialValue) }
        return .plausible
    }

    /// "3 days 4 hours", "12 minutes": a duration for messages.
    public static func describe(seconds: Int64) -> String {
        let s = max(0, seconds)
        func unit(_ n: Int64, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        if s >= 86_400 {
            let days = s / 86_400, hours = s % 86_400 / 3600
            return unit(days, "day") + (hours > 0 && days < 10 ? " " + unit(hours, "hour") : "")
        }
        if s >= 3600 { return unit(s / 3600, "hour") + (s % 3600 >= 60 ? " " + unit(s % 3600 / 60, "minute") : "") }
        if s >= 60 { return unit(s / 60, "minute") }
        return unit(s, "second")
    }
}
