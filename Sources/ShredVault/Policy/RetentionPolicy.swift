/// The retention policy as pure values (no I/O), from the privacy policy clauses 4–6 (DESIGN-BRIEF §1).
public struct RetentionPolicy: Codable, Sendable, Equatable {
    /// Days a bundle may live, counting the archive day (clause 5: at most 90). Expiry day = archive day + archiveDays − 1.
    public var archiveDays: Int
    /// Days of inactivity after which a user is archived (clause 4: 365).
    public var inactiveDays: Int
    /// Business days allowed for a deletion request (clause 6: 5–7; the vault uses the strict 5).
    public var deletionBusinessDays: Int
    /// Days a keystore backup stays readable (clause 6 residual data: at most 30).
    public var backupDays: Int
    /// Non-working days (YYYY-MM-DD) skipped when counting business days.
    public var holidays: [String] { didSet { holidayDays = Self.days(holidays) } }
    /// `holidays` as days since 1970-01-01, so a business-day test is one lookup however many holidays there are.
    private var holidayDays: Set<Int64>
    /// Length of a backup epoch in days: keystore backups taken in one epoch share one epoch key (G3).
    public var backupEpochDays: Int
    /// How far ahead of the latest time a job ran the clock of a job that changes a production vault may be, in days,
    /// before the job refuses to run until an operator confirms the clock (`--accept-clock`; `ClockGuard`).
    public var maxClockJumpDays: Int

    public static let maxArchiveDays = 90
    public static let maxBackupDays = 30
    /// A century: a larger inactivity threshold is a typo, not a policy.
    public static let maxInactiveDays = 36_500
    /// Default `maxClockJumpDays`: a nightly job that stood still for a holiday month still runs (35 days), while a
    /// clock that jumps further — a mistyped year, an NTP server serving the wrong decade — is stopped long before
    /// it could expire a whole archive window (90 days) at once.
    public static let defaultMaxClockJumpDays = 35
    /// Upper bound of `maxClockJumpDays`: a larger jump expires every bundle at once, so it always needs an operator.
    public static let maxMaxClockJumpDays = 90

    public init(archiveDays: Int = 90, inactiveDays: Int = 365, deletionBusinessDays: Int = 5, backupDays: Int = 30,
                holidays: [String] = [], backupEpochDays: Int = 1, maxClockJumpDays: Int = RetentionPolicy.defaultMaxClockJumpDays) {
        self.archiveDays = archiveDays
        self.inactiveDays = inactiveDays
        self.deletionBusinessDays = deletionBusinessDays
        self.backupDays = backupDays
        self.holidays = holidays
        self.holidayDays = Self.days(holidays)
        self.backupEpochDays = backupEpochDays
        self.maxClockJumpDays = maxClockJumpDays
    }

    private static func days(_ holidays: [String]) -> Set<Int64> {
        Set(holidays.compactMap { CivilDay(iso: $0)?.daysSinceEpoch })
    }

    enum CodingKeys: String, CodingKey {
        case archiveDays, inactiveDays, deletionBusinessDays, backupDays, holidays, backupEpochDays, maxClockJumpDays
    }

