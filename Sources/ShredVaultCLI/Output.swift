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

    /// Prints one JSON value on one line of stdout, stamped: the single place `--json` output is written. The top-level
    /// object (or each object of a top-level array) gets `"schemaVersion": 1` and, for a drill vault, `"drill": true`
    /// from the encoder itself (`Stamp`), and every object that names a user id as `user` also gets it as `userId`
    /// (`addingUserIds`), the name the schema uses everywhere (`user` stays for schema version 1, deprecated;
    /// docs/json-schema.md). No second JSON parse: `list` prints a million lines.
    static func json<T: Encodable>(_ value: T) throws {
        print(String(decoding: addingUserIds(try encoder.encode(Stamp(value: value, drill: drill))), as: UTF8.self))
    }

    /// Prints a JSON object built as a dictionary (the bundle commands), stamped like every other.
    static func json(object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: try stamped(data), as: UTF8.self))
    }

    /// `value`'s own fields plus `schemaVersion` (and `drill`) in the same JSON object; for an array, each element so.
    private struct Stamp: Encodable {
        let value: any Encodable
        let drill: Bool

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: Encoder) throws {
            if let array = value as? [any Encodable] {
                var elements = encoder.unkeyedContainer()
                for element in array { try elements.encode(Stamp(value: element, drill: drill)) }
                return
            }
            try value.encode(to: encoder)
            // JSONEncoder hands back the object the value just filled; sortedKeys orders the added keys with its own.
            var object = encoder.container(keyedBy: Key.self)
            try object.encode(FormatVersions.jsonSchema, forKey: Key(stringValue: "schemaVersion"))
            if drill { try object.encode(true, forKey: Key(stringValue: "drill")) }
        }
    }

    /// Compact JSON with `"userId":V` added right after each `"user":V` key whose value is a string and which has no
    /// `userId` beside it (with sorted keys, `userId` follows `user`). Keys are found outside strings only: the scan
    /// follows string boundaries and escapes.
    static func addingUserIds(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        let key = Array(#""user":""#.utf8), sibling = Array(#","userId":"#.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var i = 0
        func matches(_ pattern: [UInt8], at index: Int) -> Bool {
            index + pattern.count <= bytes.count && bytes[index..<(index + pattern.count)].elementsEqual(pattern)
        }
        /// The index just past the string that starts with the quote at `open`.
        func stringEnd(_ open: Int) -> Int {
            var j = open + 1
            while j < bytes.count {
                if bytes[j] == UInt8(ascii: "\\") { j += 2; continue }
                if bytes[j] == UInt8(ascii: "\"") { return j + 1 }
                j += 1
            }
            return bytes.count
        }
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "\"") else { out.append(bytes[i]); i += 1; continue }
            let isKey = i > 0 && (bytes[i - 1] == UInt8(ascii: "{") || bytes[i - 1] == UInt8(ascii: ","))
            if isKey, matches(key, at: i) {
                let valueStart = i + key.count - 1
                let valueEnd = stringEnd(valueStart)
                out += bytes[i..<valueEnd]
                if !matches(sibling, at: valueEnd) {
                    out += sibling
                    out += bytes[valueStart..<valueEnd]
                }
                i = valueEnd
                continue
            }
            let end = stringEnd(i)
            out += bytes[i..<end]
            i = end
        }
        return Data(out)
    }

    /// The JSON (from a dictionary) with the fields every `--json` object carries, keys still sorted.
    static func stamped(_ data: Data) throws -> Data {
        let value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        func stamp(_ element: Any) -> Any {
            guard var object = addingUserId(element) as? [String: Any] else { return element }
            object["schemaVersion"] = FormatVersions.jsonSchema
            if drill { object["drill"] = true }
            return object
        }
        let marked: Any = (value as? [Any]).map { $0.map(stamp) } ?? stamp(value)
        return try JSONSerialization.data(withJSONObject: marked, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
    }

    /// `userId` beside every `user` that holds a user id (a string), at any depth.
    private static func addingUserId(_ value: Any) -> Any {
        if let array = value as? [Any] { return array.map(addingUserId) }
        guard var object = value as? [String: Any] else { return value }
        for (key, element) in object { object[key] = addingUserId(element) }
        if let user = object["user"] as? String, object["userId"] == nil { object["userId"] = user }
        return object
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
/// five times a second, with the rate and the time left once a few items are done. It never touches stdout, so
/// `--json` output and pipes stay clean; Ctrl-C (SIGINT) or SIGTERM clears it before the process ends.
final class ProgressLine {
    private let verb: String
    private let enabled = isatty(2) == 1
    private var lastDraw = 0.0
    private var drawn = false
    private let started = Date().timeIntervalSince1970

    init(_ verb: String) {
        self.verb = verb
        if enabled { Self.clearOnSignal() }
    }

    /// The handler to pass to the library, or nil when stderr is not a terminal.
    var handler: ProgressHandler? {
        guard enabled else { return nil }
        return { [self] done, total, item, bytes in update(done: done, total: total, item: item, bytes: bytes) }
    }

    private func update(done: Int, total: Int, item: String, bytes: Int64) {
        let now = Date().timeIntervalSince1970
        guard now - lastDraw >= 0.2 || (done == total && drawn) else { return }
        lastDraw = now
        let percent = total > 0 ? done * 100 / total : 100
        var line = "\(verb) \(done)/\(total) (\(percent)%)"
        let elapsed = now - started
        if bytes > 0 { line += ", " + Output.bytes(bytes) }
        if done >= 3, elapsed >= 1 {
            let rate = Double(done) / elapsed
            line += String(format: ", %.1f/s", rate)
            if bytes > 0 { line += " (" + Output.bytes(Int64(Double(bytes) / elapsed)) + "/s)" }
            if total > done { line += ", " + Self.duration(Double(total - done) / rate) + " left" }
        }
        if !item.isEmpty { line += " \(item)" }
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(line)".utf8))
        drawn = true
    }

    /// Clears the line so what follows starts on a clean line.
    func finish() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        drawn = false
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? "\(s / 3600)h\(String(format: "%02d", s % 3600 / 60))m" : s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
    }

    /// On SIGINT or SIGTERM: erase the progress line, then end with the default action of the signal (the job's
    /// convergence on the next run finishes or undoes what it was doing, §6.1).
    private static func clearOnSignal() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { received in
                let erase: [UInt8] = [0x0d, 0x1b, 0x5b, 0x32, 0x4b]  // "\r\e[2K", async-signal-safe write(2)
                _ = erase.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }
}
