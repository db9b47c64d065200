import XCTest

@testable import VaultHSM

final class PKCS11URITests: XCTestCase {
    func testFullURI() throws {
        let uri = try PKCS11URI(
            parsing: "pkcs11:token=Shred%20Vault;object=restore-key"
                + "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/shredvault/pin")
        XCTAssertEqual(
            uri,
            PKCS11URI(
                token: "Shred Vault", object: "restore-key", modulePath: "/usr/lib/softhsm/libsofthsm2.so",
                pinFile: "/etc/shredvault/pin"))
    }

    func testMinimalAndPinSourceForms() throws {
        XCTAssertEqual(try PKCS11URI(parsing: "pkcs11:token=T"), PKCS11URI(token: "T"))
        XCTAssertEqual(try PKCS11URI(parsing: "PKCS11:TOKEN=T"), PKCS11URI(token: "T"))
        XCTAssertEqual(try PKCS11URI(parsing: "pkcs11:token=T?pin-source=/p").pinFile, "/p")
        XCTAssertEqual(try PKCS11URI(parsing: "pkcs11:token=T?pin-source=file:///p%2Fq").pinFile, "/p/q")
        XCTAssertEqual(try PKCS11URI(parsing: "pkcs11:token=T;x-vendor=1?x-other=2"), PKCS11URI(token: "T"))
        XCTAssertEqual(try PKCS11URI(parsing: "pkcs11:token=%E2%82%AC").token, "€")
    }

    func testRefusals() {
        let cases: [(String, String)] = [
            ("token=T", "pkcs11:"),
            ("pkcs11:object=k", "token"),
            ("pkcs11:token=", "token"),
            ("pkcs11:token=T?pin-value=1234", "pin-value is not accepted"),
            ("pkcs11:token=T;slot-id=1", "slot-id"),
            ("pkcs11:token=T?module-name=softhsm2", "module-name"),
            ("pkcs11:token=T;token=U", "twice"),
            ("pkcs11:token=T%2", "hex"),
            ("pkcs11:token=T%ZZ", "hex"),
            ("pkcs11:token=%FF", "UTF-8"),
            ("pkcs11:token=T;;object=o", "empty"),
            ("pkcs11:token", "no value"),
            ("pkcs11:token=T?pin-source=relative/pin", "absolute"),
            ("pkcs11:token=T?pin-source=file://host/pin", "host"),
            ("pkcs11:token=T?pin-source=|/bin/getpin", "absolute"),
            ("pkcs11:token=T#x", "fragment"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try PKCS11URI(parsing: text), text) {
                guard case let .invalidURI(reason) = $0 as? PKCS11Error else { return XCTFail("\(text): \($0)") }
                XCTAssertTrue(reason.contains(expected), "\(text): \(reason)")
                XCTAssertFalse(reason.contains("1234"), "\(text): \(reason)")
            }
        }
    }
}
