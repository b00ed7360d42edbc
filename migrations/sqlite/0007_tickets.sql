-- 0007_tickets: single-use tickets (API.md "Authentication", POST
-- /v1/tickets). A ticket is self-contained and signed (core/ticket.h); the
-- database holds only what every process must share:
--   secrets      the key tickets are signed with: a random value, inserted
--                by whichever larkd first mints or checks a ticket (the
--                first insert wins; every process then reads that row)
--   ticket_uses  the nonce of every ticket used and not yet expired: a
--                second use finds it. Purged once expired, so it holds at
--                most ticket_ttl seconds of uses.
-- (Numbered 0007: 0005 is the media branch's, 0006 the CGI branch's
-- shared limits.)

CREATE TABLE secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  INTEGER NOT NULL             -- ms since the epoch
) WITHOUT ROWID;

CREATE TABLE ticket_uses (
    nonce       TEXT PRIMARY KEY,            -- 32 hex digits
    expires_at  INTEGER NOT NULL             -- ms: the row may go after this
) WITHOUT ROWID;
CREATE INDEX ticket_uses_expiry ON ticket_uses (expires_at);
