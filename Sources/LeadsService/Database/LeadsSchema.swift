import ServiceKit

/// The leads service's tables, one migration per change.
enum LeadsSchema {
    static let migrations = [
        SchemaMigration(
            "leads v1: leads",
            sql: """
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
                """)
    ]
}
