import ServiceKit

/// The contacts service's tables, one migration per change.
enum ContactsSchema {
    static let migrations = [
        SchemaMigration(
            "contacts v1: contacts, account and deal read models",
            sql: """
                CREATE TABLE contacts (
                    id TEXT PRIMARY KEY NOT NULL,
                    accountId TEXT NOT NULL,
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

                -- Read models of what other services own, from their events: which accounts exist (a
                -- contact's accountId must name one), and which deals point at which contact (a contact
                -- with deals cannot be deleted or moved to another account).
                CREATE TABLE accounts (
                    id TEXT PRIMARY KEY NOT NULL,
                    version INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE deals (
                    id TEXT PRIMARY KEY NOT NULL,
                    accountId TEXT NOT NULL,
                    contactId TEXT,
                    version INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX deals_by_contact ON deals(contactId);
                """)
    ]
}
