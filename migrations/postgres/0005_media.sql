-- 0005_media: media (API.md "Media (attachments)"), as
-- migrations/sqlite/0005_media.sql explains: the media table, the
-- message_media table that says who may read an item, and the messages'
-- media column; and lark_send (0004) again, now taking a message's media.
--
-- lark_send's media: p_media is the JSON array of the message's media ids,
-- p_media_json the array of their metadata as the message shows it, which
-- larkd read (and rendered into the NOTIFY's data) before the call. The
-- function checks each id in the transaction - the sender's, and ready -
-- and marks it referenced, in id order (two sends naming the same media
-- lock their rows in one order), so the retention sweep (DELETE ... SKIP
-- LOCKED of unreferenced rows) can never delete an item a committed
-- message names; a ready item's metadata never changes, so what larkd read
-- is what the message stores. Errors: SQLSTATE LK400 (an unknown id, or
-- someone else's) and LK409 (not uploaded yet), besides 0004's.

CREATE TABLE media (
    id                 TEXT PRIMARY KEY,
    uploader           TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'ready')),
    content_type       TEXT NOT NULL,
    size               BIGINT NOT NULL,
    sha256             TEXT NOT NULL,
    name               TEXT NOT NULL,
    skey               TEXT NOT NULL,
    upload_hash        TEXT,
    upload_expires_at  BIGINT,
    referenced         INTEGER NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL
);
CREATE INDEX media_by_uploader ON media (uploader);
CREATE INDEX media_by_skey ON media (skey);
CREATE INDEX media_unreferenced ON media (created_at) WHERE referenced = 0;

CREATE TABLE message_media (
    media_id         TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    PRIMARY KEY (media_id, conversation_id, seq)
);

ALTER TABLE messages ADD COLUMN media TEXT;

DROP FUNCTION lark_send(TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, TEXT,
                        BIGINT, TEXT, TEXT, TEXT);

CREATE FUNCTION lark_send(
    p_sender TEXT, p_to TEXT, p_conv TEXT, p_client_msg_id TEXT, p_id TEXT, p_type TEXT,
    p_body TEXT, p_meta TEXT, p_now BIGINT, p_new_conv TEXT, p_direct_key TEXT,
    p_push_window BIGINT, p_origin TEXT, p_json_head TEXT, p_json_tail TEXT, p_media TEXT,
    p_media_json TEXT)