    /// Fields added after the first config version take their defaults when absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RetentionPolicy()
        archiveDays = try c.decodeIfPresent(Int.self, forKey: .archiveDays) ?? d.archiveDays
        inactiveDays = try c.decodeIfPresent(Int.self, forKey: .inactiveDays) ?? d.inactiveDays
        deletionBusinessDays = try c.decodeIfPresent(Int.self, forKey: .deletionBusinessDays) ?? d.deletionBusinessDays
        backupDays = try c.decodeIfPresent(Int.self, forKey: .backupDays) ?? d.backupDays
        holidays = try c.decodeIfPresent([String].self, forKey: .holidays) ?? d.holidays
        holidayDays = Self.days(holidays)
        backupEpochDays = try c.decodeIfPresent(Int.self, forKey: .backupEpochDays) ?? d.backupEpochDays
        maxClockJumpDays = try c.decodeIfPresent(Int.self, forKey: .maxClockJumpDays) ?? d.maxClockJumpDays
    }

    /// nil when valid, else what is wrong.
    public var problem: String? { invalidField?.reason }

    /// The first invalid field, named as in the config's `policy` object (`holidays[3]`), and what is wrong with it;
    /// nil when every field is valid.
    public var invalidField: (field: String, reason: String)? {
        if !(1...Self.maxArchiveDays).contains(archiveDays) {
            return ("archiveDays", "archive-days must be between 1 and \(Self.maxArchiveDays) (privacy policy clause 5)")
        }
        if !(1...Self.maxInactiveDays).contains(inactiveDays) { return ("inactiveDays", "inactive-days must be between 1 and \(Self.maxInactiveDays)") }
        if !(1...7).contains(deletionBusinessDays) {
            return ("deletionBusinessDays", "deletion business days must be between 1 and 7 (clause 6)")
        }
        if !(1...Self.maxBackupDays).contains(backupDays) { return ("backupDays", "backup-days must be between 1 and \(Self.maxBackupDays) (clause 6)") }
        if let i = holidays.firstIndex(where: { CivilDay(iso: $0) == nil }) {
            return ("holidays[\(i)]", "holiday \(String(holidays[i].prefix(64)).debugDescription) is not a YYYY-MM-DD date")
        }
        if !(1...backupDays).contains(backupEpochDays) {
            return ("backupEpochDays", "backup-epoch-days must be between 1 and backup-days (\(backupDays))")
        }
        if !(1...Self.maxMaxClockJumpDays).contains(maxClockJumpDays) {
            return ("maxClockJumpDays", "max-clock-jump-days must be between 1 and \(Self.maxMaxClockJumpDays)")
        }
        return nil
    }

    /// The last day a bundle archived on `day` may be decrypted without a hold.
    public func expiryDay(archivedOn day: CivilDay) -> CivilDay { day.adding(days: Int64(archiveDays - 1)) }

    /// A user whose last activity was on `lastActive` has reached the inactivity threshold on `today`.
    public func isInactive(lastActive: CivilDay, today: CivilDay) -> Bool {
        today.daysSinceEpoch - lastActive.daysSinceEpoch >= Int64(inactiveDays)
    }

    public func isBusinessDay(_ day: CivilDay) -> Bool {
        day.weekdayIndex < 5 && !holidayDays.contains(day.daysSinceEpoch)
    }

    /// Deadline of a deletion request received on `received`: the N-th business day after it. Each day costs one set
    /// lookup, so the loop is linear in the days it passes (at most the holidays in a row plus a few weeks).
    public func deletionDeadline(received: CivilDay) -> CivilDay {
        var day = received
        var remaining = deletionBusinessDays
        while remaining > 0 {
            day = day.adding(days: 1)
            if isBusinessDay(day) { remaining -= 1 }
        }
        return day
    }

    /// Day keys of days before `today` have ended (G1): they are destroyed by the sweep.
    public func dayHasEnded(_ day: CivilDay, today: CivilDay) -> Bool { day < today }

    /// First day of the backup epoch containing `day` (epochs are counted from 1970-01-01).
    public func epochStart(_ day: CivilDay) -> CivilDay {
        let n = Int64(backupEpochDays)
        let d = day.daysSinceEpoch
        return CivilDay(daysSinceEpoch: (d >= 0 ? d / n : (d - n + 1) / n) * n)
    }

    /// G3: the epoch key of the epoch starting on `start` is destroyed at 00:00 UTC of `start + backupDays`, so a
    /// keystore backup taken at any time T in that epoch (T ≥ start) is unreadable by T + backupDays.
    public func epochKeyDestructionDay(epochStart start: CivilDay) -> CivilDay { start.adding(days: Int64(backupDays)) }

    /// After the last hold is released on `releaseDay`, a bundle expires on max(original expiry, release day) (G5).
    public func expiryAfterRelease(originalExpiry: CivilDay, releaseDay: CivilDay) -> CivilDay {
        max(originalExpiry, releaseDay)
    }
}
