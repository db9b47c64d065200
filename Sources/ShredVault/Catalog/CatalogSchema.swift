import GRDB

/// The catalog's migrations: a timeline that is never edited once shipped; add a new migration instead.
/// Invariants live in the schema (NOT NULL, CHECK, UNIQUE, foreign keys).
enum CatalogSchema {
    /// The erasure ledger (vault-format.md §5.3): in the catalog and, mirrored, in the keyring. Frozen with v1.
    static let erasuresTable = """
        CREATE TABLE erasures (
            key_id BLOB PRIMARY KEY CHECK (length(key_id) = 16),
            role TEXT NOT NULL,
            subject TEXT NOT NULL,
            recorded_at INTEGER NOT NULL,
            reason TEXT NOT NULL
        ) STRICT
        """

    /// The keyring's mirror of `holds` (same columns), written before the catalog at every placement and release.
    static let holdsMirrorTable = """
        CREATE TABLE holds (
            case_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            placed_at INTEGER NOT NULL,
            released_at INTEGER,
            PRIMARY KEY (case_id, user_id)
        ) STRICT
        """

    /// The keyring's mirror of recorded deletion requests (written before the catalog records one), so a request
    /// still blocked by a hold survives the loss of the catalog.
    static let requestsMirrorTable = """
        CREATE TABLE deletion_requests (
            request_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            received_at INTEGER NOT NULL,
            deadline_day INTEGER NOT NULL,
            recorded_at INTEGER NOT NULL
        ) STRICT
        """

    /// The keyring's mirror of `receipts` (§6.3), written after the catalog commits a receipt (its text names the audit
    /// record of that transaction) and before the catalog marks it mirrored; `reindex` and `recover` bring receipts back
    /// from it.
    static let receiptsMirrorTable = """
        CREATE TABLE receipts (
            request_id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            issued_at INTEGER NOT NULL,
            text TEXT NOT NULL,
            signature BLOB NOT NULL CHECK (length(signature) = 80)
        ) STRICT
        """

