import ArgumentParser
import ShredVault

struct PolicyShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the vault's retention policy (needs no key; changes nothing).")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            let p = vault.policy
            if global.json { return try Output.json(p) }
            print("archive-days:           \(p.archiveDays) (a bundle lives this many days, counting its archive day; only shortens, at most \(RetentionPolicy.maxArchiveDays))")
            print("inactive-days:          \(p.inactiveDays) (users inactive this long are archived; only shortens)")
            print("deletion-business-days: \(p.deletionBusinessDays) (deadline of a deletion request; only shortens)")
            print("backup-days:            \(p.backupDays) (a keystore snapshot is unreadable after this many days; only shortens, at most \(RetentionPolicy.maxBackupDays))")
            print("backup-epoch-days:      \(p.backupEpochDays) (fixed at init)")
            print("max-clock-jump-days:    \(p.maxClockJumpDays) (clock guard of a production vault, 1-\(RetentionPolicy.maxMaxClockJumpDays))")
            print("holidays:               \(p.holidays.isEmpty ? "none" : p.holidays.sorted().joined(separator: ", "))")
        }
    }
}
