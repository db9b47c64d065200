#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ShredVault

/// Results go to stdout, logs and warnings to stderr (the progress line only on a terminal).
enum Output {
    /// The encoder for every `--json` report: sorted keys, slashes unescaped, field names as the Swift properties.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    /// The command works on a drill vault: every JSON object it prints says `"drill": true` (vault-format.md §6.4).
    nonisolated(unsafe) static var drill = false

    /// Prints one JSON value on one line of stdout (for a drill vault with `"drill": true` in each object).
    static func json<T: Encodable>(_ value: T) throws {
        var data = try encoder.encode(value)
        if drill, let marked = markedAsDrill(data) { data = marked }
        print(String(decoding: data, as: UTF8.self))
    }

    /// The JSON with `"drill": true` added to the object (or to each object of an array), keys still sorted.
    private static func markedAsDrill(_ data: Data) -> Data? {
        guard let value = try? JSONSerialization.jsonObject(with: data) else { return nil }
        let marked: Any
        if var object = value as? [String: Any] {
            object["drill"] = true
            marked = object
        } else if let array = value as? [Any] {
            marked = array.map { element -> Any in
                guard var object = element as? [String: Any] else { return element }
                object["drill"] = true
                return object
            }
        } else {
            return nil
        }
        return try? JSONSerialization.data(withJSONObject: marked, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func warning(_ message: String) {
        if JobLog.quiet { return }
        FileHandle.standardError.write(Data("shredvault: warning: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("shredvault: \(message)\n".utf8))
    }

    /// Decimal units, as `du --si` and disk vendors count: "812 B", "12.3 kB", "4.56 MB", "1.20 GB".
    static func bytes(_ n: Int64) -> String {
        if n < 1000 { return "\(n) B" }
        let units = ["kB", "MB", "GB", "TB", "PB"]
        var value = Double(n) / 1000
        var unit = 0
        while value >= 1000, unit < units.count - 1 { value /= 1000; unit += 1 }
        return String(format: value < 10 ? "%.2f %@" : value < 100 ? "%.1f %@" : "%.0f %@", value, units[unit])
    }

    /// A duration in whole days, or hours or minutes under a day: "3 days", "5 hours", "0 minutes".
    static func age(_ seconds: Int64) -> String {
        if seconds >= 86_400 { return plural(Int(seconds / 86_400), "day") }
        if seconds >= 3_600 { return plural(Int(seconds / 3_600), "hour") }
        return plural(Int(seconds / 60), "minute")
    }

    static func plural(_ n: Int, _ word: String, _ plural: String? = nil) -> String {
        "\(n) \(n == 1 ? word : plural ?? word + "s")"
    }

    /// One line about the overdue sweep a mutating job ran first, or nil when it had nothing to do.
    /// Also notes on stderr what the job finished first for an interrupted one (`SweepReport.converged`).
    static func sweepLine(_ sweep: SweepReport?) -> String? {
        if let c = sweep?.converged {
            var parts: [String] = []
            if !c.resumedIntents.isEmpty { parts.append("finished \(plural(c.resumedIntents.count, "interrupted job step")) (\(c.resumedIntents.joined(separator: ", ")))") }
            if !c.completedDeletions.isEmpty { parts.append("completed deletion requests \(c.completedDeletions.joined(separator: ", "))") }
            if !c.lateReceipts.isEmpty { parts.append("issued the missing receipts of deletion requests \(c.lateReceipts.joined(separator: ", "))") }
            if !c.destroyedHoldKeys.isEmpty { parts.append("destroyed the unused hold keys of \(c.destroyedHoldKeys.joined(separator: ", "))") }
            if !c.removedLeftovers.isEmpty { parts.append("removed \(plural(c.removedLeftovers.count, "temporary file")) of an interrupted job") }
            if !parts.isEmpty { note(parts.joined(separator: "; ")) }
        }
        guard let sweep, !sweep.destroyedDayKeys.isEmpty || sweep.expiredBundles > 0 else { return nil }
        return "overdue sweep: destroyed the day keys of \(plural(sweep.destroyedDayKeys.count, "day")) (\(sweep.destroyedDayKeys.joined(separator: ", "))), "
            + "expired \(plural(sweep.expiredBundles, "bundle")) (\(bytes(sweep.freedBytes)) freed)"
    }
}

/// The progress line of a long job: on stderr, only when stderr is a terminal, redrawn in place at most
/// five times a second. It never touches stdout, so `--json` output and pipes stay clean.
final class ProgressLine {
    private let verb: String
    private let enabled = isatty(2) == 1
    private var lastDraw = 0.0
    private var drawn = false

    init(_ verb: String) { self.verb = verb }

    /// The handler to pass to the library, or nil when stderr is not a terminal.
    var handler: ProgressHandler? {
        guard enabled else { return nil }
        return { [self] done, total, item in update(done: done, total: total, item: item) }
    }

    private func update(done: Int, total: Int, item: String) {
        let now = Date().timeIntervalSince1970
        guard now - lastDraw >= 0.2 || (done == total && drawn) else { return }
        lastDraw = now
        let percent = total > 0 ? done * 100 / total : 100
        var line = "\(verb) \(done)/\(total) (\(percent)%)"
        if !item.isEmpty { line += " \(item)" }
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(line)".utf8))
        drawn = true
    }

    /// Clears the line so what follows starts on a clean line.
    func finish() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        drawn = false
    }
}
