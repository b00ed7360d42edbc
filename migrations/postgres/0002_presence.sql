-- 0002_presence: who is online, shared by every larkd process. UNLOGGED:
-- not written to the WAL and emptied by a crash, which costs nothing but
-- users looking offline until their next heartbeat or touch.

CREATE UNLOGGED TABLE presence (
    user_id    TEXT PRIMARY KEY,
    last_seen  BIGINT NOT NULL,
    online     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX presence_online ON presence (online, last_seen);
