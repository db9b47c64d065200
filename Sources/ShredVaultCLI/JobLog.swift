#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Logging
import ShredVault

/// Job logs on stderr through swift-log. The default level is warning, so a job prints no log line unless asked
/// (`-v`: info, one line when a job starts and one when it ends with its figures); a failure stays the one
/// `shredvault: error: ...` line. Text on a terminal; off a terminal each text line starts with an sd-daemon(3)
/// priority prefix (`<6>`) that journald turns into the record's priority; `--log-format json` prints one JSON
/// object per line. No log line carries key material: figures are counts, durations and identifiers only.
enum JobLog {
    enum Format: String, CaseIterable { case text, json }

    nonisolated(unsafe) private static var bootstrapped = false
    nonisolated(unsafe) static var quiet = false

    /// Sets the process's log handler once, from the global options.
    static func bootstrap(_ global: GlobalOptions) {
        guard !bootstrapped else { return }
        bootstrapped = true
        let level: Logger.Level = global.quiet ? .error : global.verbose ? .info : .warning
        quiet = global.quiet
        let format = global.logFormat
        let terminal = isatty(2) == 1
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: level, format: format, terminal: terminal) }
    }

    static var logger: Logger { Logger(label: "shredvault") }
}

/// One job's run: logs its start, and on success records it in the catalog, logs its end with its figures and
/// writes the metrics file (`--metrics-file`). A command calls `succeeded` itself, or sets `vault` and lets `run`
/// finish it when its body returns.
final class JobRun {
    let job: String
    let global: GlobalOptions
    private let started = DispatchTime.now()
    private let logger: Logger
    /// The vault to finish with when `run`'s body returns, for a command with several exits (hold, restore).
    var vault: Vault?
    private var finished = false

    init(_ job: String, _ global: GlobalOptions) {
        JobLog.bootstrap(global)
        self.job = job
        self.global = global
        var logger = JobLog.logger
        logger[metadataKey: "job"] = .string(job)
        self.logger = logger
        logger.info("job started", metadata: ["event": "start", "clock": .string(Timestamp.format(global.now))])
    }

    var elapsedSeconds: Double { Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9 }

    /// Runs the command's body; a failure is logged (notice, so only with -v) and rethrown unchanged.
    func run(_ body: () throws -> Void) throws {
        do {
            try body()
            if !finished, let vault { try succeeded(vault) }
        } catch {
            var meta: Logger.Metadata = ["event": "end", "outcome": "failure", "duration_seconds": .string(String(format: "%.3f", elapsedSeconds))]
            if let e = error as? VaultError { meta["exit_code"] = .stringConvertible(ExitCodes.code(for: e)) }
            if let e = error as? ExitCode { meta["exit_code"] = .stringConvertible(e.rawValue) }
            logger.notice("job failed", metadata: meta)
            throw error
        }
    }

    /// The job succeeded: record it (unless `record` is false, e.g. a dry run), log its end, write the metrics file.
    func succeeded(_ vault: Vault, record: Bool = true, _ figures: Logger.Metadata = [:]) throws {
        finished = true
        let duration = elapsedSeconds
        if record {
            do {
                try vault.recordJobSuccess(job, at: global.now, durationSeconds: duration)
            } catch {
                // A read-only catalog (a least-privilege user running check) keeps the job's own outcome.
                logger.notice("could not record the job's success in the catalog", metadata: ["event": "record-failed"])
            }
        }
        var meta = figures
        meta["event"] = "end"
        meta["outcome"] = "success"
        meta["duration_seconds"] = .string(String(format: "%.3f", duration))
        logger.info("job finished", metadata: meta)
        try writeMetrics(vault, duration: duration)
    }

    /// Writes the metrics file if `--metrics-file` or `SHREDVAULT_METRICS_FILE` names one.
    func writeMetrics(_ vault: Vault, duration: Double? = nil) throws {
        guard let path = global.metricsFile else { return }
        let now = global.now
        let text = MetricsFile.render(try vault.metrics(now: now), health: try vault.health(now: now), drill: vault.config.isDrill,
                                      job: job, durationSeconds: duration ?? elapsedSeconds)
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        try VaultMetrics.writeFile(absolute, text)
        logger.debug("metrics file written", metadata: ["event": "metrics", "path": .string(absolute)])
    }
}

/// Writes each log record as one line on stderr.
struct StderrLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    let format: JobLog.Format
    let terminal: Bool

    init(label: String, level: Logger.Level, format: JobLog.Format, terminal: Bool) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.terminal = terminal
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let time = Self.timestamp()
        let line: String
        switch format {
        case .json:
            var object: [String: Any] = ["time": time, "level": event.level.rawValue, "message": event.message.description]
            for (key, value) in all {
                // Counts and durations as JSON numbers, flags as booleans, the rest as strings.
                let text = Self.plain(value)
                if case .stringConvertible(let c) = value, let b = c as? Bool { object[key] = b }
                else if let n = Int64(text) { object[key] = n }
                else if key.hasSuffix("_seconds"), let d = Double(text) { object[key] = d }
                else { object[key] = text }
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            line = String(decoding: data, as: UTF8.self)
        case .text:
            let fields = all.keys.sorted().map { "\($0)=\(Self.quoted(Self.plain(all[$0]!)))" }.joined(separator: " ")
            let body = "shredvault: \(event.level.rawValue): \(event.message)" + (fields.isEmpty ? "" : " " + fields)
            // On a terminal a timestamp helps the reader; journald stamps each record itself and reads the priority prefix.
            line = terminal ? "\(time) \(body)" : "<\(Self.priority(event.level))>\(body)"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// sd-daemon(3) priorities: 7 debug, 6 info, 5 notice, 4 warning, 3 err, 2 crit.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func plain(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(plain).joined(separator: ",")
        case .dictionary(let d): return d.keys.sorted().map { "\($0):\(plain(d[$0]!))" }.joined(separator: ",")
        }
    }

    /// A value with a space, quote or equals sign is quoted (logfmt style); line breaks never reach the log.
    static func quoted(_ s: String) -> String {
        let clean = s.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
        guard clean.isEmpty || clean.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else { return clean }
        return "\"" + clean.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }
}
