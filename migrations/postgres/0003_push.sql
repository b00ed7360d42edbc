-- 0003_push: push jobs for offline users, reshaped for the push daemon
-- (the same model as migrations/sqlite/0003_push.sql, which explains it).
-- 0001 reserved push_jobs and push_dead; nothing ever wrote them.
--
-- Several lark-push daemons share this queue: a claim takes due rows with
-- SELECT ... FOR UPDATE SKIP LOCKED and leases them (sealed = 1, due_at =
-- lease end) in one transaction, so no two daemons claim one job.

DROP TABLE push_jobs;
DROP TABLE push_dead;

CREATE TABLE push_jobs (
    id               BIGSERIAL PRIMARY KEY,      -- never reused
    user_id          TEXT NOT NULL,
    platform         TEXT NOT NULL,
    token            TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_seq          BIGINT NOT NULL,
    inbox_seq        BIGINT NOT NULL,
    count            INTEGER NOT NULL DEFAULT 1,
    sealed           INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX push_jobs_open ON push_jobs (platform, token) WHERE sealed = 0;
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE INDEX push_jobs_device ON push_jobs (platform, token);

CREATE TABLE push_dead (
    id               BIGSERIAL PRIMARY KEY,
    user_id          TEXT NOT NULL,
    platform         TEXT NOT NULL,
    token            TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_seq          BIGINT NOT NULL,
    inbox_seq        BIGINT NOT NULL,
    count            INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    died_at          BIGINT NOT NULL
);

CREATE TABLE push_stats (
    provider  TEXT NOT NULL,
    name      TEXT NOT NULL,
    value     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (provider, name)
);
