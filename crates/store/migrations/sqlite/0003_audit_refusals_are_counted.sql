-- Refused requests are counted per client address, reason and minute, one row per
-- (minute, address, reason), instead of one audit row per refusal: a client that
-- hammers the API with bad keys or over its rate adds one row a minute, not
-- thousands. The PostgreSQL migration of the same number holds the same table.
CREATE TABLE audit_refusals (
    minute_ms   INTEGER NOT NULL,
    client_addr TEXT NOT NULL,
    reason      TEXT NOT NULL,
    count       INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    -- Leads with the minute: retention deletes by it, reads go newest first.
    PRIMARY KEY (minute_ms, client_addr, reason)
);
