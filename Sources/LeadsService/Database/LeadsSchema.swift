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

    /// The same tables on PostgreSQL (`--db postgres://…`): columns named as the record's fields (quoted, since
    /// they are camel case), ids sorted byte for byte as on SQLite.
    static let postgresMigrations = [
        SchemaMigration(
            "leads v1: leads",
            sql: """
                CREATE TABLE leads (
                    id text COLLATE "C" PRIMARY KEY,
                    name text NOT NULL,
                    email text NOT NULL,
                    company text,
                    source text,
                    status text NOT NULL,
                    score bigint NOT NULL,
                    "convertedAccountId" text,
                    "convertedContactId" text,
                    "convertedDealId" text,
                    "convertedAt" text,
                    version bigint NOT NULL,
                    "createdAt" text NOT NULL,
                    "updatedAt" text NOT NULL);
                CREATE INDEX leads_by_status ON leads (status, id);
                """)
    ]
}
