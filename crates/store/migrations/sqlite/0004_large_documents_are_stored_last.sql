-- SQLite stores a row's columns in order and a large value in a chain of overflow
-- pages: reading any column stored after a 100 MB result walks that whole chain,
-- so a listing (which reads no request or result) still read every page of every
-- listed result. The table is rebuilt with the request and the result last; the
-- summary columns then sit in the row's first page. PostgreSQL keeps large values
-- out of line (TOAST) and needs no such change, so it has no migration 0004; the
-- tables, columns and indexes stay the same on both.
CREATE TABLE submissions_reordered (
    id               TEXT PRIMARY KEY NOT NULL,
    key_id           TEXT,
    client_addr      TEXT,
    language         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    status           TEXT,
    error            TEXT,
    callback_url     TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    lease_expires_ms INTEGER,
    created_ms       INTEGER NOT NULL,
    started_ms       INTEGER,
    finished_ms      INTEGER,
    webhook_taken    INTEGER NOT NULL DEFAULT 0,
    webhook          TEXT,
    -- Last, and in this order: a claim reads the request, never the result.
    request          TEXT,
    result           TEXT
);
INSERT INTO submissions_reordered (id, key_id, client_addr, language, state, status, error,
    callback_url, attempts, worker_id, lease_expires_ms, created_ms, started_ms, finished_ms,
    webhook_taken, webhook, request, result)
SELECT id, key_id, client_addr, language, state, status, error,
    callback_url, attempts, worker_id, lease_expires_ms, created_ms, started_ms, finished_ms,
    webhook_taken, webhook, request, result
FROM submissions;
DROP TABLE submissions;
ALTER TABLE submissions_reordered RENAME TO submissions;
-- The indexes went with the old table; the same ones again (0001 and 0002).
CREATE INDEX submissions_queue ON submissions (created_ms, id) WHERE state = 'queued';
CREATE INDEX submissions_by_key ON submissions (key_id, created_ms, id);
CREATE INDEX submissions_lease ON submissions (lease_expires_ms) WHERE state = 'running';
CREATE INDEX submissions_finished ON submissions (finished_ms) WHERE state = 'done';
