import XCTest

@testable import VaultCrypto

final class SecretBytesTests: XCTestCase {
    private let hex = "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"

    func testDescriptionsNeverShowTheBytes() throws {
        let secret = try SecretBytes(hex: hex)
        let renderings = [secret.description, secret.debugDescription, "\(secret)", String(reflecting: secret)]
        for text in renderings {
            XCTAssertFalse(text.lowercased().contains("ccddeeff"), text)
            XCTAssertFalse(text.contains("204"), text)  // 0xcc in decimal
            XCTAssertTrue(text.contains("32 bytes"), text)
        }
    }

    func testHexRoundTripAndParsing() throws {
        let secret = try SecretBytes(hex: hex.uppercased())
        XCTAssertEqual(secret.count, 32)
        XCTAssertEqual(secret.hexEncodedString(), hex)
        secret.withUnsafeBytes { XCTAssertEqual(Array($0.prefix(3)), [0x00, 0x11, 0x22]) }
        XCTAssertEqual(try SecretBytes(hex: "").count, 0)
        for bad in ["abc", "zz", "0g", "00 11", "0x00"] {
            XCTAssertThrowsError(try SecretBytes(hex: bad), bad) {
                guard case .invalidLength = $0 as? CryptoError else { return XCTFail("\(bad): \($0)") }
            }
        }
    }

    func testInitializers() throws {
        XCTAssertEqual(SecretBytes(count: 5).hexEncodedString(), "0000000000")
        XCTAssertEqual(SecretBytes(copying: [1, 2, 255]).hexEncodedString(), "0102ff")
        XCTAssertEqual(SecretBytes(copying: [1, 2, 3, 4].lazy.filter { $0 % 2 == 0 }).hexEncodedString(), "0204")
        let first = try SecretBytes.random(count: 32), second = try SecretBytes.random(count: 32)
        XCTAssertEqual(first.count, 32)
        XCTAssertNotEqual(first, second)
        XCTAssertNotEqual(first, SecretBytes(count: 32))
    }

    func testEqualityComparesContentsNotIdentity() throws {
        let a = try SecretBytes(hex: hex)
        let b = try SecretBytes(hex: hex)
        XCTAssertFalse(a === b)
        XCTAssertEqual(a, b)
        var changed = Array(hex.utf8)
        changed[changed.count - 1] = UInt8(ascii: "1")  // last byte differs only
        XCTAssertNotEqual(a, try SecretBytes(hex: String(decoding: changed, as: UTF8.self)))
        XCTAssertNotEqual(a, SecretBytes(copying: Hex.decode(hex).dropLast()))  // length differs
        XCTAssertEqual(SecretBytes(count: 0), SecretBytes(count: 0))
        XCTAssertTrue(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(constantTimeEquals([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(constantTimeEquals([1, 2, 3], [1, 2]))
        XCTAssertTrue(constantTimeEquals([], []))
    }

    func testWipeZeroesTheBuffer() throws {
        let secret = try SecretBytes(hex: hex)
        secret.wipe()
        secret.withUnsafeBytes { XCTAssertTrue($0.allSatisfy { $0 == 0 }) }
    }

    func testReleaseZeroesTheBufferBeforeFreeingIt() throws {
        final class Observation: @unchecked Sendable { var bytes: [UInt8]? }
        let observation = Observation()
        do {
            let secret = try SecretBytes(hex: hex)
            secret.withUnsafeBytes { XCTAssertFalse($0.allSatisfy { $0 == 0 }) }
            secret.releaseObserverForTesting = { observation.bytes = Array($0) }
        }
        let seen = try XCTUnwrap(observation.bytes, "deinit must run when the last reference goes")
        XCTAssertEqual(seen.count, 32)
        XCTAssertTrue(seen.allSatisfy { $0 == 0 }, "released secret was not wiped")
    }

    func testSecureRandom() throws {
        let a = try SecureRandom.bytes(count: 64), b = try SecureRandom.bytes(count: 64)
        XCTAssertEqual(a.count, 64)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(try SecureRandom.bytes(count: 0), [])
        var buffer = [UInt8](repeating: 0, count: 100)
        try buffer.withUnsafeMutableBytes { try SecureRandom.fill($0) }
        XCTAssertNotEqual(buffer, [UInt8](repeating: 0, count: 100))
    }
}
