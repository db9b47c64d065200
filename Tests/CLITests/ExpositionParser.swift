import Foundation

/// A strict reader of the Prometheus text exposition format (0.0.4), written for the metrics tests instead of
/// `promtool check metrics`: Debian's `prometheus` package brings the whole server (about 100 MB) for one check.
/// It refuses what Prometheus would refuse or warn about: bad metric or label names, bad escapes in label values,
/// HELP or TYPE twice or after a sample of the family, a family split in two, a value that is not a float,
/// duplicate series, a counter without `_total`, a missing final newline.
struct Exposition {
    struct Sample: Hashable { var name: String; var labels: [String: String]; var value: Double }
    struct Family { var name: String; var help: String?; var type: String?; var samples: [Sample] = [] }

    struct Malformed: Error, CustomStringConvertible {
        var line: Int; var reason: String
        var description: String { "line \(line): \(reason)" }
    }

    private(set) var families: [String: Family] = [:]
    private(set) var order: [String] = []

    static let types: Set<String> = ["counter", "gauge", "histogram", "summary", "untyped"]

    init(_ text: String) throws {
        guard text.hasSuffix("\n") else { throw Malformed(line: 0, reason: "the last line does not end with a line feed") }
        var closed: Set<String> = []
        var current: String?
        var seen: Set<String> = []
        for (index, raw) in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = index + 1
            let line = String(raw)
            func fail(_ reason: String) -> Malformed { Malformed(line: n, reason: reason + ": " + line) }
            if line.isEmpty { throw fail("empty line") }
            func enter(_ name: String) throws {
                if current != name {
                    if closed.contains(name) { throw fail("family \(name) continues after another family started") }
                    if let c = current { closed.insert(c) }
                    current = name
                }
                if families[name] == nil { families[name] = Family(name: name); order.append(name) }
            }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else { continue }  // a plain comment
                let name = parts[2]
                guard Self.isMetricName(name) else { throw fail("bad metric name '\(name)'") }
                try enter(name)
                if !families[name]!.samples.isEmpty { throw fail("\(parts[1]) after a sample of \(name)") }
                let rest = parts.count > 3 ? parts[3] : ""
                if parts[1] == "HELP" {
                    if families[name]!.help != nil { throw fail("second HELP for \(name)") }
                    families[name]!.help = try Self.unescapeHelp(rest, fail)
                } else {
                    if families[name]!.type != nil { throw fail("second TYPE for \(name)") }
                    guard Self.types.contains(rest) else { throw fail("unknown type '\(rest)'") }
                    families[name]!.type = rest
                }
                continue
            }
            let sample = try Self.sample(line, fail)
            guard sample.value.isFinite || sample.value.isNaN || sample.value.isInfinite else { throw fail("bad value") }
            try enter(sample.name)
            let key = sample.name + "{" + sample.labels.keys.sorted().map { "\($0)=\(sample.labels[$0]!)" }.joined(separator: ",") + "}"
            if !seen.insert(key).inserted { throw fail("duplicate series \(key)") }
            families[sample.name]!.samples.append(sample)
        }
        for f in families.values {
            if f.type == "counter" {
                if !f.name.hasSuffix("_total") { throw Malformed(line: 0, reason: "counter \(f.name) is not named *_total") }
                if f.samples.contains(where: { $0.value < 0 }) { throw Malformed(line: 0, reason: "counter \(f.name) is negative") }
            }
        }
    }

    static func isMetricName(_ s: String) -> Bool {
        s.range(of: "^[a-zA-Z_:][a-zA-Z0-9_:]*$", options: .regularExpression) != nil
    }

    static func isLabelName(_ s: String) -> Bool {
        s.range(of: "^[a-zA-Z_][a-zA-Z0-9_]*$", options: .regularExpression) != nil && !s.hasPrefix("__")
    }

    private static func unescapeHelp(_ s: String, _ fail: (String) -> Malformed) throws -> String {
        var out = "", escaped = false
        for c in s {
            if escaped {
                switch c { case "\\": out.append("\\"); case "n": out.append("\n"); default: throw fail("bad escape \\\(c) in HELP") }
                escaped = false
            } else if c == "\\" { escaped = true } else { out.append(c) }
        }
        if escaped { throw fail("HELP ends in a lone backslash") }
        return out
    }

    /// `name{label="value",...} value [timestamp]`
    private static func sample(_ line: String, _ fail: (String) -> Malformed) throws -> Sample {
        let chars = Array(line)
        var i = 0
        var name = ""
        while i < chars.count, chars[i] != "{", chars[i] != " " { name.append(chars[i]); i += 1 }
        guard isMetricName(name) else { throw fail("bad metric name '\(name)'") }
        var labels: [String: String] = [:]
        if i < chars.count, chars[i] == "{" {
            i += 1
            while true {
                guard i < chars.count else { throw fail("unterminated label set") }
                if chars[i] == "}" { i += 1; break }
                var label = ""
                while i < chars.count, chars[i] != "=" { label.append(chars[i]); i += 1 }
                guard isLabelName(label) else { throw fail("bad label name '\(label)'") }
                guard i + 1 < chars.count, chars[i] == "=", chars[i + 1] == "\"" else { throw fail("label \(label) without =\"") }
                i += 2
                var value = ""
                while true {
                    guard i < chars.count else { throw fail("unterminated label value") }
                    let c = chars[i]
                    if c == "\"" { i += 1; break }
                    if c == "\\" {
                        guard i + 1 < chars.count else { throw fail("lone backslash") }
                        switch chars[i + 1] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw fail("bad escape in label value")
                        }
                        i += 2
                        continue
                    }
                    if c == "\n" { throw fail("raw line feed in label value") }
                    value.append(c)
                    i += 1
                }
                if labels.updateValue(value, forKey: label) != nil { throw fail("label \(label) twice") }
                guard i < chars.count else { throw fail("unterminated label set") }
                if chars[i] == "," { i += 1; continue }
                guard chars[i] == "}" else { throw fail("expected , or } after a label") }
            }
        }
        guard i < chars.count, chars[i] == " " else { throw fail("no space before the value") }
        let fields = String(chars[(i + 1)...]).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 1 || fields.count == 2, !fields[0].isEmpty else { throw fail("expected a value and an optional timestamp") }
        guard let value = parseFloat(fields[0]) else { throw fail("value '\(fields[0])' is not a float") }
        if fields.count == 2, Int64(fields[1]) == nil { throw fail("timestamp '\(fields[1])' is not an integer") }
        return Sample(name: name, labels: labels, value: value)
    }

    private static func parseFloat(_ s: String) -> Double? {
        switch s {
        case "NaN": return .nan
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            guard s.range(of: "^[-+]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?$", options: .regularExpression) != nil else { return nil }
            return Double(s)
        }
    }

    /// The value of one series, nil if absent.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        families[name]?.samples.first { $0.labels == labels }?.value
    }
}
