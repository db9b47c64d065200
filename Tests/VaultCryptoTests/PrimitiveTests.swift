import XCTest

@testable import VaultCrypto

/// Known answers and edge cases for SHA-2, HKDF and AES-256-GCM.
final class PrimitiveTests: XCTestCase {
    func testSHA2KnownAnswers() throws {
        let abc = Array("abc".utf8)
        XCTAssertEqual(
            Hex.encode(try SHA256.hash(abc)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            Hex.encode(try SHA512.hash(abc)),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                + "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
        XCTAssertEqual(
            Hex.encode(try SHA256.hash([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    func testSHA2IncrementalMatchesOneShotAndResets() throws {
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let sha256 = try SHA256(), sha512 = try SHA512()
        try checkIncremental(data, update: { try sha256.update($0) }, finalize: sha256.finalize, expected: SHA256.hash(data))
        try checkIncremental(data, update: { try sha512.update($0) }, finalize: sha512.finalize, expected: SHA512.hash(data))
        try data.withUnsafeBytes { try sha512.update($0) }
        XCTAssertEqual(try sha512.finalize(), try SHA512.hash(data))
    }

    private func checkIncremental(
        _ data: [UInt8], update: ([UInt8]) throws -> Void, finalize: () throws -> [UInt8], expected: [UInt8]
    ) throws {
        try update(Array(data[..<1]))
        try update(Array(data[1..<4097]))
        try update(Array(data[4097...]))
        XCTAssertEqual(try finalize(), expected)
        try update(data)  // the hasher starts over after finalize
        XCTAssertEqual(try finalize(), expected)
    }

    /// RFC 5869 test cases 1 and 3 (SHA-256).
    func testHKDFRFC5869() throws {
        let ikm = SecretBytes(copying: [UInt8](repeating: 0x0b, count: 22))
        let okm = try HKDF.deriveKey(
            hash: .sha256, inputKeyMaterial: ikm, salt: Array(0x00...0x0c), info: Array(0xf0...0xf9), outputByteCount: 42)
        XCTAssertEqual(
            okm.hexEncodedString(),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
        let prk = try SecretBytes(hex: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5")
        XCTAssertEqual(try HKDF.expand(hash: .sha256, prk: prk, info: Array(0xf0...0xf9), outputByteCount: 42), okm)
        XCTAssertEqual(
            try HKDF.deriveKey(hash: .sha256, inputKeyMaterial: ikm, salt: [], info: [], outputByteCount: 42).hexEncodedString(),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
    }

    func testHKDFOutputLimits() throws {
        let prk = SecretBytes(count: 32)
        XCTAssertEqual(try HKDF.expand(hash: .sha256, prk: prk, info: [], outputByteCount: 255 * 32).count, 8160)
        for (hash, size) in [(HKDF.Hash.sha256, 255 * 32 + 1), (.sha512, 255 * 64 + 1), (.sha256, 0), (.sha512, -1)] {
            XCTAssertThrowsError(try HKDF.expand(hash: hash, prk: prk, info: [], outputByteCount: size), "\(size)") {
                guard case .invalidLength = $0 as? CryptoError else { return XCTFail("\($0)") }
            }
        }
    }

    func testAESGCMRejectsWrongSizes() throws {
        XCTAssertThrowsError(try AESGCM256(key: SecretBytes(count: 16))) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeySize(expected: 32, actual: 16))
        }
        let aead = try AESGCM256(key: SecretBytes.random(count: 32))
        XCTAssertThrowsError(try aead.seal(nonce: [0], plaintext: [1], aad: [])) {
            XCTAssertEqual($0 as? CryptoError, .invalidNonceSize(expected: 12, actual: 1))
        }
        XCTAssertThrowsError(try aead.open(nonce: [UInt8](repeating: 0, count: 12), ciphertextAndTag: [1, 2], aad: []))
        var output = [UInt8](repeating: 0, count: 19)  // plaintext + tag would be 20
        XCTAssertThrowsError(try [UInt8](repeating: 1, count: 4).withUnsafeBytes { pt in
            try output.withUnsafeMutableBytes { out in
                try aead.seal(nonce: [UInt8](repeating: 0, count: 12), plaintext: pt, aad: UnsafeRawBufferPointer(start: nil, count: 0), into: out)
            }
        })
    }

    func testAESGCMContextReuseAcrossDirections() throws {
        let aead = try AESGCM256(key: SecretBytes.random(count: 32))
        var sealed: [[UInt8]] = []
        for index in 0..<20 {
            let nonce = [UInt8](repeating: UInt8(index), count: 12)
            let message = [UInt8](repeating: UInt8(index), count: index * 37)
            sealed.append(try aead.seal(nonce: nonce, plaintext: message, aad: [UInt8(index)]))
            if index % 3 == 0 {  // interleave opens of earlier messages
                let earlier = index / 2
                XCTAssertEqual(
                    try aead.open(nonce: [UInt8](repeating: UInt8(earlier), count: 12), ciphertextAndTag: sealed[earlier], aad: [UInt8(earlier)]),
                    [UInt8](repeating: UInt8(earlier), count: earlier * 37))
            }
        }
        XCTAssertNotEqual(sealed[1], try aead.seal(nonce: [UInt8](repeating: 1, count: 12), plaintext: [UInt8](repeating: 1, count: 37), aad: []))
    }

    func testAESGCMFailedOpenZeroesOutputAndLeavesInputAlone() throws {
        let aead = try AESGCM256(key: SecretBytes.random(count: 32))
        let nonce = try SecureRandom.bytes(count: 12)
        let message = [UInt8](repeating: 0x5a, count: 1000)
        var sealed = try aead.seal(nonce: nonce, plaintext: message, aad: [9])
        sealed[sealed.count - 1] ^= 1
        let tampered = sealed
        var output = [UInt8](repeating: 0xaa, count: message.count)
        XCTAssertThrowsError(try sealed.withUnsafeBytes { input in
            try [UInt8(9)].withUnsafeBytes { aad in
                try output.withUnsafeMutableBytes { try aead.open(nonce: nonce, ciphertextAndTag: input, aad: aad, into: $0) }
            }
        }) { XCTAssertEqual($0 as? CryptoError, .authenticationFailed) }
        XCTAssertTrue(output.allSatisfy { $0 == 0 }, "failed open must zero the output")
        XCTAssertEqual(sealed, tampered)
        sealed[sealed.count - 1] ^= 1
        XCTAssertEqual(try aead.open(nonce: nonce, ciphertextAndTag: sealed, aad: [9]), message, "context must recover after a failure")
        XCTAssertThrowsError(try aead.open(nonce: nonce, ciphertextAndTag: sealed, aad: [8]))
    }

    func testCryptoErrorDescriptionsAreSentences() {
        let errors: [CryptoError] = [
            .openSSL(function: "EVP_EncryptUpdate", detail: "x"), .invalidKeySize(expected: 32, actual: 31),
            .invalidNonceSize(expected: 12, actual: 0), .authenticationFailed, .commitmentMismatch, .truncated,
            .chunkLimitExceeded, .invalidPublicKey("not on the curve"), .invalidLength("too short"),
        ]
        for error in errors {
            XCTAssertTrue(error.description.hasSuffix("."), error.description)
            XCTAssertGreaterThan(error.description.count, 20)
        }
        XCTAssertTrue(CryptoError.openSSL(function: "EVP_EncryptUpdate", detail: "x").description.contains("EVP_EncryptUpdate"))
    }
}
