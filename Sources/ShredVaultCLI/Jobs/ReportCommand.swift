import ArgumentParser
import Foundation
import ShredVault

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the compliance report for a data-protection officer or an auditor (HTML and JSON). Needs no key.",
        discussion: """
            Writes DIR/report.html — one self-contained page (inline charts, no script, nothing loaded from \
            elsewhere) — and DIR/report.json with the same data: the retention policy; an expiry calendar (bundles \
            and bytes whose day key is destroyed on each of the next archive-days days); every deletion request with \
            when it was received, its deadline, when it was completed, whether the deadline was met and whether a \
            signed receipt exists; legal holds by case; keystore backup epochs and when each becomes unreadable; the \
            key-destruction log; a check of the vault (sizes, headers and signatures of every live bundle, as \
            `shredvault check --quick`); and the audit log's state and latest signed head. DIR must not exist \
            (or be empty); the files appear only once complete. Changes nothing in the vault.

            Example:
              shredvault report --vault /srv/shredvault --to /srv/reports/2026-11
              xdg-open /srv/reports/2026-11/report.html
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("to"), help: ArgumentHelp("Directory to write report.html and report.json into (new or empty).", valueName: "DIR"))
    var directory: String

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            let report = try vault.complianceReport(now: global.now)
            try ComplianceReport.write(report, to: directory)
            if global.json {
                try Output.json(ReportWritten(html: directory + "/report.html", json: directory + "/report.json", ok: report.check.ok))
            } else {
                print("report written: \(directory)/report.html and report.json — \(report.deletionSummary.done) deletion requests done "
                      + "(\(report.deletionSummary.onTime) on time), \(report.deletionSummary.overdue) overdue, check "
                      + (report.check.ok ? "OK" : "found \(report.check.violations.count) problems"))
            }
        }
    }

    struct ReportWritten: Codable { var html: String; var json: String; var ok: Bool }
}
