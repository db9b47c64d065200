import XCTest
final class PlaceholderVaultCryptoTests: XCTestCase { func testNothing() {} }
