import ServiceKit

/// The deals service's tables, one migration per change.
enum DealsSchema {
    static let migrations = [
        SchemaMigration(
            "deals v1: deals, account and contact read models",
            sql: """
                CREATE TABLE deals (
                    id TEXT PRIMARY KEY NOT NULL,
                    accountId TEXT NOT NULL,
                    contactId TEXT,
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

                -- Read models of what other services own, from their events: which accounts exist, and
                -- which account each contact belongs to (a deal's contact must be one of its account's).
                CREATE TABLE accounts (
                    id TEXT PRIMARY KEY NOT NULL,
                    version INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE contacts (
                    id TEXT PRIMARY KEY NOT NULL,
                    accountId TEXT NOT NULL,
                    version INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
    ]
}