RETURNS TABLE (kind TEXT, conv TEXT, seq BIGINT, user_id TEXT, m_id TEXT, m_sender TEXT,
               m_client_msg_id TEXT, m_type TEXT, m_body TEXT, m_meta TEXT, m_created_at BIGINT,
               m_media TEXT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_conv TEXT := p_conv;
    v_seq BIGINT;
    v_data TEXT;
    v_dline TEXT;
    v_head TEXT := '2 ' || p_origin;
    v_payload TEXT := '';
    v_line TEXT;
    v_jobs BIGINT;
    v_mid TEXT;
    r RECORD;
BEGIN
    -- an idempotent retry: the stored message, nothing new
    FOR r IN SELECT * FROM messages m
             WHERE m.sender = p_sender AND m.client_msg_id = p_client_msg_id LOOP
        RETURN QUERY SELECT 'duplicate'::text, r.conversation_id, r.seq, NULL::text, r.id,
            r.sender, r.client_msg_id, r.type, r.body, r.meta, r.created_at, r.media;
        RETURN;
    END LOOP;
    -- the media: the sender's, ready, and from now on kept
    IF p_media IS NOT NULL THEN
        FOR v_mid IN SELECT x FROM json_array_elements_text(p_media::json) x ORDER BY x LOOP
            UPDATE media m SET referenced = 1
                WHERE m.id = v_mid AND m.uploader = p_sender AND m.status = 'ready';
            IF NOT FOUND THEN
                IF EXISTS (SELECT 1 FROM media m WHERE m.id = v_mid AND m.uploader = p_sender) THEN
                    RAISE EXCEPTION 'media % is not uploaded yet', v_mid USING ERRCODE = 'LK409';
                END IF;
                RAISE EXCEPTION 'no media % of yours', v_mid USING ERRCODE = 'LK400';
            END IF;
        END LOOP;
    END IF;
    IF p_to IS NOT NULL THEN
        SELECT c.id INTO v_conv FROM conversations c WHERE c.direct_key = p_direct_key;
        IF v_conv IS NULL THEN
            v_conv := p_new_conv;
            INSERT INTO conversations (id, type, title, direct_key, creator, last_seq,
                                       last_activity, member_count, created_at)
                VALUES (v_conv, 'direct', NULL, p_direct_key, p_sender, 0, p_now,
                        CASE WHEN p_sender = p_to THEN 1 ELSE 2 END, p_now);
            INSERT INTO users (id, created_at) VALUES (p_sender, p_now), (p_to, p_now)
                ON CONFLICT (id) DO NOTHING;
            INSERT INTO members (conversation_id, user_id, role, joined_seq, joined_at)
                SELECT v_conv, u, 'member', 0, p_now
                FROM (SELECT DISTINCT unnest(ARRAY[p_sender, p_to]) AS u) x;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM members mb
                      WHERE mb.conversation_id = v_conv AND mb.user_id = p_sender) THEN
        IF EXISTS (SELECT 1 FROM conversations c WHERE c.id = v_conv) THEN
            RAISE EXCEPTION 'you are not a member of %', v_conv USING ERRCODE = 'LK403';
        END IF;
        RAISE EXCEPTION 'no conversation %', v_conv USING ERRCODE = 'LK404';
    END IF;
    UPDATE conversations c SET last_seq = c.last_seq + 1, last_activity = p_now
        WHERE c.id = v_conv RETURNING c.last_seq INTO v_seq;
    IF v_seq IS NULL THEN
        RAISE EXCEPTION 'no conversation %', v_conv USING ERRCODE = 'LK404';
    END IF;
    INSERT INTO messages (conversation_id, seq, id, sender, client_msg_id, type, body, meta,
                          created_at, media)
        VALUES (v_conv, v_seq, p_id, p_sender, p_client_msg_id, p_type, p_body, p_meta, p_now,
                p_media_json);
    IF p_media IS NOT NULL THEN
        INSERT INTO message_media (media_id, conversation_id, seq)
            SELECT x, v_conv, v_seq FROM json_array_elements_text(p_media::json) x;
    END IF;
    kind := 'sent';
    conv := v_conv;
    seq := v_seq;
    RETURN NEXT;
    kind := 'inbox';
    conv := NULL;
    -- the stored events for the other processes' hubs, with their data
    -- when it fits (pgnote.h: D once per payload, E per member; W when the
    -- data is too large for any payload), cut below 7900 bytes
    v_data := p_json_head || v_conv || '","seq":' || v_seq || p_json_tail;
    v_dline := E'\nD message ' || v_data;
    IF octet_length(v_head) + octet_length(v_dline) + 100 > 7900 THEN
        v_dline := NULL;
    END IF;
    -- the members' heads, locked in id order (two sends that share members
    -- take them in one order: no deadlock), moved, and used for their
    -- inbox rows, in one statement
    FOR r IN
        WITH locked AS (
            SELECT u.id FROM users u JOIN members mb ON mb.user_id = u.id
            WHERE mb.conversation_id = v_conv ORDER BY u.id FOR UPDATE OF u),
        bumped AS (
            UPDATE users u SET inbox_head = u.inbox_head + 1 FROM locked l
            WHERE u.id = l.id RETURNING u.id, u.inbox_head),
        added AS (
            INSERT INTO inbox (user_id, seq, type, conversation_id, msg_seq, payload, created_at)
            SELECT b.id, b.inbox_head, 'message', v_conv, v_seq, NULL, p_now FROM bumped b
            RETURNING inbox.user_id, inbox.seq)
        SELECT a.user_id AS id, a.seq AS inbox_head FROM added a ORDER BY a.user_id
    LOOP
        seq := r.inbox_head;
        user_id := r.id;
        RETURN NEXT;
        v_line := CASE WHEN v_dline IS NULL THEN E'\nW ' ELSE E'\nE ' END
                  || r.id || ' ' || r.inbox_head;
        IF v_payload <> '' AND octet_length(v_payload) + octet_length(v_line) > 7900 THEN
            PERFORM pg_notify('lark', v_payload);
            v_payload := '';
        END IF;
        IF v_payload = '' THEN
            v_payload := v_head || COALESCE(v_dline, '');
        END IF;
        v_payload := v_payload || v_line;
    END LOOP;
    IF v_payload <> '' THEN
        PERFORM pg_notify('lark', v_payload);
    END IF;
    -- push jobs for offline members with devices, coalesced per device
    WITH j AS (
        INSERT INTO push_jobs (user_id, platform, token, conversation_id, msg_seq, inbox_seq,
                               due_at, created_at)
        SELECT mb.user_id, d.platform, d.token, v_conv, v_seq, u.inbox_head,
               p_now + p_push_window, p_now
        FROM members mb JOIN devices d ON d.user_id = mb.user_id
        JOIN users u ON u.id = mb.user_id LEFT JOIN presence p ON p.user_id = mb.user_id
        WHERE mb.conversation_id = v_conv AND mb.user_id <> p_sender
          AND COALESCE(p.online, 0) = 0
        ON CONFLICT (platform, token) WHERE sealed = 0 DO UPDATE
            SET count = push_jobs.count + 1, conversation_id = excluded.conversation_id,
                msg_seq = excluded.msg_seq, inbox_seq = excluded.inbox_seq
        RETURNING 1)
    SELECT count(*) INTO v_jobs FROM j;
    IF v_jobs > 0 THEN
        PERFORM pg_notify('lark_push', '');
    END IF;
END;
$$;
