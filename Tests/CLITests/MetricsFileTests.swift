import XCTest
@testable import ShredVaultCLI

/// The escaping and number rules of the metrics writer, with values a vault does not produce today (a label value
/// with quotes, backslashes and line feeds), read back by the strict parser.
final class MetricsFileTests: XCTestCase {
    func testLabelValuesAndHelpAreEscapedSoTheParserReadsThemBack() throws {
        let awkward = "a \"quoted\" C:\\path\nsecond line"
        let text = "# HELP shredvault_x_total \(MetricsFile.escapeHelp("help with \\ and\nnewline"))\n# TYPE shredvault_x_total counter\n"
            + "shredvault_x_total{kind=\"\(MetricsFile.escapeLabel(awkward))\"} \(MetricsFile.format(3))\n"
        let parsed = try Exposition(text)
        XCTAssertEqual(parsed.value("shredvault_x_total", ["kind": awkward]), 3)
        XCTAssertEqual(parsed.families["shredvault_x_total"]?.help, "help with \\ and\nnewline")
        XCTAssertEqual(MetricsFile.escapeLabel(awkward), "a \\\"quoted\\\" C:\\\\path\\nsecond line")
    }

    func testNumbers() {
        XCTAssertEqual(MetricsFile.format(0), "0")
        XCTAssertEqual(MetricsFile.format(1_795_997_400), "1795997400")
        XCTAssertEqual(MetricsFile.format(0.0306), "0.031")
        XCTAssertEqual(MetricsFile.format(-2), "-2")
    }
}
