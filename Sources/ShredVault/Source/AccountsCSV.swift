/// One account row of the source's `accounts.csv`.
public struct Account: Sendable, Equatable {
    public var userId: UserID
    public var lastActive: CivilDay
}

/// Strict reader for `accounts.csv` (DESIGN-BRIEF §5): a header row with at least `user_id` and `last_active`
/// (ISO date); other columns are ignored. RFC 4180 quoting is understood. Any malformed row fails the whole file
/// with its line number, so a bad file changes nothing.
public enum AccountsCSV {
    public static func parse(_ text: String, path: String) throws -> [Account] {
        var rows = try records(text, path: path)
        guard !rows.isEmpty else { throw malformed(path, 1, "empty file; expected a header row with user_id,last_active") }
        let header = rows.removeFirst().fields.map { $0.trimmingCharacters(in: " \u{feff}") }
        guard let userColumn = header.firstIndex(of: "user_id"), let activeColumn = header.firstIndex(of: "last_active") else {
            throw malformed(path, 1, "header must name the columns user_id and last_active (found: \(header.joined(separator: ",")))")
        }
        var seen = Set<String>()
        var accounts: [Account] = []
        for (line, fields) in rows {
            if fields.count == 1 && fields[0].isEmpty { continue }
            guard fields.count == header.count else {
                throw malformed(path, line, "has \(fields.count) fields, the header has \(header.count)")
            }
            let rawUser = fields[userColumn], rawDay = fields[activeColumn]
            guard let user = UserID(rawUser) else { throw malformed(path, line, "user_id '\(rawUser)' is not a valid user id ([A-Za-z0-9._-], 1-128)") }
            guard let day = CivilDay(iso: rawDay) else { throw malformed(path, line, "last_active '\(rawDay)' is not a YYYY-MM-DD date") }
            guard seen.insert(user.rawValue).inserted else { throw malformed(path, line, "user \(user) appears twice") }
            accounts.append(Account(userId: user, lastActive: day))
        }
        return accounts
    }

    static func malformed(_ path: String, _ line: Int, _ reason: String) -> VaultError {
        .malformedInput(path: path, line: line, reason: reason)
    }

    /// Splits CSV text into records of fields with their starting line numbers.
    static func records(_ text: String, path: String) throws -> [(line: Int, fields: [String])] {
        var out: [(Int, [String])] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1, recordLine = 1
        var chars = Array(text.unicodeScalars)[...]
        var atFieldStart = true
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst() } else { inQuotes = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where atFieldStart:
                inQuotes = true
                atFieldStart = false
            case ",":
                fields.append(field); field = ""; atFieldStart = true
            case "\r":
                continue
            case "\n":
                fields.append(field); field = ""; atFieldStart = true
                out.append((recordLine, fields)); fields = []
                line += 1; recordLine = line
            default:
                field.unicodeScalars.append(c)
                atFieldStart = false
            }
        }
        if inQuotes { throw malformed(path, recordLine, "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty { fields.append(field); out.append((recordLine, fields)) }
        return out
    }
}
