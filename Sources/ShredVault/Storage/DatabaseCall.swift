import GRDB

/// Runs a GRDB call on the SQLite file at `path`, turning its errors into `VaultError.database` naming the file.
/// (Errors thrown by the body that are not SQLite errors pass through unchanged.)
func databaseCall<T>(_ path: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as DatabaseError {
        throw VaultError.database(path: path, message: e.message ?? "\(e)")
    }
}
