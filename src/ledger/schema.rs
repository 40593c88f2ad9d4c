//! The ledger's schema, as the migrations that build it: version N is `MIGRATIONS[N-1]`,
//! applied once, in one transaction each (see [`Ledger::migrate`](super::Ledger)).

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: runs, files, documents
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        command TEXT NOT NULL,
        started TEXT NOT NULL,
        finished TEXT,
        files INTEGER NOT NULL DEFAULT 0,
        accepted INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        invalid INTEGER NOT NULL DEFAULT 0,
        already_imported INTEGER NOT NULL DEFAULT 0,
        exit_code INTEGER
    );
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        mapping TEXT NOT NULL,
        outcome TEXT NOT NULL,
        rows INTEGER NOT NULL,
        documents INTEGER NOT NULL,
        accepted INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        invalid INTEGER NOT NULL,
        started TEXT NOT NULL,
        finished TEXT NOT NULL
    );
    CREATE INDEX files_run ON files(run_id);
    CREATE TABLE documents (
        mapping TEXT NOT NULL,
        key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        target_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        file TEXT,
        run_id TEXT,
        updated TEXT NOT NULL,
        PRIMARY KEY (mapping, key)
    );",
    // 2: where a file went, its first error, already-imported counts, HTTP status
    "ALTER TABLE files ADD COLUMN stored_as TEXT;
    ALTER TABLE files ADD COLUMN already_imported INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE files ADD COLUMN first_error TEXT;
    ALTER TABLE documents ADD COLUMN last_status INTEGER;
    CREATE INDEX documents_state ON documents(state, updated);",
    // 3: only documents that are not accepted are indexed by state: accepted ones are
    // nearly all of them, and indexing each on its way through `in_flight` cost a
    // fifth of the ledger's time per submitted document
    "DROP INDEX documents_state;
    CREATE INDEX documents_open ON documents(state, updated) WHERE state <> 'accepted';",
    // 4: every operation on a document, and the operators' decisions, kept for good
    // (what earlier ledgers knew of each document's last one is its first line); what
    // the ERP has of a document beside what was last sent (updates, deletes); the rows
    // and documents of a run. Documents are stored by their key (WITHOUT ROWID): every
    // document of every file is looked up by it, and a nightly snapshot of a million
    // customers spent a third of its time going from the key's index to the row.
    "CREATE TABLE documents_by_key (
        mapping TEXT NOT NULL,
        key TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        target_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        file TEXT,
        run_id TEXT,
        updated TEXT NOT NULL,
        last_status INTEGER,
        PRIMARY KEY (mapping, key)
    ) WITHOUT ROWID;
    INSERT INTO documents_by_key (mapping, key, content_hash, state, target_id, attempts,
        last_error, file, run_id, updated, last_status)
      SELECT mapping, key, content_hash, state, target_id, attempts, last_error, file,
        run_id, updated, last_status FROM documents;
    DROP TABLE documents;
    ALTER TABLE documents_by_key RENAME TO documents;
    CREATE INDEX documents_open ON documents(state, updated) WHERE state <> 'accepted';
    CREATE TABLE history (
        seq INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        run_id TEXT,
        file TEXT,
        mapping TEXT NOT NULL,
        key TEXT NOT NULL,
        operation TEXT NOT NULL,
        content_hash TEXT,
        outcome TEXT NOT NULL,
        status INTEGER,
        erp_id TEXT,
        message TEXT,
        actor TEXT
    );
    CREATE INDEX history_document ON history(mapping, key, seq);
    CREATE INDEX history_file ON history(file, seq);
    ALTER TABLE documents ADD COLUMN prior_state TEXT;
    ALTER TABLE runs ADD COLUMN rows INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN documents INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE documents ADD COLUMN erp_hash TEXT;
    ALTER TABLE documents ADD COLUMN operation TEXT;
    ALTER TABLE documents ADD COLUMN deletions INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE files ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE files ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE files ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN updated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
    UPDATE files SET created = accepted;
    UPDATE runs SET created = accepted;
    UPDATE documents SET erp_hash = content_hash, operation = 'create' WHERE state = 'accepted';
    UPDATE documents SET operation = 'create' WHERE state IN ('rejected', 'in_flight');
    INSERT INTO history (time, run_id, file, mapping, key, operation, content_hash, outcome,
        status, erp_id, message)
      SELECT updated, run_id, file, mapping, key, 'create', content_hash,
        CASE state WHEN 'in_flight' THEN 'unknown' ELSE state END, last_status, target_id, last_error
      FROM documents WHERE state IN ('accepted', 'rejected', 'in_flight')
      ORDER BY updated;",
    // 5: what notifications remember between runs: whether the target was last seen
    // down (`target_down` is sent once when it goes down and once when it is back),
    // the day a `no_file` was sent for a mapping (one a day)
    "CREATE TABLE notices (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated TEXT NOT NULL
    );",
    // 6: automatic retries ([retry]): how many attempts in a row each document failed
    // (rejected or invalid; an acceptance starts it again), and the failed files that
    // erpdrop gave up retrying, by where they are stored
    "ALTER TABLE documents ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    UPDATE documents SET failures = 1 WHERE state IN ('rejected', 'invalid');
    CREATE TABLE gave_up (
        stored_as TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        mapping TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_error TEXT,
        time TEXT NOT NULL
    );",
    // 7: rows that [[skip]] left out (VOID, CANCELLED), per file and per run
    "ALTER TABLE files ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;",
    // 8: how many updates the ERP accepted for each document: an update's idempotency
    // key covers it, so that a change made again after it was undone (A, B, A, B) is a
    // new request, never a replay of the first update to B. An update that `resolve
    // --accepted` settled is in the history as operation 'resolve' (which operation it
    // settled is not kept): those are counted too, or a document whose updates were all
    // resolved would start again at 0, the key of its first update to B, and an ERP
    // that honours the key would answer a later B as a replay and keep the content
    // before it. Counting a resolved create or delete too only moves the count on.
    "ALTER TABLE documents ADD COLUMN updates INTEGER NOT NULL DEFAULT 0;
    UPDATE documents SET updates = (SELECT count(*) FROM history h
      WHERE h.mapping = documents.mapping AND h.key = documents.key
        AND h.operation IN ('update', 'resolve') AND h.outcome = 'accepted');",
];
