/// A user identifier as it appears in accounts.csv, bundle headers and directory names (vault-format.md §2.2).
/// 1–128 bytes of `[A-Za-z0-9._-]`, not starting with `.` or `-`, so it is always a safe single path component.
public struct UserID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let maxLength = 128
    public let rawValue: String

    public init?(_ text: String) {
        guard UserID.isValid(text) else { return nil }
        self.rawValue = text
    }

    public static func isValid(_ text: String) -> Bool {
        let u = Array(text.utf8)
        guard (1...maxLength).contains(u.count), u[0] != UInt8(ascii: "."), u[0] != UInt8(ascii: "-") else { return false }
        return u.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }

    public var description: String { rawValue }
    public static func < (a: UserID, b: UserID) -> Bool { a.rawValue < b.rawValue }
}
