-- 0004_send_function: a send in one round trip.
--
-- Why (docs/BENCHMARKS.md, "PostgreSQL"): a send was eleven statements,
-- each a client-server round trip inside the transaction, and on this kind
-- of machine a round trip costs more than the statement; the rows the
-- transaction locks stayed locked across all of them. lark_send does the
-- same work - the idempotency check, the direct chat made on first use or
-- the membership check, the conversation seq, the message, every member's
-- inbox row, push jobs for offline members, and the NOTIFYs that carry the
-- stored events to the other larkd processes (core/pgnote.h's format) - in
-- one call, which larkd makes in autocommit: one round trip, one
-- transaction. Gapless seqs as before: the conversation's row is locked by
-- its update, the members' users rows in id order before their heads move.
--
-- The message's data for the NOTIFY is rendered by larkd, which knows the
-- message's JSON but for its conversation id and seq: p_json_head is the
-- JSON up to the conversation id's opening quote, p_json_tail everything
-- after the seq's digits; the data is head || conversation id || '","seq":'
-- || seq || tail, byte for byte what larkd itself renders.
--
-- Errors are raised with SQLSTATE LK404 (no such conversation) and LK403
-- (the sender is not a member); a lost race for a direct chat's first
-- message raises unique_violation, and larkd runs the call again.
-- Returned rows: first one of kind 'sent' (conversation id, seq, the push
-- daemons to be woken) or 'duplicate' (the stored message's columns), then
-- one of kind 'inbox' per member (user id, inbox seq).

CREATE FUNCTION lark_send(
    p_sender TEXT, p_to TEXT, p_conv TEXT, p_client_msg_id TEXT, p_id TEXT, p_type TEXT,
    p_body TEXT, p_meta TEXT, p_now BIGINT, p_new_conv TEXT, p_direct_key TEXT,
    p_push_window BIGINT, p_origin TEXT, p_json_head TEXT, p_json_tail TEXT)
RETURNS TABLE (kind TEXT, conv TEXT, seq BIGINT, user_id TEXT, m_id TEXT, m_sender TEXT,
               m_client_msg_id TEXT, m_type TEXT, m_body TEXT, m_meta TEXT, m_created_at BIGINT)
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
    r RECORD;
BEGIN
    -- an idempotent retry: the stored message, nothing new
    FOR r IN SELECT * FROM messages m
             WHERE m.sender = p_sender AND m.client_msg_id = p_client_msg_id LOOP
        RETURN QUERY SELECT 'duplicate'::text, r.conversation_id, r.seq, NULL::text, r.id,
            r.sender, r.client_msg_id, r.type, r.body, r.meta, r.created_at;
        RETURN;
    END LOOP;
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
                          created_at)
        VALUES (v_conv, v_seq, p_id, p_sender, p_client_msg_id, p_type, p_body, p_meta, p_now);
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
