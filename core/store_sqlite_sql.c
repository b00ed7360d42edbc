/*
 * store_sqlite_sql.c - every SQL statement of the SQLite back end, by
 * enum db_stmt (db.h). The PostgreSQL catalogue (store_pg_sql.c) has the
 * same entries in its dialect. A NULL entry is a statement SQLite does not
 * need: the row locks, since one writer thread makes every write serial.
 */
#include "core/store_sqlite_int.h"

#define MSG_COLS                                                                                   \
    "m.id, m.conversation_id, m.seq, m.sender, m.client_msg_id, m.type, m.body, m.meta, "          \
    "m.created_at, m.media"

const char *const sq_sql[DB_NSTMT] = {
    [DB_PING] = "SELECT 1",

    /* tickets */
    [DB_SECRET_INSERT] = "INSERT INTO secrets (name, value, created_at) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (name) DO NOTHING",
    [DB_SECRET_GET] = "SELECT value FROM secrets WHERE name = ?1",
    [DB_TICKET_PURGE] = "DELETE FROM ticket_uses WHERE expires_at <= ?1",
    [DB_TICKET_USE] = "INSERT INTO ticket_uses (nonce, expires_at) VALUES (?1, ?2)"
                      " ON CONFLICT (nonce) DO NOTHING RETURNING 1",

    /* messages and inboxes */
    [DB_MSG_BY_CLIENT] = "SELECT " MSG_COLS " FROM messages m"
                         " WHERE m.sender = ?1 AND m.client_msg_id = ?2",
    [DB_MSG_INSERT] = "INSERT INTO messages (conversation_id, seq, id, sender, client_msg_id,"
                      " type, body, meta, created_at, media)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [DB_MSG_LAST] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = ?1"
                    " ORDER BY m.seq DESC LIMIT 1",
    [DB_MSG_LAST_SEQ] = "SELECT last_seq FROM conversations WHERE id = ?1",
    [DB_CONV_BY_DIRECT] = "SELECT id FROM conversations WHERE direct_key = ?1",
    [DB_CONV_INSERT] = "INSERT INTO conversations (id, type, title, direct_key, creator,"
                       " last_seq, last_activity, member_count, created_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?6)",
    [DB_CONV_TYPE] = "SELECT type FROM conversations WHERE id = ?1",
    [DB_CONV_BUMP] = "UPDATE conversations SET last_seq = last_seq + 1, last_activity = ?2"
                     " WHERE id = ?1 RETURNING last_seq",
    [DB_USER_ENSURE] = "INSERT INTO users (id, created_at) VALUES (?1, ?2)"
                       " ON CONFLICT (id) DO NOTHING",
    [DB_MEMBER_INSERT] = "INSERT INTO members (conversation_id, user_id, role, joined_seq,"
                         " joined_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [DB_MEMBER_ROLE] = "SELECT role FROM members WHERE conversation_id = ?1 AND user_id = ?2",
    [DB_LOCK_MEMBERS] = NULL,
    [DB_LOCK_USERS] = NULL,
    [DB_INBOX_BUMP_MEMBERS] = "UPDATE users SET inbox_head = inbox_head + 1 WHERE id IN"
                              " (SELECT user_id FROM members WHERE conversation_id = ?1"
                              " AND user_id IS NOT ?2) RETURNING id, inbox_head",
    [DB_INBOX_INSERT_MEMBERS] =
        "INSERT INTO inbox (user_id, seq, type, conversation_id, msg_seq, payload, created_at)"
        " SELECT u.id, u.inbox_head, ?2, ?1, ?3, ?4, ?5"
        " FROM members mb JOIN users u ON u.id = mb.user_id WHERE mb.conversation_id = ?1"
        " AND mb.user_id IS NOT ?6",
    [DB_INBOX_BUMP_USER] = "UPDATE users SET inbox_head = inbox_head + 1 WHERE id = ?1"
                           " RETURNING inbox_head",
    [DB_INBOX_INSERT] = "INSERT INTO inbox (user_id, seq, type, conversation_id, msg_seq,"
                        " payload, created_at) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6)",
    [DB_ACK] = "UPDATE users SET acked_seq = ?2 WHERE id = ?1 AND acked_seq < ?2",
    [DB_ACK_SENDERS] = "SELECT i.conversation_id, m.sender FROM inbox i JOIN messages m"
                       " ON m.conversation_id = i.conversation_id AND m.seq = i.msg_seq"
                       " WHERE i.user_id = ?1 AND i.seq > ?2 AND i.seq <= ?3"
                       " AND i.type = 'message' AND m.sender <> ?1"
                       " GROUP BY i.conversation_id, m.sender",
    [DB_ACK_CONV_MAX] = "SELECT conversation_id, MAX(msg_seq) FROM inbox"
                        " WHERE user_id = ?1 AND seq > ?2 AND seq <= ?3 AND type = 'message'"
                        " GROUP BY conversation_id",
    [DB_DELIVERED] = "UPDATE members SET delivered_seq = MAX(delivered_seq, ?3)"
                     " WHERE conversation_id = ?1 AND user_id = ?2",
    [DB_INBOX_STATE] = "SELECT inbox_head, acked_seq FROM users WHERE id = ?1",
    [DB_INBOX_READ] = "SELECT i.seq, i.type, i.payload, " MSG_COLS " FROM inbox i"
                      " LEFT JOIN messages m ON i.type = 'message'"
                      " AND m.conversation_id = i.conversation_id AND m.seq = i.msg_seq"
                      " WHERE i.user_id = ?1 AND i.seq > ?2 ORDER BY i.seq LIMIT ?3",
    /* reading a user's few index entries is cheap here: one at a time */
    [DB_INBOX_READ_MANY] = NULL,
    [DB_INBOX_HEADS_MANY] = NULL,
    [DB_HIST_DESC] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = ?1"
                     " AND m.seq < ?2 AND m.seq > ?3 ORDER BY m.seq DESC LIMIT ?4",
    [DB_HIST_ASC] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = ?1"
                    " AND m.seq < ?2 AND m.seq > ?3 ORDER BY m.seq ASC LIMIT ?4",

    /* conversations */
    [DB_CONV_GET] = "SELECT id, type, title, creator, created_at, last_seq, member_count"
                    " FROM conversations WHERE id = ?1",
    [DB_CONV_COUNT_ADD] = "UPDATE conversations SET member_count = member_count + ?2"
                          " WHERE id = ?1",
    [DB_CONV_LIST] = "SELECT c.id FROM members mb JOIN conversations c"
                     " ON c.id = mb.conversation_id WHERE mb.user_id = ?1"
                     " ORDER BY c.last_activity DESC, c.id DESC LIMIT ?2",
    [DB_CONV_LIST_AFTER] = "SELECT c.id FROM members mb JOIN conversations c"
                           " ON c.id = mb.conversation_id WHERE mb.user_id = ?1"
                           " AND (c.last_activity, c.id) < (?3, ?4)"
                           " ORDER BY c.last_activity DESC, c.id DESC LIMIT ?2",
    [DB_CONV_ACTIVITY] = "SELECT last_activity FROM conversations WHERE id = ?1",
    [DB_MEMBERS] = "SELECT user_id, role, read_seq, delivered_seq FROM members"
                   " WHERE conversation_id = ?1 ORDER BY joined_at, user_id",
    [DB_MEMBER_DELETE] = "DELETE FROM members WHERE conversation_id = ?1 AND user_id = ?2",
    [DB_MEMBER_ADMINS] = "SELECT COUNT(*) FROM members WHERE conversation_id = ?1"
                         " AND role = 'admin'",
    [DB_MEMBER_PROMOTE] = "UPDATE members SET role = 'admin' WHERE conversation_id = ?1"
                          " AND user_id = (SELECT user_id FROM members"
                          " WHERE conversation_id = ?1 ORDER BY joined_at, user_id LIMIT 1)",
    [DB_MEMBER_READ_GET] = "SELECT read_seq FROM members WHERE conversation_id = ?1"
                           " AND user_id = ?2",
    [DB_MEMBER_READ_SET] = "UPDATE members SET read_seq = ?3,"
                           " delivered_seq = MAX(delivered_seq, ?3)"
                           " WHERE conversation_id = ?1 AND user_id = ?2",
    [DB_UNREAD] = "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1 AND seq > ?2"
                  " AND sender <> ?3",

    /* presence; ?1 is a JSON array of user ids */
    [DB_PRESENCE_LOCK] = NULL,
    [DB_PRESENCE_NEWLY_ONLINE] = "SELECT DISTINCT j.value FROM json_each(?1) j"
                                 " WHERE NOT EXISTS (SELECT 1 FROM presence p"
                                 " WHERE p.user_id = j.value AND p.online = 1)",
    [DB_PRESENCE_TOUCH] = "INSERT INTO presence (user_id, last_seen, online)"
                          " SELECT DISTINCT value, ?2, 1 FROM json_each(?1) WHERE true"
                          " ON CONFLICT (user_id) DO UPDATE"
                          " SET last_seen = MAX(last_seen, excluded.last_seen), online = 1",
    [DB_PRESENCE_EXPIRE] = "UPDATE presence SET online = 0 WHERE online = 1 AND last_seen < ?1"
                           " RETURNING user_id, last_seen",
    [DB_PRESENCE_GET] = "SELECT online, last_seen FROM presence WHERE user_id = ?1",
    /* per candidate: its conversations (members_by_user), each probed for
     * the viewer (the primary key) */
    [DB_PRESENCE_VISIBLE] = "SELECT DISTINCT j.value FROM json_each(?2) j WHERE j.value = ?1"
                            " OR EXISTS (SELECT 1 FROM members a JOIN members b"
                            " ON b.conversation_id = a.conversation_id AND b.user_id = ?1"
                            " WHERE a.user_id = j.value)",
    /* devices and push jobs (store_ops_push.c) */
    [DB_DEVICE_COUNT] = "SELECT COUNT(*) FROM devices WHERE user_id = ?1",
    [DB_DEVICE_OWNER] = "SELECT user_id FROM devices WHERE platform = ?1 AND token = ?2",
    [DB_DEVICE_UPSERT] = "INSERT INTO devices (platform, token, user_id, app, created_at)"
                         " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (platform, token) DO UPDATE"
                         " SET app = excluded.app, user_id = excluded.user_id,"
                         " created_at = CASE WHEN devices.user_id = excluded.user_id"
                         " THEN devices.created_at ELSE excluded.created_at END"
                         " RETURNING created_at",
    [DB_DEVICE_LIST] = "SELECT platform, token, app, created_at FROM devices WHERE user_id = ?1"
                       " ORDER BY created_at, platform, token",
    [DB_DEVICE_DELETE_OWN] = "DELETE FROM devices WHERE user_id = ?1 AND token = ?2"
                             " RETURNING platform",
    [DB_DEVICE_DELETE] = "DELETE FROM devices WHERE platform = ?1 AND token = ?2",
    [DB_DEVICE_JOBS_DELETE] = "DELETE FROM push_jobs WHERE platform = ?1 AND token = ?2",
    /* One job per device of each offline member but the sender; a device
     * whose window is open folds the message in (push_jobs_open). The
     * inbox head is this message's inbox seq: the fan-out just set it. */
    [DB_PUSH_ENQUEUE] =
        "INSERT INTO push_jobs (user_id, platform, token, conversation_id, msg_seq, inbox_seq,"
        " due_at, created_at)"
        " SELECT mb.user_id, d.platform, d.token, ?1, ?2, u.inbox_head, ?4, ?3"
        " FROM members mb JOIN devices d ON d.user_id = mb.user_id"
        " JOIN users u ON u.id = mb.user_id LEFT JOIN presence p ON p.user_id = mb.user_id"
        " WHERE mb.conversation_id = ?1 AND mb.user_id <> ?5 AND COALESCE(p.online, 0) = 0"
        " ON CONFLICT (platform, token) WHERE sealed = 0 DO UPDATE SET count = count + 1,"
        " conversation_id = excluded.conversation_id, msg_seq = excluded.msg_seq,"
        " inbox_seq = excluded.inbox_seq RETURNING id",
    /* no SQL: the writer touches "<database>-push" after the commit instead */
    [DB_PUSH_SIGNAL] = NULL,
    [DB_PUSH_DUE_IDS] = "SELECT id FROM push_jobs WHERE due_at <= ?1 ORDER BY due_at, id"
                        " LIMIT ?2",
    [DB_PUSH_SEAL] = "UPDATE push_jobs SET sealed = 1, due_at = ?2, attempts = attempts + 1"
                     " WHERE id = ?1",
    [DB_PUSH_JOB_GET] =
        "SELECT j.id, j.user_id, j.platform, j.token, d.app, j.conversation_id, c.title, c.type,"
        " m.sender, m.type, m.body, j.msg_seq, j.inbox_seq, j.count, j.attempts,"
        " COALESCE(p.online, 0), COALESCE(u.acked_seq, 0) >= j.inbox_seq, j.created_at, m.media"
        " FROM push_jobs j JOIN devices d ON d.platform = j.platform AND d.token = j.token"
        " LEFT JOIN conversations c ON c.id = j.conversation_id"
        " LEFT JOIN messages m ON m.conversation_id = j.conversation_id AND m.seq = j.msg_seq"
        " LEFT JOIN presence p ON p.user_id = j.user_id LEFT JOIN users u ON u.id = j.user_id"
        " WHERE j.id = ?1",
    [DB_PUSH_DELETE] = "DELETE FROM push_jobs WHERE id = ?1",
    [DB_PUSH_RETRY] = "UPDATE push_jobs SET due_at = ?2, last_error = ?3 WHERE id = ?1",
    [DB_PUSH_BURY] = "INSERT INTO push_dead (user_id, platform, token, conversation_id, msg_seq,"
                     " inbox_seq, count, attempts, last_error, created_at, died_at)"
                     " SELECT user_id, platform, token, conversation_id, msg_seq, inbox_seq,"
                     " count, attempts, ?2, created_at, ?3 FROM push_jobs WHERE id = ?1",
    [DB_PUSH_STAT_ADD] =
        "INSERT INTO push_stats (provider, name, value) VALUES (?1, ?2, ?3)"
        " ON CONFLICT (provider, name) DO UPDATE SET value = value + excluded.value",
    [DB_PUSH_STATS] = "SELECT provider, name, value FROM push_stats",
    [DB_PUSH_COUNTS] = "SELECT (SELECT COUNT(*) FROM push_jobs), (SELECT COUNT(*) FROM push_dead)",
    [DB_PUSH_NEXT_DUE] = "SELECT MIN(due_at) FROM push_jobs",
    [DB_PUSH_DEAD_LIST] = "SELECT id, user_id, platform, token, conversation_id, msg_seq, count,"
                          " attempts, last_error, created_at, died_at FROM push_dead"
                          " WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    /* sealed: a re-queued job never takes the open slot of its device */
    [DB_PUSH_REQUEUE] =
        "INSERT INTO push_jobs (user_id, platform, token, conversation_id, msg_seq, inbox_seq,"
        " count, sealed, attempts, due_at, created_at)"
        " SELECT x.user_id, x.platform, x.token, x.conversation_id, x.msg_seq, x.inbox_seq,"
        " x.count, 1, 0, ?2, x.created_at FROM push_dead x"
        " JOIN devices d ON d.platform = x.platform AND d.token = x.token"
        " WHERE x.id = ?1 OR ?1 = 0 RETURNING id",
    [DB_PUSH_DEAD_DELETE] = "DELETE FROM push_dead WHERE id = ?1 OR ?1 = 0 RETURNING id",
    /* per-user limits shared by processes: tokens in millionths; ?3 the
     * refill in millionths per ms, ?4 the burst, ?5 now (ms), ?6 the cost;
     * the time since the last take counts up to 10^9 ms (no overflow) */
    [DB_RATE_TAKE] =
        "INSERT INTO rate_buckets (class, user_id, tokens, updated_ms, taken)"
        " VALUES (?1, ?2, ?4 - ?6, ?5, 1) ON CONFLICT (class, user_id) DO UPDATE SET"
        " tokens = MIN(?4, tokens + MIN(MAX(?5 - updated_ms, 0), 1000000000) * ?3)"
        " - (CASE WHEN MIN(?4, tokens + MIN(MAX(?5 - updated_ms, 0), 1000000000) * ?3) >= ?6"
        " THEN ?6 ELSE 0 END),"
        " taken = (MIN(?4, tokens + MIN(MAX(?5 - updated_ms, 0), 1000000000) * ?3) >= ?6),"
        " updated_ms = MAX(updated_ms, ?5) RETURNING tokens, taken",
    [DB_RATE_SWEEP] = "DELETE FROM rate_buckets WHERE class = ?1 AND updated_ms < ?2",
    [DB_HELD_LOCK] = NULL,
    [DB_HELD_EXPIRE] = "DELETE FROM held_slots WHERE user_id = ?1 AND expires_ms <= ?2",
    [DB_HELD_LIST] = "SELECT slot, host, pid FROM held_slots WHERE user_id = ?1",
    [DB_HELD_INSERT] = "INSERT INTO held_slots (slot, user_id, host, pid, expires_ms)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)",
    [DB_HELD_DELETE] = "DELETE FROM held_slots WHERE slot = ?1",

    /* media (store_ops_media.c) */
    [DB_MEDIA_INSERT] = "INSERT INTO media (id, uploader, status, content_type, size, sha256, name,"
                        " skey, upload_hash, upload_expires_at, created_at)"
                        " VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [DB_MEDIA_USAGE] = "SELECT COALESCE(SUM(size), 0) FROM media WHERE uploader = ?1",
    [DB_MEDIA_READY] = "UPDATE media SET status = 'ready' WHERE id = ?1 RETURNING id",
    /* the last column: may ?2 read it - its uploader, or a member of a
     * conversation with a message that carries it */
    [DB_MEDIA_GET] = "SELECT m.id, m.uploader, m.status, m.content_type, m.size, m.sha256, m.name,"
                     " m.skey, COALESCE(m.upload_hash, ''), COALESCE(m.upload_expires_at, 0),"
                     " m.created_at, m.uploader = ?2 OR EXISTS (SELECT 1 FROM message_media mm"
                     " JOIN members mb ON mb.conversation_id = mm.conversation_id"
                     " AND mb.user_id = ?2 WHERE mm.media_id = m.id) FROM media m WHERE m.id = ?1",
    [DB_MEDIA_TAKE] = "UPDATE media SET referenced = 1 WHERE id = ?1 AND uploader = ?2"
                      " AND status = 'ready' RETURNING id",
    [DB_MEDIA_OWNED] = "SELECT status FROM media WHERE id = ?1 AND uploader = ?2",
    [DB_MEDIA_LINK] = "INSERT INTO message_media (media_id, conversation_id, seq)"
                      " VALUES (?1, ?2, ?3)",
    [DB_MEDIA_EXPIRE] = "DELETE FROM media WHERE id IN (SELECT id FROM media WHERE referenced = 0"
                        " AND created_at < ?1 ORDER BY created_at LIMIT ?2) RETURNING id, skey",
    [DB_MEDIA_KEY_USED] = "SELECT 1 FROM media WHERE skey = ?1 LIMIT 1",
};
