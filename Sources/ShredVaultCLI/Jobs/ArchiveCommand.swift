import ArgumentParser
import Foundation
import ShredVault

struct ArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "The nightly job: archive inactive users into encrypted bundles, then remove their source data.",
        discussion: """
            Reads DIR/accounts.csv (header row; columns user_id and last_active as YYYY-MM-DD, others ignored) \
            and archives every user inactive for the policy's inactive-days who has no live bundle: DIR/users/<id> \
            is sealed into one bundle with a fresh data key; a second thread decrypts, decompresses and untars \
            the bytes as they are written, comparing every file's SHA-256, and the file is re-read and its SHA-256 \
            compared with the bytes produced; after the fsync the key is committed to the catalog \
            and DIR/users/<id> removed (unless --keep-source). The bundle lives archive-days days, counting the \
            archive day. --jobs worker threads seal and verify; one more thread fsyncs and commits what they \
            finished in groups, so the workers never wait on the disk.

            Needs no restore key: the job holds only the vault's public key and cannot decrypt older bundles. \
            It first finishes what an interrupted run left and runs the overdue sweep. A deleted user \
            (tombstone) is never archived again; if their data reappears in the source it is reported as a \
            warning. A malformed accounts.csv stops the job before anything changes (exit 65). A user that \
            cannot be archived (an unreadable or vanished file, a link, a bundle that does not read back as \
            written) is named on stderr with the file concerned and keeps its source, and the job goes on; so \
            does a committed user whose source cannot be removed (reported by every run and by `status` until \
            it is gone). Either makes the job exit 3 at the end.

            --source s3://BUCKET[/PREFIX] reads PREFIX/accounts.csv and the objects PREFIX/users/<id>/... of an \
            S3 bucket instead (endpoint, region and credentials from AWS_ENDPOINT_URL, AWS_REGION, \
            AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN). Each user's objects are downloaded into \
            a private copy under VAULT/staging/source/ (files 0600 with the object's Last-Modified as mtime), \
            archived and verified exactly like a directory, and the objects are deleted only after the commit \
            (unless --keep-source); a run interrupted after the commit deletes them the next time. An object key \
            that is not a safe relative path (.., empty segments, control characters) or an object that changes \
            while it is read fails that user only (exit 3). A store that cannot be reached, refuses the \
            credentials or lacks the bucket ends the job before anything changes (exit 14).

            Example:
              shredvault archive --vault /srv/shredvault --source /srv/export --dry-run
            Nightly, from cron at 00:15 UTC (SHREDVAULT_VAULT set in the crontab):
              15 0 * * * shredvault archive --source /srv/export --lock-wait 600
            From a bucket:
              shredvault archive --vault /srv/shredvault --source s3://callgenie-export/nightly

            Compression adapts to each file unless --level fixes it (see --level); the summary and --json \
            ("compression") report the choice and the ratio obtained.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Source directory holding accounts.csv and users/<user_id>/, or s3://BUCKET[/PREFIX] holding the same as objects.",
                               valueName: "DIR|s3://BUCKET[/PREFIX]"))
    var source: String

    @Flag(help: "Keep DIR/users/<id> (or the users' source objects) after its bundle is committed.")
    var keepSource = false

    @Flag(help: "Report which users would be archived; change nothing.")
    var dryRun = false

    @Option(name: .customLong("user"), help: ArgumentHelp("Archive only this user (repeatable; must be listed in accounts.csv).", valueName: "ID"))
    var users: [String] = []

    /// The source as messages name it (an S3 URL without its trailing `/`).
    private var sourceName: String { source.hasPrefix("s3://") ? (try? BundleStoreURL(parsing: source).description) ?? source : source }

    /// `-v` (a global option): also one line per archived user on stdout.
    private var verbose: Bool { global.verbose }

    @Option(help: ArgumentHelp("Worker threads sealing users concurrently (default: one per core; a separate thread does the database writes, fsyncs and commits).", valueName: "N"))
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: ArgumentHelp("Compress every file at zstd level N (-7 to 19). Default: adaptive, per file: a 64 KiB sample of each file of 64 KiB or more is compressed at level 1; files that do not shrink to under half (recordings, compressed audio, media) are compressed at level 1, the others at level 3. Either way one standard zstd frame per bundle.", valueName: "N"))
    var level: Int32?

    func validate() throws {
        if let level, !(-7...19).contains(level) { throw ValidationError("--level must be between -7 and 19") }
        if source.isEmpty { throw ValidationError("--source must name the export directory or an s3://BUCKET[/PREFIX] URL") }
        if source.hasPrefix("s3://") {
            do { _ = try BundleStoreURL(parsing: source, what: "--source") } catch { throw ValidationError("\(error)") }
        }
        if !(1...256).contains(jobs) { throw ValidationError("--jobs must be between 1 and 256") }
        if let bad = users.first(where: { UserID($0) == nil }) {
            throw ValidationError("--user '\(bad)' is not a valid user id: use 1-128 characters of A-Z a-z 0-9 . _ - not starting with . or -")
        }
    }

    func run() throws {
        ProcessMemory.returnLargeBuffers()  // bounded resident memory for a big user (advisory)
        let job = JobRun("archive", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault(dryRun: dryRun)
            var options = ArchiveOptions(source: source, keepSource: keepSource, dryRun: dryRun,
                                         users: users.isEmpty ? nil : users.compactMap(UserID.init), jobs: jobs)
            if let level { options.compression = .fixed(level) }
            let progress = ProgressLine("archiving")
            let report: ArchiveReport
            do {
                defer { progress.finish() }
                report = try vault.archive(options, now: global.now, progress: progress.handler)
            }
            for user in report.reappeared {
                Output.warning("user \(user) was deleted (tombstone) but its data reappeared in \(sourceName)/users/\(user); it was not archived: remove it from the export")
            }
            if global.json {
                try Output.json(report)
            } else {
                printText(report)
            }
            for f in report.failed { printError("user \(f.user) was not archived: \(f.reason)") }
            for f in report.sourcesNotRemoved {
                printError("user \(f.user): \(f.reason); it stays in the export until removed (every archive run retries; `status` lists it)")
            }
            if !report.failed.isEmpty {
                printError("\(Output.plural(report.failed.count, "user")) failed; their source data is untouched. Fix them and run archive again")
            }
            if report.isPartial { throw ExitCode(ExitCodes.partialFailure) }
            try job.succeeded(vault, record: !dryRun, [
                "dry_run": .stringConvertible(dryRun), "candidates": .stringConvertible(report.candidates),
                "archived_users": .stringConvertible(report.archived.count), "skipped_users": .stringConvertible(report.skipped.count),
                "plaintext_bytes": .stringConvertible(report.plaintextBytes),
                "bundle_bytes": .stringConvertible(report.archived.reduce(Int64(0)) { $0 + $1.bundleBytes }),
            ])
        } }
    }

    private func printText(_ report: ArchiveReport) {
        if report.recoveredPartial > 0 {
            print("recovered: removed \(Output.plural(report.recoveredPartial, "unfinished bundle")) left by an interrupted run")
        }
        if let line = Output.sweepLine(report.sweep) { print(line) }
        if report.dryRun {
            print("dry run \(report.today): would archive \(Output.plural(report.wouldArchive.count, "user")) of \(report.candidates) inactive, "
                  + "skip \(report.skipped.count), \(report.failed.count) failed; nothing changed")
            if verbose { for user in report.wouldArchive { print("  would archive \(user)") } }
        } else {
            let bundleBytes = report.archived.reduce(Int64(0)) { $0 + $1.bundleBytes }
            let removed = keepSource ? "sources kept"
                : source.hasPrefix("s3://") ? "\(report.removedSources) users' source objects deleted"
                : "\(report.removedSources) source directories removed"
            print("archived \(Output.plural(report.archived.count, "user")) (\(Output.bytes(report.plaintextBytes)) of files, "
                  + "\(Output.bytes(bundleBytes)) of bundles) of \(report.candidates) inactive on \(report.today); "
                  + "skipped \(report.skipped.count), failed \(report.failed.count); \(removed)")
            if let c = report.compression {
                let choice = c.mode == "fixed" ? "fixed level \(c.level)"
                    : "adaptive: \(Output.bytes(c.fastFileBytes)) of barely compressible files at level \(c.fastLevel ?? 1), the rest at level \(c.level)"
                print("compression: \(choice); zstd output \(String(format: "%.1f", c.ratio * 100))% of the tar stream "
                      + "(\(Output.bytes(c.frameBytes)) of \(Output.bytes(c.tarBytes)))")
            }
            if verbose {
                for a in report.archived {
                    print("  \(a.user): bundle \(a.bundleId), \(Output.plural(a.files, "file")), \(Output.bytes(a.bytes)) -> \(Output.bytes(a.bundleBytes)), expiry day \(a.expiryDay)")
                }
            }
        }
        if verbose { for s in report.skipped { print("  skipped \(s.user): \(s.reason)") } }
    }
}
