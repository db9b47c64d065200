import ArgumentParser

@main
struct ShredVaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shredvault",
        abstract: "Encrypted archive vault for inactive users' data, with crypto-shredding.",
        discussion: """
            Each inactive user is archived as one bundle: a pax tar, compressed with zstd and encrypted with \
            AES-256-GCM (Cobblestone-256) under a fresh data key, sealed to a day key and a user key. Destroying \
            the day key when the bundle's expiry day ends, or the user key on a deletion request, makes every \
            copy of the data unreadable. vault-format.md specifies the format and the guarantees.

            THREE USERS, THREE POWERS
              the nightly archive job  archive        no restore key: the vault's public
                                                      key (master.pub) seals new bundles
              deletion and expiry      delete, sweep  no key at all: they destroy keys
              legal holds, restores    hold place,    the restore key (--master-key-file),
                                       hold release,  kept outside the vault
                                       restore,
                                       check --read-data
              status, list, hold list, check, audit verify, policy show and receipt
              show|export|list need no key; receipt verify needs neither key nor vault: a user checks a
              deletion receipt with a copy of the vault's trust record.

            ENVIRONMENT (each replaces the option of the same name)
              SHREDVAULT_VAULT            --vault DIR
              SHREDVAULT_MASTER_KEY_FILE  --master-key-file FILE (restore key, mode 0600)
              SHREDVAULT_NOW              --now TIME (simulated clock, ISO-8601; a production
                                          vault takes it only for commands that change
                                          nothing; a drill vault for every command)
              SHREDVAULT_METRICS_FILE     --metrics-file FILE (Prometheus text file)
              SHREDVAULT_LOG_FORMAT       --log-format text|json

            MONITORING
              -v logs one line when a job starts and one when it ends (duration,
              counts) on stderr; off a terminal each line starts with a journald
              priority (<6> info). archive, sweep, delete, backup, check and status
              write --metrics-file for node_exporter's textfile collector; status
              --health exits 20 when the vault needs attention (see status --help).

            CLOCK AND DRILLS
              A production vault remembers the latest time a job that changed it ran.
              Such a job stops (exit 12) when the real clock is more than 5 minutes
              behind it or more than max-clock-jump-days (default 35) ahead, until an
              operator confirms with --accept-clock (audited). Drill vaults (init
              --drill, `shredvault drill`, recover --drill) take --now everywhere.

            EXAMPLE
              export SHREDVAULT_VAULT=/srv/shredvault
              shredvault init --master-key-file /root/shredvault-restore.key
              shredvault archive --source /srv/export --lock-wait 600  # 00:15 UTC
              shredvault status

            The `bundle` commands are the low-level forensic and interoperability layer: they seal and \
            open single bundles with a bare 32-byte data key.

            EXIT CODES
              0   success
              1   unexpected internal error
              2   check or audit verify found violations
              10  blocked by a legal hold (delete), or needs an active hold case
                  (restore, hold release)
              11  unrecoverable: the user's keys were destroyed (expired or deleted)
              12  clock refused: --now on a production vault, or the clock is behind
                  the vault's latest job or jumped too far ahead (--accept-clock)
              13  keyring refused: empty, foreign, replaced, a drill's, or this
                  directory is a copy of the vault that owns it (shredvault drill)
              14  bundle store (S3): unreachable, credentials refused, bucket missing,
                  a request failed after its retries, or a read-back differed from
                  what was written; nothing half-done stays: rerun once the store
                  answers
              20  status --health: the vault is unhealthy (one line per reason)
              64  usage error (bad option or value, no --vault)
              65  bad data: malformed accounts.csv, corrupt, truncated or tampered
                  bundle; archive: some users failed (the others were archived);
                  receipt: a receipt or trust record that does not verify
              66  not found: vault, user, file, bundle, directory or keyring
              69  newer format version or unknown algorithm: upgrade shredvault
              73  the output, target, vault or key file already exists
              74  I/O or database error (disk full, permission denied)
              75  another job holds the vault lock (retry, or pass --lock-wait)
              77  key problem: restore key missing, wrong, malformed, or
                  readable by group or others
            """,
        version: Version.description,
        subcommands: [
            InitCommand.self, ArchiveCommand.self, SweepCommand.self, DeleteCommand.self, HoldCommand.self,
            RestoreCommand.self, ListCommand.self, StatusCommand.self, ReportCommand.self, CheckCommand.self, AuditCommand.self,
            BackupCommand.self, RecoverCommand.self, KeystoreCommand.self, KeyringCommand.self, TrustCommand.self, ReceiptCommand.self,
            ReindexCommand.self, DrillCommand.self, BundleCommand.self, PolicyCommand.self,
        ]
    )
}
