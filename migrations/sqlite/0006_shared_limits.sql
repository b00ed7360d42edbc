-- 0006_shared_limits: the per-user limits several processes must agree on
-- when none of them outlives its request - larkd as a plain CGI program
-- (docs/OPERATIONS.md "CGI mode"). The FastCGI daemon keeps the same
-- limits in its memory and never touches these tables.
--
-- rate_buckets: one token bucket per (class, user), e.g. ('send', 'alice').
-- A take refills it for the time since updated_ms and takes one token, in
-- one statement (core/store_ops_limits.c). Token counts are integers in
-- millionths of a token, so that a rate like 1/60 per second needs no
-- floating point in SQL. A bucket that has refilled completely carries
-- nothing and may be deleted at any time.
CREATE TABLE rate_buckets (
    class       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    tokens      INTEGER NOT NULL,   -- millionths of a token, as of updated_ms
    updated_ms  INTEGER NOT NULL,   -- ms since the epoch
    taken       INTEGER NOT NULL,   -- 1 if the last take got its token
    PRIMARY KEY (class, user_id)
) WITHOUT ROWID;
CREATE INDEX rate_buckets_age ON rate_buckets (class, updated_ms);

-- held_slots: one row per held connection (SSE stream, long-poll) of a
-- CGI process, counted against max_held_per_user. Its process deletes it
-- when the request ends; a process killed before that leaves a row that
-- frees itself: at expires_ms in any case, and at once when a process on
-- the same host finds its pid gone.
CREATE TABLE held_slots (
    slot        TEXT PRIMARY KEY,   -- random id of one held request
    user_id     TEXT NOT NULL,
    host        TEXT NOT NULL,      -- gethostname() of its process
    pid         INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL    -- ms since the epoch
) WITHOUT ROWID;
CREATE INDEX held_slots_user ON held_slots (user_id, expires_ms);
