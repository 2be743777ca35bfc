import GRDB

/// The monolith's schema, one migration per change, applied at start-up.
enum Schema {
    /// Applies the migrations `database` does not have yet, off the cooperative threads.
    static func migrate(_ database: any DatabaseWriter) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            self.migrator.asyncMigrate(database) { result in continuation.resume(with: result.map { _ in }) }
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: accounts, contacts, leads, deals, outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE accounts (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        domain TEXT,
                        industry TEXT,
                        ownerEmail TEXT,
                        version INTEGER NOT NULL,
                        createdAt TEXT NOT NULL,
                        updatedAt TEXT NOT NULL
                    ) WITHOUT ROWID;

                    CREATE TABLE contacts (
                        id TEXT PRIMARY KEY NOT NULL,
                        accountId TEXT NOT NULL REFERENCES accounts(id),
                        firstName TEXT NOT NULL,
                        lastName TEXT NOT NULL,
                        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
                        phone TEXT,
                        title TEXT,
                        tags TEXT NOT NULL DEFAULT '[]',
                        version INTEGER NOT NULL,
                        createdAt TEXT NOT NULL,
                        updatedAt TEXT NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX contacts_by_account ON contacts(accountId, id);

                    CREATE TABLE leads (
                        id TEXT PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        email TEXT NOT NULL,
                        company TEXT,
                        source TEXT,
                        status TEXT NOT NULL,
                        score INTEGER NOT NULL,
                        convertedAccountId TEXT,
                        convertedContactId TEXT,
                        convertedDealId TEXT,
                        convertedAt TEXT,
                        version INTEGER NOT NULL,
                        createdAt TEXT NOT NULL,
                        updatedAt TEXT NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX leads_by_status ON leads(status, id);

                    CREATE TABLE deals (
                        id TEXT PRIMARY KEY NOT NULL,
                        accountId TEXT NOT NULL REFERENCES accounts(id),
                        contactId TEXT REFERENCES contacts(id),
                        name TEXT NOT NULL,
                        amount INTEGER NOT NULL,
                        currency TEXT NOT NULL,
                        stage TEXT NOT NULL,
                        expectedCloseDate TEXT,
                        probability INTEGER NOT NULL,
                        version INTEGER NOT NULL,
                        createdAt TEXT NOT NULL,
                        updatedAt TEXT NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX deals_by_account ON deals(accountId, id);
                    CREATE INDEX deals_by_stage ON deals(stage, id);
                    CREATE INDEX deals_by_contact ON deals(contactId);

                    -- Debezium's outbox columns (id, aggregatetype, aggregateid, type, payload), plus when and where.
                    CREATE TABLE outbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        aggregatetype TEXT NOT NULL,
                        aggregateid TEXT NOT NULL,
                        type TEXT NOT NULL,
                        payload TEXT NOT NULL,
                        occurredAt TEXT NOT NULL,
                        origin TEXT NOT NULL DEFAULT 'monolith'
                    );
                    """
            )
        }
        migrator.registerMigration("v2: reverse sync checkpoints") { db in
            try db.execute(
                sql: """
                    -- Per extracted service whose own feed the monolith consumes (reverse sync): the last event
                    -- applied,
                    -- moved in the same transaction as the changes it covers.
                    CREATE TABLE reverse_sync (
                        service TEXT PRIMARY KEY NOT NULL,
                        lastEventId INTEGER NOT NULL,
                        lastOccurredAt TEXT,
                        consumedEvents INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    """
            )
        }
        // The trace context of the request that wrote each event (W3C traceparent), as Debezium carries it in a header.
        migrator.registerMigration("v3: outbox traceparent") { db in
            try db.execute(sql: "ALTER TABLE outbox ADD COLUMN traceparent TEXT")
        }
        return migrator
    }
}
