-- 0006_shared_limits: the per-user limits several CGI processes must agree
-- on (the same model as migrations/sqlite/0006_shared_limits.sql, which
-- explains it). UNLOGGED: a crash empties them, which only forgives some
-- sends and frees the slots of connections the crash ended anyway.

CREATE UNLOGGED TABLE rate_buckets (
    class       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    tokens      BIGINT NOT NULL,    -- millionths of a token, as of updated_ms
    updated_ms  BIGINT NOT NULL,    -- ms since the epoch
    taken       INTEGER NOT NULL,   -- 1 if the last take got its token
    PRIMARY KEY (class, user_id)
);
CREATE INDEX rate_buckets_age ON rate_buckets (class, updated_ms);

CREATE UNLOGGED TABLE held_slots (
    slot        TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
CREATE INDEX held_slots_user ON held_slots (user_id, expires_ms);
