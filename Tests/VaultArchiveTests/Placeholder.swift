import XCTest
final class PlaceholderVaultArchiveTests: XCTestCase { func testNothing() {} }