    static func migrator() -> DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE bundles (
                    id TEXT PRIMARY KEY CHECK (length(id) = 32),
                    user_id TEXT NOT NULL,
                    archived_at INTEGER NOT NULL,
                    original_expiry_day INTEGER NOT NULL,
                    expiry_day INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('writing', 'live', 'expired', 'shredded')),
                    size INTEGER NOT NULL CHECK (size >= 0),
                    sha256 BLOB CHECK (sha256 IS NULL OR length(sha256) = 32),
                    location TEXT NOT NULL UNIQUE,
                    user_key_id BLOB NOT NULL CHECK (length(user_key_id) = 16),
                    outer_role TEXT CHECK (outer_role IN ('day', 'hold')),
                    outer_key_id BLOB CHECK (outer_key_id IS NULL OR length(outer_key_id) = 16),
                    sealed_dek BLOB,
                    files INTEGER NOT NULL DEFAULT 0,
                    plaintext_bytes INTEGER NOT NULL DEFAULT 0,
                    source_state TEXT NOT NULL DEFAULT 'kept' CHECK (source_state IN ('pending-removal', 'removed', 'kept')),
                    ended_at INTEGER,
                    end_reason TEXT,
                    CHECK ((state = 'live') = (sealed_dek IS NOT NULL AND outer_role IS NOT NULL AND sha256 IS NOT NULL))
                ) STRICT;
                CREATE INDEX bundles_live_by_expiry ON bundles (expiry_day) WHERE state = 'live';
                CREATE INDEX bundles_by_user ON bundles (user_id, state);
                CREATE INDEX bundles_writing ON bundles (state) WHERE state = 'writing';
                CREATE INDEX bundles_source_pending ON bundles (source_state) WHERE source_state = 'pending-removal';

                CREATE TABLE holds (
                    case_id TEXT NOT NULL,
                    user_id TEXT NOT NULL,
                    reason TEXT NOT NULL CHECK (length(reason) > 0),
                    placed_at INTEGER NOT NULL,
                    released_at INTEGER,
                    PRIMARY KEY (case_id, user_id)
                ) STRICT;
                CREATE INDEX holds_active_by_user ON holds (user_id) WHERE released_at IS NULL;

                CREATE TABLE deletion_requests (
                    request_id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL,
                    received_at INTEGER NOT NULL,
                    deadline_day INTEGER NOT NULL,
                    recorded_at INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'blocked', 'done')),
                    blocked_by TEXT,
                    completed_at INTEGER,
                    CHECK ((state = 'done') = (completed_at IS NOT NULL))
                ) STRICT;
                CREATE INDEX deletion_requests_open ON deletion_requests (deadline_day) WHERE state != 'done';

                CREATE TABLE tombstones (
                    user_id TEXT PRIMARY KEY,
                    deleted_at INTEGER NOT NULL,
                    request_id TEXT NOT NULL REFERENCES deletion_requests (request_id)
                ) STRICT;

                \(erasuresTable);

                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY,
                    at INTEGER NOT NULL,
                    action TEXT NOT NULL,
                    user_id TEXT,
                    detail TEXT NOT NULL,
                    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
                    hash BLOB NOT NULL CHECK (length(hash) = 32)
                ) STRICT;

                CREATE TABLE meta (
                    key TEXT PRIMARY KEY,
                    value TEXT NOT NULL
                ) STRICT;
                """)
        }
        m.registerMigration("v2-backups") { db in
            try db.execute(sql: """
                CREATE TABLE backups (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL CHECK (kind IN ('keystore', 'vault')),
                    path TEXT NOT NULL,
                    taken_at INTEGER NOT NULL,
                    epoch_start INTEGER NOT NULL,
                    epoch_key_id BLOB NOT NULL CHECK (length(epoch_key_id) = 16)
                ) STRICT;
                CREATE INDEX backups_by_epoch ON backups (epoch_start);
                """)
        }
        m.registerMigration("v3-live-stats-index") { db in
            // Covers `status` (counts, bytes, distinct users, next expiry) without touching the table rows.
            try db.execute(sql: """
                CREATE INDEX bundles_live_stats ON bundles (user_id, outer_role, expiry_day, size, plaintext_bytes) WHERE state = 'live';
                """)
        }
        m.registerMigration("v4-state-index") { db in
            // Counts of expired and shredded bundles for `status` without a table scan.
            try db.execute(sql: "CREATE INDEX bundles_by_state ON bundles (state)")
        }
        m.registerMigration("v5-live-stats") { db in
            // `status` in O(1) however many bundles there are: live totals and distinct live users are kept
            // up to date by triggers on `bundles`, inside the same transactions that change it.
            try db.execute(sql: """
                CREATE TABLE live_users (user_id TEXT PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0)) STRICT, WITHOUT ROWID;
                CREATE TABLE live_stats (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    bundles INTEGER NOT NULL, users INTEGER NOT NULL, size INTEGER NOT NULL, plain INTEGER NOT NULL, held INTEGER NOT NULL
                ) STRICT;
                INSERT INTO live_users (user_id, n) SELECT user_id, count(*) FROM bundles WHERE state = 'live' GROUP BY user_id;
                INSERT INTO live_stats (id, bundles, users, size, plain, held)
                    SELECT 1, count(*), (SELECT count(*) FROM live_users), coalesce(sum(size), 0),
                           coalesce(sum(max(plaintext_bytes, 0)), 0), coalesce(sum(outer_role = 'hold'), 0)
                    FROM bundles WHERE state = 'live';

                CREATE TRIGGER live_stats_insert AFTER INSERT ON bundles WHEN NEW.state = 'live' BEGIN
                    INSERT INTO live_users (user_id, n) VALUES (NEW.user_id, 1) ON CONFLICT (user_id) DO UPDATE SET n = n + 1;
                    UPDATE live_stats SET bundles = bundles + 1, size = size + NEW.size, plain = plain + max(NEW.plaintext_bytes, 0),
                        held = held + (NEW.outer_role = 'hold'), users = users + (SELECT n = 1 FROM live_users WHERE user_id = NEW.user_id);
                END;
                CREATE TRIGGER live_stats_delete AFTER DELETE ON bundles WHEN OLD.state = 'live' BEGIN
                    UPDATE live_users SET n = n - 1 WHERE user_id = OLD.user_id;
                    UPDATE live_stats SET bundles = bundles - 1, size = size - OLD.size, plain = plain - max(OLD.plaintext_bytes, 0),
                        held = held - (OLD.outer_role = 'hold'), users = users - (SELECT n = 0 FROM live_users WHERE user_id = OLD.user_id);
                    DELETE FROM live_users WHERE user_id = OLD.user_id AND n = 0;
                END;
                CREATE TRIGGER live_stats_update AFTER UPDATE ON bundles WHEN OLD.state = 'live' OR NEW.state = 'live' BEGIN
                    UPDATE live_users SET n = n - 1 WHERE OLD.state = 'live' AND user_id = OLD.user_id;
                    UPDATE live_stats SET bundles = bundles - 1, size = size - OLD.size, plain = plain - max(OLD.plaintext_bytes, 0),
                        held = held - (OLD.outer_role = 'hold'), users = users - (SELECT n = 0 FROM live_users WHERE user_id = OLD.user_id)
                        WHERE OLD.state = 'live';
                    DELETE FROM live_users WHERE OLD.state = 'live' AND user_id = OLD.user_id AND n = 0;
                    INSERT INTO live_users (user_id, n) SELECT NEW.user_id, 1 WHERE NEW.state = 'live'
                        ON CONFLICT (user_id) DO UPDATE SET n = n + 1;
                    UPDATE live_stats SET bundles = bundles + 1, size = size + NEW.size, plain = plain + max(NEW.plaintext_bytes, 0),
                        held = held + (NEW.outer_role = 'hold'), users = users + (SELECT n = 1 FROM live_users WHERE user_id = NEW.user_id)
                        WHERE NEW.state = 'live';
                END;
                """)
        }
        m.registerMigration("v6-intents") { db in
            // Intents of multi-step jobs (vault-format.md §6.1): recorded before a job's first change, rolled forward
            // by the next job of any kind, deleted in the transaction that completes them.
            try db.execute(sql: """
                CREATE TABLE intents (
                    id INTEGER PRIMARY KEY,
                    kind TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    payload TEXT NOT NULL
                ) STRICT;
                """)
        }
        m.registerMigration("v7-signed-bundles") { db in
            // G8 (vault-format.md §3.10): the hash of the inner sealed DEK and the two signatures of a bundle. NULL in
            // rows written before the trust record, until `trust init` endorses them.
            try db.execute(sql: """
                ALTER TABLE bundles ADD COLUMN inner_sha256 BLOB CHECK (inner_sha256 IS NULL OR length(inner_sha256) = 32);
                ALTER TABLE bundles ADD COLUMN bundle_sig BLOB CHECK (bundle_sig IS NULL OR length(bundle_sig) = 80);
                ALTER TABLE bundles ADD COLUMN seal_sig BLOB CHECK (seal_sig IS NULL OR length(seal_sig) = 80);
                """)
        }
        m.registerMigration("v8-audit-heads") { db in
            // Signed audit heads (vault-format.md §6.2): one row per write transaction that appended audit records
            // first_seq…last_seq, written in that transaction; `signature` is the §3.10 signature (signer key id ‖ r ‖ s)
            // over the head's body. `audit verify` checks that the heads tile the log, each record in exactly one.
            try db.execute(sql: """
                CREATE TABLE audit_heads (
                    first_seq INTEGER PRIMARY KEY CHECK (first_seq >= 1),
                    last_seq INTEGER NOT NULL UNIQUE CHECK (last_seq >= first_seq),
                    at INTEGER NOT NULL,
                    signature BLOB NOT NULL CHECK (length(signature) = 80)
                ) STRICT;
                """)
        }
        m.registerMigration("v9-receipts") { db in
            // Signed deletion receipts (vault-format.md §6.3): one per completed request, written in the transaction
            // that completes it (or, for a request completed before the vault could sign, by a later `converge`).
            // `mirrored` turns 1 once the keyring holds a copy.
            try db.execute(sql: """
                CREATE TABLE receipts (
                    request_id TEXT PRIMARY KEY REFERENCES deletion_requests (request_id),
                    user_id TEXT NOT NULL,
                    issued_at INTEGER NOT NULL,
                    text TEXT NOT NULL,
                    signature BLOB NOT NULL CHECK (length(signature) = 80),
                    mirrored INTEGER NOT NULL DEFAULT 0 CHECK (mirrored IN (0, 1))
                ) STRICT;
                CREATE INDEX receipts_unmirrored ON receipts (request_id) WHERE mirrored = 0;
                """)
        }
        m.registerMigration("v10-source-objects") { db in
            // Objects of an S3 archive source (vault-format.md §6.5) that a committed bundle was made from and that are
            // still to be deleted: written in the commit that makes the bundle live, deleted with the objects. `source`
            // is the s3://BUCKET[/PREFIX] they were read from, `key` the full object key.
            try db.execute(sql: """
                CREATE TABLE source_objects (
                    bundle_id TEXT NOT NULL CHECK (length(bundle_id) = 32),
                    source TEXT NOT NULL CHECK (source LIKE 's3://%'),
                    key TEXT NOT NULL CHECK (length(key) > 0),
                    PRIMARY KEY (bundle_id, key)
                ) STRICT;
                """)
        }
        return m
    }
}
