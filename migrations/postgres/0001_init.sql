-- 0001_init: lark's data model on PostgreSQL (DESIGN.md "Data model"),
-- the same tables as migrations/sqlite/0001_init.sql.
--
-- Keys are chosen for a sharded PostgreSQL later: inbox rows by user_id,
-- messages by conversation_id (docs/OPERATIONS.md, "Scaling out").
-- Times are milliseconds since the Unix epoch (BIGINT).

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    inbox_head  BIGINT NOT NULL DEFAULT 0,
    acked_seq   BIGINT NOT NULL DEFAULT 0,
    last_seen   BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE conversations (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL CHECK (type IN ('direct', 'group')),
    title          TEXT,
    direct_key     TEXT UNIQUE,
    creator        TEXT NOT NULL,
    last_seq       BIGINT NOT NULL DEFAULT 0,
    last_activity  BIGINT NOT NULL,
    member_count   INTEGER NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);

CREATE TABLE members (
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    user_id          TEXT NOT NULL,
    role             TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    joined_seq       BIGINT NOT NULL DEFAULT 0,
    read_seq         BIGINT NOT NULL DEFAULT 0,
    delivered_seq    BIGINT NOT NULL DEFAULT 0,
    joined_at        BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id, conversation_id);

CREATE TABLE messages (
    conversation_id  TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    id               TEXT NOT NULL UNIQUE,
    sender           TEXT NOT NULL,
    client_msg_id    TEXT NOT NULL,
    type             TEXT NOT NULL,
    body             TEXT NOT NULL,
    meta             TEXT NOT NULL DEFAULT '{}',
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (sender, client_msg_id)
);

CREATE TABLE inbox (
    user_id          TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    type             TEXT NOT NULL,
    conversation_id  TEXT,
    msg_seq          BIGINT,
    payload          TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq)
);

CREATE TABLE devices (
    platform    TEXT NOT NULL CHECK (platform IN ('fcm', 'apns')),
    token       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    app         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (platform, token)
);
CREATE INDEX devices_by_user ON devices (user_id);

CREATE TABLE push_jobs (
    id               BIGSERIAL PRIMARY KEY,
    user_id          TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_seq          BIGINT NOT NULL,
    inbox_seq        BIGINT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE INDEX push_jobs_by_user ON push_jobs (user_id);

CREATE TABLE push_dead (
    id               BIGINT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_seq          BIGINT NOT NULL,
    inbox_seq        BIGINT NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    died_at          BIGINT NOT NULL
);
