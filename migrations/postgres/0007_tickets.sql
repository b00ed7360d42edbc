-- 0007_tickets: single-use tickets (API.md "Authentication", POST
-- /v1/tickets), shared by every larkd host on this database: the key
-- tickets are signed with (a random value, inserted by whichever larkd
-- first mints or checks a ticket; every host then reads that one row) and
-- the nonces of tickets used and not yet expired, so a ticket minted on one
-- host is used once on any. Logged tables: after a crash a used ticket
-- must stay used until it expires. (Numbered 0007: 0005 is the media
-- branch's, 0006 the CGI branch's shared limits.)

CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE ticket_uses (
    nonce       TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX ticket_uses_expiry ON ticket_uses (expires_at);
