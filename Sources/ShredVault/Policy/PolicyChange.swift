/// A change of a vault's retention policy after `init` (`shredvault policy set`), as a pure value: which fields change
/// and whether the change may be made. No I/O; `Vault.setPolicy` applies an accepted change.
///
/// The rule: a change may make the vault forget sooner, never later. Every limit that bounds how long data or a key
/// lives — `archiveDays` (clause 5), `inactiveDays` (clause 4), `backupDays` (G3) and `deletionBusinessDays`
/// (clause 6) — can only be lowered: a bundle, a keystore snapshot or a deletion request made under the old value was
/// promised at most that long, and a job under a larger value would keep it longer (a longer `backupDays` keeps
/// alive the epoch key of a snapshot taken yesterday). Holidays may be added and removed: a deletion request's deadline
/// is fixed when it is recorded, so they only move the deadlines of later requests. `maxClockJumpDays` (the clock
/// guard's bound, 1–90) may go either way. `backupEpochDays` is not changeable: it decides which epoch key seals a
/// snapshot.
public struct PolicyChange: Sendable, Equatable {
    public var archiveDays: Int?
    public var inactiveDays: Int?
    public var deletionBusinessDays: Int?
    public var backupDays: Int?
    public var maxClockJumpDays: Int?
    public var addHolidays: [String] = []
    public var removeHolidays: [String] = []

    public init(archiveDays: Int? = nil, inactiveDays: Int? = nil, deletionBusinessDays: Int? = nil, backupDays: Int? = nil,
                maxClockJumpDays: Int? = nil, addHolidays: [String] = [], removeHolidays: [String] = []) {
        self.archiveDays = archiveDays
        self.inactiveDays = inactiveDays
        self.deletionBusinessDays = deletionBusinessDays
        self.backupDays = backupDays
        self.maxClockJumpDays = maxClockJumpDays
        self.addHolidays = addHolidays
        self.removeHolidays = removeHolidays
    }

    /// Nothing was asked for.
    public var isEmpty: Bool {
        archiveDays == nil && inactiveDays == nil && deletionBusinessDays == nil && backupDays == nil && maxClockJumpDays == nil
            && addHolidays.isEmpty && removeHolidays.isEmpty
    }

    /// One field that changed, with its old and new value as text (as the audit record's detail holds them).
    public struct Field: Sendable, Equatable, Codable {
        public var field: String
        public var old: String
        public var new: String
    }

    /// The policy after the change and the fields that changed (empty when every value is already in place), or a
    /// thrown `VaultError.invalidArgument` that names the option and why; nothing is applied then.
    public func applied(to policy: RetentionPolicy) throws -> (policy: RetentionPolicy, changes: [Field]) {
        var next = policy
        var changes: [Field] = []
        func shortenOnly(_ option: String, _ current: Int, _ requested: Int?, range: ClosedRange<Int>, why: String) throws -> Int {
            guard let requested else { return current }
            guard range.contains(requested) else {
                throw VaultError.invalidArgument("--\(option) must be between \(range.lowerBound) and \(range.upperBound), not \(requested); nothing was changed")
            }
            guard requested <= current else {
                throw VaultError.invalidArgument("--\(option) \(requested) would lengthen the policy's \(current) days; it can only be shortened (\(why)); nothing was changed")
            }
            return requested
        }
        next.archiveDays = try shortenOnly("archive-days", policy.archiveDays, archiveDays, range: 1...RetentionPolicy.maxArchiveDays,
                                           why: "bundles archived under it were promised at most \(policy.archiveDays) days, clause 5")
        next.inactiveDays = try shortenOnly("inactive-days", policy.inactiveDays, inactiveDays, range: 1...RetentionPolicy.maxInactiveDays,
                                            why: "a longer threshold keeps inactive users' data longer, clause 4")
        next.deletionBusinessDays = try shortenOnly("deletion-business-days", policy.deletionBusinessDays, deletionBusinessDays, range: 1...7,
                                                    why: "a deletion request may not wait longer than the vault promised, clause 6")
        next.backupDays = try shortenOnly("backup-days", policy.backupDays, backupDays, range: 1...RetentionPolicy.maxBackupDays,
                                          why: "snapshots taken under it were promised unreadable after \(policy.backupDays) days, G3")
        if next.backupDays < policy.backupEpochDays {
            throw VaultError.invalidArgument("--backup-days \(next.backupDays) is shorter than the backup epoch (\(policy.backupEpochDays) days), which cannot change; nothing was changed")
        }
        if let jump = maxClockJumpDays {
            guard (1...RetentionPolicy.maxMaxClockJumpDays).contains(jump) else {
                throw VaultError.invalidArgument("--max-clock-jump-days must be between 1 and \(RetentionPolicy.maxMaxClockJumpDays), not \(jump); nothing was changed")
            }
            next.maxClockJumpDays = jump
        }
        for (option, current, new) in [("archiveDays", policy.archiveDays, next.archiveDays), ("inactiveDays", policy.inactiveDays, next.inactiveDays),
                                       ("deletionBusinessDays", policy.deletionBusinessDays, next.deletionBusinessDays),
                                       ("backupDays", policy.backupDays, next.backupDays),
                                       ("maxClockJumpDays", policy.maxClockJumpDays, next.maxClockJumpDays)] where current != new {
            changes.append(Field(field: option, old: String(current), new: String(new)))
        }

        // Holidays: each date checked, the list kept sorted and without duplicates.
        for day in addHolidays + removeHolidays where CivilDay(iso: day) == nil {
            throw VaultError.invalidArgument("holiday \(String(day.prefix(64)).debugDescription) is not a YYYY-MM-DD date; nothing was changed")
        }
        let both = Set(addHolidays).intersection(removeHolidays)
        if let day = both.sorted().first {
            throw VaultError.invalidArgument("holiday \(day) is both added and removed; nothing was changed")
        }
        var holidays = Set(policy.holidays)
        for day in removeHolidays where !holidays.contains(day) {
            throw VaultError.invalidArgument("holiday \(day) is not in the policy, so it cannot be removed (`shredvault policy show` lists them); nothing was changed")
        }
        holidays.subtract(removeHolidays)
        holidays.formUnion(addHolidays)
        let sorted = holidays.sorted()
        if holidays != Set(policy.holidays) {
            next.holidays = sorted
            changes.append(Field(field: "holidays", old: policy.holidays.joined(separator: ","), new: sorted.joined(separator: ",")))
        }
        if let problem = next.problem { throw VaultError.invalidArgument(problem + "; nothing was changed") }
        return (next, changes)
    }
}
