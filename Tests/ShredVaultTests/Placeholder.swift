import XCTest
final class PlaceholderShredVaultTests: XCTestCase { func testNothing() {} }
