-- 0005_media: media (API.md "Media (attachments)"): what was uploaded, by
-- whom, and which messages carry it. The bytes themselves live in the
-- media storage (core/blob.h: a directory, or an S3-compatible bucket).
--
-- A media row is 'pending' until its bytes are stored with the declared
-- size and sha256, then 'ready'; only ready media may go into a message.
-- skey is where the bytes are: the sha256 in a directory (content-
-- addressed, so several rows may share one file, and a file is removed
-- only when no row names its key), the media id in a bucket.
-- referenced turns 1 the first time a message names the item: from then
-- on it is kept; an item still unreferenced media_retention seconds after
-- its upload is deleted by the sweep (media_unreferenced).
-- Two-step uploads through larkd (a directory) carry the SHA-256 of their
-- upload URL's random key and its expiry; the key itself is never stored.
-- Times are ms since the epoch.

CREATE TABLE media (
    id                 TEXT PRIMARY KEY,           -- "m_" + 32 hex
    uploader           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
    content_type       TEXT NOT NULL,
    size               INTEGER NOT NULL,           -- bytes
    sha256             TEXT NOT NULL,              -- lowercase hex
    name               TEXT NOT NULL,
    skey               TEXT NOT NULL,              -- the storage key (core/blob.h)
    upload_hash        TEXT,                       -- sha256 hex of the upload URL's key
    upload_expires_at  INTEGER,
    referenced         INTEGER NOT NULL DEFAULT 0, -- 1: a message names it (kept)
    created_at         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX media_by_uploader ON media (uploader);      -- the quota's sum
CREATE INDEX media_by_skey ON media (skey);              -- a file still named?
CREATE INDEX media_unreferenced ON media (created_at) WHERE referenced = 0;

-- Who may read an item: the members of every conversation with a message
-- that carries it (GET /v1/media/{id}).
CREATE TABLE message_media (
    media_id         TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    seq              INTEGER NOT NULL,  -- the message's conversation seq
    PRIMARY KEY (media_id, conversation_id, seq)
) WITHOUT ROWID;

-- A message's media as it shows them (a JSON array of {id, content_type,
-- size, sha256, name}), NULL when it has none.
ALTER TABLE messages ADD COLUMN media TEXT;
