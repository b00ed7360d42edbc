-- 0003_push: push jobs for offline users, reshaped for the push daemon
-- (DESIGN.md "Push daemon"). 0001 reserved push_jobs and push_dead; no
-- release ever wrote them, so they are recreated rather than altered.
--
-- One job is one notification to one device. larkd inserts it in the send
-- transaction (for members who are offline and have devices); while its
-- coalescing window is open (sealed = 0) further messages to the same
-- device fold into it (count + newest message). lark-push claims due jobs
-- (sealed = 1, due_at = lease end), sends them and deletes them, retries
-- them (due_at = next attempt) or moves them to push_dead. Times are ms
-- since the epoch.

DROP TABLE push_jobs;
DROP TABLE push_dead;

CREATE TABLE push_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: outcomes name jobs by id
    user_id          TEXT NOT NULL,
    platform         TEXT NOT NULL,            -- the device: devices (platform, token)
    token            TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,            -- the newest message folded in
    msg_seq          INTEGER NOT NULL,
    inbox_seq        INTEGER NOT NULL,         -- its seq in the user's inbox
    count            INTEGER NOT NULL DEFAULT 1, -- messages folded into this notification
    sealed           INTEGER NOT NULL DEFAULT 0, -- 0: window open; 1: claimed or retrying
    attempts         INTEGER NOT NULL DEFAULT 0, -- claims so far
    due_at           INTEGER NOT NULL,         -- open: window end; sealed: lease end / retry
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
-- At most one open job per device: the coalescing upsert's conflict target.
CREATE UNIQUE INDEX push_jobs_open ON push_jobs (platform, token) WHERE sealed = 0;
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE INDEX push_jobs_device ON push_jobs (platform, token);

CREATE TABLE push_dead (
    id               INTEGER PRIMARY KEY,
    user_id          TEXT NOT NULL,
    platform         TEXT NOT NULL,
    token            TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_seq          INTEGER NOT NULL,
    inbox_seq        INTEGER NOT NULL,
    count            INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    died_at          INTEGER NOT NULL
);

-- lark-push's counters, updated in the same transaction as the outcomes
-- they count (so they survive crashes and add up across daemons); larkd
-- renders them on GET /metrics. name: see core/pushstat.h.
CREATE TABLE push_stats (
    provider  TEXT NOT NULL,                   -- fcm, apns
    name      TEXT NOT NULL,
    value     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, name)
) WITHOUT ROWID;
