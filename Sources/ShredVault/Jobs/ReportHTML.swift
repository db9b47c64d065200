import Foundation

/// The compliance report as one self-contained HTML page: inline CSS and SVG, no script, no external resource (a
/// `Content-Security-Policy` meta tag forbids both), every value from the report HTML-escaped.
extension ComplianceReport {
    public func html() -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
            <title>ShredVault compliance report \(Self.escape(generatedAt))</title>
            <style>
            body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1c2430;margin:2em auto;max-width:1100px;padding:0 1em}
            h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
            table{border-collapse:collapse;margin:.5em 0;font-size:13px}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
            th{background:#f3f5f7}.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.muted{color:#57606a}
            .cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #d0d7de;border-radius:6px;padding:.6em 1em;min-width:150px}
            .card b{display:block;font-size:1.5em}code{font-size:12px}
            </style></head><body>
            <h1>ShredVault compliance report</h1>
            <p class="muted">Vault <code>\(Self.escape(vaultId))</code>\(drill ? " — <b>drill vault</b> (not production)" : "") ·
            generated \(Self.escape(generatedAt)) · format \(Self.escape(format))</p>

            """
        out += "<div class=\"cards\">"
        out += card("live users", String(liveUsers)) + card("live bundles", String(liveBundles))
        out += card("stored", Self.bytes(liveBundleBytes)) + card("held bundles", String(heldBundles))
        out += card("deletion requests", String(deletionSummary.total))
        out += card("deadlines met", "\(deletionSummary.onTime) / \(deletionSummary.done)", bad: deletionSummary.late > 0)
        out += card("overdue now", String(deletionSummary.overdue), bad: deletionSummary.overdue > 0)
        out += card("check", check.ok ? "OK" : "\(check.violations.count) problems", bad: !check.ok)
        out += "</div>\n"

        out += "<h2>Policy</h2>\n<table><tr><th>rule</th><th>value</th></tr>"
        out += row(["archive limit", "\(policy.archiveDays) days from archiving (then the day key is destroyed)"])
        out += row(["inactive users archived after", "\(policy.inactiveDays) days"])
        out += row(["deletion deadline", "\(policy.deletionBusinessDays) business days"])
        out += row(["keystore backups unreadable after", "\(policy.backupDays) days (epochs of \(policy.backupEpochDays) days)"])
        out += row(["holidays", policy.holidays.isEmpty ? "none" : policy.holidays.joined(separator: ", ")])
        out += "</table>\n"

        out += "<h2>Expiry calendar (next \(expiryCalendar.count) days)</h2>\n"
        out += "<p class=\"muted\">Bundles whose day key is destroyed at the end of each day; held bundles are not listed (they expire when released).</p>\n"
        out += barChart(expiryCalendar.map { ($0.day, Double($0.bundles), "\($0.day): \($0.bundles) bundles, \(Self.bytes($0.bytes))") },
                        color: "#0969da", unit: "bundles")

        out += "<h2>Deletion requests</h2>\n"
        out += "<p>\(deletionSummary.done) done (\(deletionSummary.onTime) on time, \(deletionSummary.late) late), \(deletionSummary.open) pending, "
        out += "\(deletionSummary.blocked) blocked by a legal hold, \(deletionSummary.overdue) overdue now.</p>\n"
        out += deletionChart()
        out += "<table><tr><th>request</th><th>user</th><th>received</th><th>deadline</th><th>completed</th><th>state</th><th>deadline met</th><th>receipt</th></tr>"
        for r in deletionRequests {
            let met: String
            if let onTime = r.onTime { met = onTime ? "<span class=\"ok\">yes</span>" : "<span class=\"bad\">no</span>" } else {
                met = r.overdue ? "<span class=\"bad\">overdue</span>"
                    : r.state == "blocked" ? "<span class=\"muted\">held (legal hold)</span>" : "<span class=\"muted\">open</span>"
            }
            out += "<tr>" + [r.requestId, r.userId, r.received, r.deadline, r.completed ?? "—",
                             r.state + (r.blockedBy.map { " (" + $0 + ")" } ?? "")].map { "<td>\(Self.escape($0))</td>" }.joined()
            out += "<td>\(met)</td><td>\(r.receipt ? "signed" : "—")</td></tr>"
        }
        out += "</table>\n"

        out += "<h2>Legal holds</h2>\n"
        if holds.isEmpty { out += "<p class=\"muted\">No hold was ever placed.</p>\n" } else {
            out += "<table><tr><th>case</th><th>users held now</th><th>users released</th><th>first placed</th><th>last released</th></tr>"
            for h in holds { out += row([h.caseId, String(h.activeUsers), String(h.releasedUsers), h.firstPlaced, h.lastReleased ?? "—"]) }
            out += "</table>\n"
        }

        out += "<h2>Keystore backup epochs</h2>\n"
        if backupEpochs.isEmpty { out += "<p class=\"muted\">No keystore backup was taken.</p>\n" } else {
            out += "<table><tr><th>epoch</th><th>snapshots</th><th>last taken</th><th>unreadable from</th><th>epoch key</th></tr>"
            for e in backupEpochs {
                out += "<tr>" + [e.epochStart, String(e.snapshots), e.lastTaken, e.destructionDay].map { "<td>\(Self.escape($0))</td>" }.joined()
                out += "<td>\(e.keyDestroyed ? "<span class=\"ok\">destroyed</span>" : "live")</td></tr>"
            }
            out += "</table>\n"
        }

        out += "<h2>Key destructions (\(keyDestructions.count))</h2>\n"
        if keyDestructions.isEmpty { out += "<p class=\"muted\">No key was destroyed yet.</p>\n" } else {
            out += "<table><tr><th>when</th><th>key</th><th>of</th><th>why</th></tr>"
            for k in keyDestructions.suffix(500) { out += row([k.at, k.role, k.subject, k.reason]) }
            out += "</table>\n"
            if keyDestructions.count > 500 { out += "<p class=\"muted\">The last 500 are shown; report.json lists all.</p>\n" }
        }

        out += "<h2>Check</h2>\n"
        out += "<p>\(check.ok ? "<span class=\"ok\">OK</span>" : "<span class=\"bad\">\(check.violations.count) problems</span>"): "
        out += "\(check.checkedBundles) live bundles checked\(check.quick ? " (sizes, headers and signatures; `shredvault check --read-data` decrypts every bundle)" : "").</p>\n"
        if !check.violations.isEmpty {
            out += "<ul>" + check.violations.prefix(100).map { "<li>\(Self.escape($0))</li>" }.joined() + "</ul>\n"
        }

        out += "<h2>Audit log</h2>\n<table>"
        out += row(["records", String(audit.records)])
        out += "<tr><td>hash chain and signed heads</td><td>\(audit.chainOk ? "<span class=\"ok\">intact</span>" : "<span class=\"bad\">" + Self.escape(audit.problem ?? "broken") + "</span>")</td></tr>"
        out += row(["latest signed head", audit.headSeq.map { "record \($0), hash \(audit.headHash ?? "?"), signed by \(audit.headSigner ?? "?")" } ?? "none"])
        out += row(["last exported head", audit.lastExportedAt.map { "\($0) (record \(audit.lastExportedSeq ?? 0))" } ?? "never exported"])
        out += "</table>\n</body></html>\n"
        return out
    }

    private func card(_ label: String, _ value: String, bad: Bool = false) -> String {
        "<div class=\"card\"><b\(bad ? " class=\"bad\"" : "")>\(Self.escape(value))</b>\(Self.escape(label))</div>"
    }

    private func row(_ cells: [String]) -> String { "<tr>" + cells.map { "<td>\(Self.escape($0))</td>" }.joined() + "</tr>" }

    /// A bar per item; a title on each bar gives its exact value.
    private func barChart(_ items: [(label: String, value: Double, title: String)], color: String, unit: String) -> String {
        let width = 1040.0, height = 180.0, left = 40.0, bottom = 30.0
        let maxValue = max(items.map(\.value).max() ?? 0, 1)
        let step = items.isEmpty ? 0 : (width - left) / Double(items.count)
        var svg = "<svg role=\"img\" aria-label=\"\(Self.escape(unit)) per day\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<line x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width)\" y2=\"\(height - bottom)\" stroke=\"#8c959f\"/>"
        svg += "<text x=\"0\" y=\"12\" font-size=\"11\" fill=\"#57606a\">\(Self.number(maxValue))</text>"
        for (i, item) in items.enumerated() {
            let h = (height - bottom - 16) * item.value / maxValue
            let x = left + Double(i) * step
            svg += "<rect x=\"\(Self.number(x + 1))\" y=\"\(Self.number(height - bottom - h))\" width=\"\(Self.number(max(step - 2, 1)))\" height=\"\(Self.number(h))\" fill=\"\(color)\"><title>\(Self.escape(item.title))</title></rect>"
            if i % 15 == 0 {
                svg += "<text x=\"\(Self.number(x))\" y=\"\(Self.number(height - 10))\" font-size=\"11\" fill=\"#57606a\">\(Self.escape(item.label))</text>"
            }
        }
        return svg + "</svg>\n"
    }

    /// Per request: days from receipt to completion (or to today while open) against the deadline.
    private func deletionChart() -> String {
        guard !deletionRequests.isEmpty else { return "<p class=\"muted\">No deletion request was received.</p>\n" }
        let shown = deletionRequests.suffix(60)
        let rowHeight = 16.0, left = 180.0, width = 1040.0
        let height = Double(shown.count) * rowHeight + 30
        func days(_ from: String, _ to: String?) -> Double {
            guard let a = Timestamp.parse(from) else { return 0 }
            let b = to.flatMap(Timestamp.parse) ?? Timestamp.parse(generatedAt) ?? a
            return max(0, Double(b - a) / 86_400)
        }
        let maxDays = max(shown.map { max(days($0.received, $0.completed), days($0.received, $0.deadline + "T23:59:59Z")) }.max() ?? 1, 1)
        let scale = (width - left - 20) / maxDays
        var svg = "<svg role=\"img\" aria-label=\"deletion requests against their deadlines\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (i, r) in shown.enumerated() {
            let y = Double(i) * rowHeight + 4
            let deadline = days(r.received, r.deadline + "T23:59:59Z")
            let took = days(r.received, r.completed)
            let color = r.onTime == true ? "#1a7f37" : (r.onTime == false || r.overdue) ? "#cf222e" : "#bf8700"
            svg += "<text x=\"0\" y=\"\(Self.number(y + 11))\" font-size=\"11\" fill=\"#1c2430\">\(Self.escape(String(r.requestId.prefix(26))))</text>"
            svg += "<rect x=\"\(left)\" y=\"\(Self.number(y))\" width=\"\(Self.number(max(took * scale, 2)))\" height=\"\(rowHeight - 5)\" fill=\"\(color)\"><title>\(Self.escape(r.requestId)): \(Self.number(took)) days, deadline \(Self.escape(r.deadline))</title></rect>"
            svg += "<line x1=\"\(Self.number(left + deadline * scale))\" x2=\"\(Self.number(left + deadline * scale))\" y1=\"\(Self.number(y - 1))\" y2=\"\(Self.number(y + rowHeight - 4))\" stroke=\"#1c2430\" stroke-width=\"2\"/>"
        }
        svg += "<text x=\"\(left)\" y=\"\(Self.number(height - 6))\" font-size=\"11\" fill=\"#57606a\">bar: days from receipt to completion (green on time, red late or overdue, amber open); tick: the deadline</text>"
        return svg + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func number(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v) }

    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), i = 0
        while v >= 1024, i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(n) B" : String(format: "%.1f", v) + " " + units[i]
    }
}
