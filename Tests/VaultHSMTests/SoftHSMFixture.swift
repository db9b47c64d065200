import Foundation
import XCTest

@testable import VaultCrypto
@testable import VaultHSM

/// A SoftHSM2 token in a temporary directory of its own: a softhsm2.conf pointing at `<dir>/tokens`
/// (file object store), `SOFTHSM2_CONF` set for this process (SoftHSM reads it at `C_Initialize`, so the
/// module must not be loaded while a fixture is made), and a token initialized with `softhsm2-util`.
///
/// SoftHSM2 is required: CI installs it (`softhsm2`), and without it every test fails saying so.
final class SoftHSMFixture {
    /// The module under test: `SHREDVAULT_TEST_PKCS11_MODULE`, or Debian's SoftHSM2 path.
    static let modulePath =
        ProcessInfo.processInfo.environment["SHREDVAULT_TEST_PKCS11_MODULE"] ?? "/usr/lib/softhsm/libsofthsm2.so"
    static let utilityPath = "/usr/bin/softhsm2-util"
    /// The opensc tool used as a second process that reads the token.
    static let pkcs11ToolPath = "/usr/bin/pkcs11-tool"

    let directory: URL
    let configuration: URL
    let label: String
    /// Test-only PINs of a throwaway token (passed to softhsm2-util on its command line, as it requires).
    let pinText = "test-user-pin-1234"
    let soPinText = "test-so-pin-5678"
    var pin: SecretBytes { SecretBytes(copying: Array(pinText.utf8)) }

    init(label: String = "shredvault-test") throws {
        guard FileManager.default.fileExists(atPath: Self.modulePath) else {
            throw FixtureError(
                "SoftHSM2 is not installed: no PKCS#11 module at \(Self.modulePath) "
                    + "(apt-get install softhsm2 opensc, or set SHREDVAULT_TEST_PKCS11_MODULE)")
        }
        guard FileManager.default.isExecutableFile(atPath: Self.utilityPath) else {
            throw FixtureError("SoftHSM2 is not installed: no \(Self.utilityPath) (apt-get install softhsm2)")
        }
        guard !LoadedLibrary.isLoaded(path: Self.modulePath) else {
            throw FixtureError("the PKCS#11 module is still loaded by an earlier test; SOFTHSM2_CONF would be ignored")
        }
        self.label = label
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shredvault-hsm-\(UUID().uuidString)", isDirectory: true)
        let tokens = directory.appendingPathComponent("tokens", isDirectory: true)
        try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        configuration = directory.appendingPathComponent("softhsm2.conf")
        try """
        directories.tokendir = \(tokens.path)
        objectstore.backend = file
        log.level = ERROR
        slots.removable = false

        """.write(to: configuration, atomically: true, encoding: .utf8)
        setenv("SOFTHSM2_CONF", configuration.path, 1)
        try initializeToken(label: label)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Initializes one more token (the next free slot) in this fixture's directory.
    func initializeToken(label: String) throws {
        _ = try Self.run(
            Self.utilityPath,
            ["--init-token", "--free", "--label", label, "--pin", pinText, "--so-pin", soPinText])
    }

    var tokenDirectory: URL { directory.appendingPathComponent("tokens", isDirectory: true) }

    /// Object files of the file store (`<token dir>/<uuid>/*.object`), across all tokens of the fixture.
    func objectFileCount() throws -> Int {
        var count = 0
        let enumerator = FileManager.default.enumerator(at: tokenDirectory, includingPropertiesForKeys: nil)
        while let url = enumerator?.nextObject() as? URL {
            if url.pathExtension == "object" { count += 1 }
        }
        return count
    }

    /// Labels of the secret-key objects on the token, as listed by another process (opensc's pkcs11-tool,
    /// logged in as the user).
    func secretKeyLabelsFromAnotherProcess() throws -> [String] {
        guard FileManager.default.isExecutableFile(atPath: Self.pkcs11ToolPath) else {
            throw FixtureError("opensc is not installed: no \(Self.pkcs11ToolPath) (apt-get install opensc)")
        }
        let output = try Self.run(
            Self.pkcs11ToolPath,
            [
                "--module", Self.modulePath, "--token-label", label, "--login", "--pin", pinText,
                "--list-objects", "--type", "secrkey",
            ])
        return output.split(separator: "\n").compactMap { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("label:") else { return nil }
            return trimmed.dropFirst("label:".count).trimmingCharacters(in: .whitespaces)
        }
    }

    /// Runs `tool`, failing on a non-zero exit; returns its standard output.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: outputData, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw FixtureError(
                "\((tool as NSString).lastPathComponent) exited with \(process.terminationStatus): "
                    + text + String(decoding: errorData, as: UTF8.self))
        }
        return text
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Base class: a fresh token per test, and a check that each test released the module (so the next test's
/// SOFTHSM2_CONF takes effect).
class SoftHSMTestCase: XCTestCase {
    var token: SoftHSMFixture!

    override func setUpWithError() throws {
        try super.setUpWithError()
        token = try SoftHSMFixture()
    }

    override func tearDownWithError() throws {
        token = nil
        XCTAssertFalse(
            LoadedLibrary.isLoaded(path: SoftHSMFixture.modulePath),
            "the test left a PKCS11Module alive; the module must be finalized between tests")
        try super.tearDownWithError()
    }

    func makeStore(namespace: String = "shredvault-root-test", label: String? = nil) throws -> PKCS11RootStore {
        try PKCS11RootStore(
            module: SoftHSMFixture.modulePath, tokenLabel: label ?? token.label, pin: token.pin, namespace: namespace)
    }
}
