-- 0001_init: lark's data model (DESIGN.md "Data model").
--
-- Fan-out on write: a message is stored once per conversation with a
-- gapless conversation seq; each member gets one inbox row pointing at it
-- with a gapless per-user seq. Times are milliseconds since the Unix epoch.
-- Tables that later features fill (devices, push jobs, presence) are here
-- from the start so that features add code, not rewrites.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,              -- JWT sub
    inbox_head  INTEGER NOT NULL DEFAULT 0,    -- seq of the newest inbox event
    acked_seq   INTEGER NOT NULL DEFAULT 0,    -- client processed up to here
    last_seen   INTEGER,                       -- presence: last heartbeat or connection
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE conversations (
    id             TEXT PRIMARY KEY,           -- "c_" + 32 hex
    type           TEXT NOT NULL CHECK (type IN ('direct', 'group')),
    title          TEXT,
    direct_key     TEXT UNIQUE,                -- direct chats: "a\nb", ids in byte order
    creator        TEXT NOT NULL,
    last_seq       INTEGER NOT NULL DEFAULT 0, -- seq of the newest message
    last_activity  INTEGER NOT NULL,           -- for "most recent first"
    member_count   INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE members (
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    user_id          TEXT NOT NULL,
    role             TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    joined_seq       INTEGER NOT NULL DEFAULT 0,  -- conversation seq when joined
    read_seq         INTEGER NOT NULL DEFAULT 0,  -- read receipts: read up to
    delivered_seq    INTEGER NOT NULL DEFAULT 0,  -- delivery receipts: acked up to
    joined_at        INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_id, conversation_id);

CREATE TABLE messages (
    conversation_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL,           -- gapless within the conversation
    id               TEXT NOT NULL UNIQUE,       -- UUIDv7
    sender           TEXT NOT NULL,
    client_msg_id    TEXT NOT NULL,
    type             TEXT NOT NULL,
    body             TEXT NOT NULL,
    meta             TEXT NOT NULL DEFAULT '{}', -- JSON object
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (sender, client_msg_id)               -- idempotent retries
) WITHOUT ROWID;

CREATE TABLE inbox (
    user_id          TEXT NOT NULL,
    seq              INTEGER NOT NULL,    -- gapless per user
    type             TEXT NOT NULL,       -- message, receipt, member, conversation
    conversation_id  TEXT,
    msg_seq          INTEGER,             -- type message: the message's seq
    payload          TEXT,                -- other types: the event's data (JSON)
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
) WITHOUT ROWID;

CREATE TABLE devices (
    platform    TEXT NOT NULL CHECK (platform IN ('fcm', 'apns')),
    token       TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    app         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (platform, token)
) WITHOUT ROWID;
CREATE INDEX devices_by_user ON devices (user_id);

CREATE TABLE push_jobs (
    id               INTEGER PRIMARY KEY,
    user_id          TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_seq          INTEGER NOT NULL,
    inbox_seq        INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           INTEGER NOT NULL,    -- not before (backoff, coalescing window)
    last_error       TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE INDEX push_jobs_by_user ON push_jobs (user_id);

CREATE TABLE push_dead (
    id               INTEGER PRIMARY KEY,
    user_id          TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    msg_seq          INTEGER NOT NULL,
    inbox_seq        INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    died_at          INTEGER NOT NULL
);
