import Foundation
import XCTest
@testable import ShredVault

/// Deletion receipts' known answers (samples/vectors/receipt/), made by tools/receipt-vectors.py with Python's
/// `cryptography` package from vault-format.md §3.9, §3.10 and §6.3 alone: the Swift verifier must accept exactly the
/// valid ones, read the stated facts from them, and refuse the others.
final class ReceiptVectorTests: XCTestCase {
    struct Vectors: Decodable {
        struct Case: Decodable { var file: String; var expect: String; var comment: String; var receipt: DeletionReceipt? }
        var trust: String
        var masterKeyId: String
        var cases: [Case]
    }

    func testEveryReceiptVectorHasItsStatedOutcome() throws {
        var dir = URL(fileURLWithPath: #filePath)
        while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { dir.deleteLastPathComponent() }
        let base = dir.appendingPathComponent("samples/vectors/receipt").path
        let v = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: URL(fileURLWithPath: base + "/vectors.json")))
        XCTAssertEqual(v.cases.filter { $0.expect == "valid" }.count, 3)
        XCTAssertEqual(v.cases.filter { $0.expect == "refused" }.count, 7)
        for c in v.cases {
            let path = base + "/" + c.file
            switch c.expect {
            case "valid":
                let verified = try DeletionReceipt.verify(receiptFile: path, trustFile: base + "/" + v.trust, masterKeyId: v.masterKeyId)
                XCTAssertEqual(verified.receipt, try XCTUnwrap(c.receipt), c.file)
                XCTAssertEqual(verified.signerRole, c.file.contains("master") ? "master" : "job", c.file)
                // Our encoder reproduces the independent one's text byte for byte.
                let file = try XCTUnwrap(ReceiptFile.decode(try readBytes(path)), c.file)
                XCTAssertEqual(verified.receipt.text, file.text, c.file)
            case "refused":
                XCTAssertThrowsError(try DeletionReceipt.verify(receiptFile: path, trustFile: base + "/" + v.trust, masterKeyId: nil),
                                     "\(c.file): \(c.comment)") { error in
                    guard case VaultError.notVerified = error else { return XCTFail("\(c.file): \(error)") }
                }
            default:
                XCTFail("\(c.file): unknown expectation \(c.expect)")
            }
        }
    }
}
