-- The runbox schema, SQLite dialect. The PostgreSQL migration of the same number
-- holds the same tables, columns and indexes; keep them in step.
-- Times are Unix milliseconds; JSON documents are TEXT.

-- Submissions and the job queue: one row per submission, from queued to done.
CREATE TABLE submissions (
    id               TEXT PRIMARY KEY NOT NULL,
    key_id           TEXT,
    client_addr      TEXT,
    language         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    status           TEXT,
    request          TEXT,
    result           TEXT,
    error            TEXT,
    callback_url     TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    lease_expires_ms INTEGER,
    created_ms       INTEGER NOT NULL,
    started_ms       INTEGER,
    finished_ms      INTEGER,
    webhook_taken    INTEGER NOT NULL DEFAULT 0,
    webhook          TEXT
);
-- The queue: claim takes queued jobs oldest first (ties by id, so the index alone
-- gives the order); queue depth counts them.
CREATE INDEX submissions_queue ON submissions (state, created_ms, id);
-- A key's history, newest first (anonymous submissions have a NULL key).
CREATE INDEX submissions_by_key ON submissions (key_id, created_ms, id);
-- Recovery looks for running jobs whose lease expired.
CREATE INDEX submissions_lease ON submissions (lease_expires_ms) WHERE state = 'running';
-- Retention deletes finished jobs older than a cut-off.
CREATE INDEX submissions_finished ON submissions (finished_ms) WHERE state = 'done';

-- API keys: only the SHA-256 of a key is kept; keys are revoked, never deleted, so
-- the history of their submissions keeps its meaning.
CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    hash            TEXT NOT NULL,
    scope           TEXT NOT NULL,
    rate_per_second REAL,
    rate_burst      INTEGER,
    max_concurrent  INTEGER,
    webhook_secret  TEXT NOT NULL,
    created_ms      INTEGER NOT NULL,
    revoked_ms      INTEGER,
    CONSTRAINT api_keys_name_unique UNIQUE (name)
);
-- Every authenticated request looks its key up by hash.
CREATE INDEX api_keys_by_hash ON api_keys (hash);

-- The audit log: append-only, read newest first.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    key_id      TEXT,
    client_addr TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);

-- Worker heartbeats (one row per live worker process).
CREATE TABLE workers (
    id                TEXT PRIMARY KEY NOT NULL,
    host              TEXT NOT NULL,
    concurrency       INTEGER NOT NULL,
    running           INTEGER NOT NULL,
    started_ms        INTEGER NOT NULL,
    last_heartbeat_ms INTEGER NOT NULL,
    version           TEXT NOT NULL
);
CREATE INDEX workers_heartbeat ON workers (last_heartbeat_ms);

-- Token buckets of the rate limits: tokens left as of updated_ms.
CREATE TABLE rate_buckets (
    bucket     TEXT PRIMARY KEY NOT NULL,
    tokens     REAL NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Concurrency slots: who holds a slot of a bucket, until when.
CREATE TABLE concurrency_slots (
    bucket     TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (bucket, holder)
);
