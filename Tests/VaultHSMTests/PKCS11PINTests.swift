import Foundation
import XCTest

@testable import VaultCrypto
@testable import VaultHSM

/// PIN sources (no token needed).
final class PKCS11PINTests: XCTestCase {
    private var directory: URL!
    private let variable = "SHREDVAULT_TEST_PKCS11_PIN_\(getpid())"

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shredvault-pin-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        unsetenv(variable)
    }

    override func tearDownWithError() throws {
        unsetenv(variable)
        try? FileManager.default.removeItem(at: directory)
    }

    private func pinFile(_ contents: String, mode: Int) throws -> String {
        let url = directory.appendingPathComponent("pin-\(UUID().uuidString)")
        try Data(contents.utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: url.path)
        return url.path
    }

    private func text(_ secret: SecretBytes) -> String {
        secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    func testFromEnvironment() throws {
        setenv(variable, "env-pin 42", 1)
        XCTAssertEqual(text(try PKCS11PIN.load(environmentVariable: variable, file: nil)), "env-pin 42")
    }

    func testFromFileStripsOneTrailingNewline() throws {
        XCTAssertEqual(text(try PKCS11PIN.load(file: pinFile("file-pin\n", mode: 0o600))), "file-pin")
        XCTAssertEqual(text(try PKCS11PIN.load(file: pinFile("file-pin\r\n", mode: 0o600))), "file-pin")
        XCTAssertEqual(text(try PKCS11PIN.load(file: pinFile("file-pin", mode: 0o400))), "file-pin")
        XCTAssertEqual(text(try PKCS11PIN.load(file: pinFile(" pin \n\n", mode: 0o600))), " pin \n")
    }

    func testFileWinsOverEnvironment() throws {
        setenv(variable, "env-pin", 1)
        let path = try pinFile("file-pin\n", mode: 0o600)
        XCTAssertEqual(text(try PKCS11PIN.load(environmentVariable: variable, file: path)), "file-pin")
    }

    func testNoSourceIsAnError() throws {
        XCTAssertThrowsError(try PKCS11PIN.load(environmentVariable: variable, file: nil)) {
            XCTAssertEqual($0 as? PKCS11Error, .pinMissing(environmentVariable: variable))
        }
        setenv(variable, "", 1)
        XCTAssertThrowsError(try PKCS11PIN.load(environmentVariable: variable, file: nil)) {
            XCTAssertEqual($0 as? PKCS11Error, .pinMissing(environmentVariable: variable))
        }
    }

    func testFileWithGroupOrOtherBitsIsRefusedWithoutShowingThePIN() throws {
        for mode in [0o640, 0o604, 0o660, 0o644, 0o610, 0o601] {
            let path = try pinFile("secret-pin-777\n", mode: mode)
            XCTAssertThrowsError(try PKCS11PIN.load(file: path), "mode \(String(mode, radix: 8))") {
                guard case let .pinFile(errorPath, reason) = $0 as? PKCS11Error else { return XCTFail("\($0)") }
                XCTAssertEqual(errorPath, path)
                XCTAssertTrue(reason.contains("0600"), reason)
                XCTAssertFalse("\($0)".contains("secret-pin-777"))
            }
        }
    }

    func testUnusableFilesAreRefused() throws {
        let missing = directory.appendingPathComponent("missing").path
        XCTAssertThrowsError(try PKCS11PIN.load(file: missing)) {
            guard case .pinFile(missing, _) = $0 as? PKCS11Error else { return XCTFail("\($0)") }
        }
        let subdirectory = directory.appendingPathComponent("dir")
        try FileManager.default.createDirectory(at: subdirectory, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: subdirectory.path)
        XCTAssertThrowsError(try PKCS11PIN.load(file: subdirectory.path)) {
            XCTAssertEqual($0 as? PKCS11Error, .pinFile(path: subdirectory.path, reason: "not a regular file"))
        }
        for empty in ["", "\n"] {
            let path = try pinFile(empty, mode: 0o600)
            XCTAssertThrowsError(try PKCS11PIN.load(file: path)) {
                XCTAssertEqual($0 as? PKCS11Error, .pinFile(path: path, reason: "it is empty"))
            }
        }
        let longest = String(repeating: "p", count: PKCS11PIN.maximumLength)
        XCTAssertEqual(text(try PKCS11PIN.load(file: pinFile(longest + "\n", mode: 0o600))), longest)
        let tooLong = try pinFile(longest + "p", mode: 0o600)
        XCTAssertThrowsError(try PKCS11PIN.load(file: tooLong)) {
            guard case .pinFile(tooLong, _) = $0 as? PKCS11Error else { return XCTFail("\($0)") }
        }
    }
}
