-- The runbox schema, PostgreSQL dialect. The SQLite migration of the same number
-- holds the same tables, columns and indexes; keep them in step.
-- Times are Unix milliseconds (BIGINT, so every integer decodes as i64 on both
-- backends); JSON documents are JSONB.

-- Submissions and the job queue: one row per submission, from queued to done.
CREATE TABLE submissions (
    id               TEXT PRIMARY KEY,
    key_id           TEXT,
    client_addr      TEXT,
    language         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done')),
    status           TEXT,
    request          JSONB,
    result           JSONB,
    error            TEXT,
    callback_url     TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    worker_id        TEXT,
    lease_expires_ms BIGINT,
    created_ms       BIGINT NOT NULL,
    started_ms       BIGINT,
    finished_ms      BIGINT,
    webhook_taken    BOOLEAN NOT NULL DEFAULT false,
    webhook          JSONB
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
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    hash            TEXT NOT NULL,
    scope           TEXT NOT NULL,
    rate_per_second DOUBLE PRECISION,
    rate_burst      BIGINT,
    max_concurrent  BIGINT,
    webhook_secret  TEXT NOT NULL,
    created_ms      BIGINT NOT NULL,
    revoked_ms      BIGINT,
    CONSTRAINT api_keys_name_unique UNIQUE (name)
);
-- Every authenticated request looks its key up by hash.
CREATE INDEX api_keys_by_hash ON api_keys (hash);

-- The audit log: append-only, read newest first.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at_ms       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    key_id      TEXT,
    client_addr TEXT,
    detail      JSONB NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_ms);

-- Worker heartbeats (one row per live worker process).
CREATE TABLE workers (
    id                TEXT PRIMARY KEY,
    host              TEXT NOT NULL,
    concurrency       BIGINT NOT NULL,
    running           BIGINT NOT NULL,
    started_ms        BIGINT NOT NULL,
    last_heartbeat_ms BIGINT NOT NULL,
    version           TEXT NOT NULL
);
CREATE INDEX workers_heartbeat ON workers (last_heartbeat_ms);

-- Token buckets of the rate limits: tokens left as of updated_ms.
CREATE TABLE rate_buckets (
    bucket     TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- Concurrency slots: who holds a slot of a bucket, until when.
CREATE TABLE concurrency_slots (
    bucket     TEXT NOT NULL,
    holder     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (bucket, holder)
);

-- The database's clock in Unix milliseconds, as of the start of the statement.
-- Leases, token buckets and slots are shared by every node, so they are timed by
-- one clock (the database's), not by the nodes' clocks, which may disagree. STABLE
-- (one value per statement), so comparisons with it can use the indexes.
CREATE FUNCTION runbox_now_ms() RETURNS BIGINT
    LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM statement_timestamp()) * 1000)::BIGINT $$;
