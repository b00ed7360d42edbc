-- 0002_presence: who is online. A user is online from a heartbeat or a
-- held connection until last_seen + ttl passes without another; larkd
-- flips `online` on those transitions and tells the user's watchers.
-- (PostgreSQL keeps this table UNLOGGED: losing it in a crash only means
-- users look offline until their next heartbeat.)

CREATE TABLE presence (
    user_id    TEXT PRIMARY KEY,
    last_seen  INTEGER NOT NULL,          -- ms since the epoch
    online     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX presence_online ON presence (online, last_seen);
