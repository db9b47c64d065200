/// The JSON string form every canonical text of the vault uses (audit details, deletion receipts): `"` and `\`
/// escaped, LF, CR and TAB as `\n`, `\r`, `\t`, other characters below U+0020 as `\u00XX` (lower-case hex), everything
/// else (`/` and non-ASCII included) as its raw UTF-8. A reader that re-encodes what it decoded with these rules gets
/// the same bytes back, which is how canonical texts are checked.
enum CanonicalJSON {
    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let digits = Array("0123456789abcdef")
                out += "\\u00" + String(digits[Int(u.value >> 4)]) + String(digits[Int(u.value & 0xf)])
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// `{"k1":v1,"k2":v2,…}` with the keys sorted by their UTF-8 bytes; `members` are already-encoded values.
    static func object(_ members: [(String, String)]) -> String {
        "{" + members.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
            .map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }
}
