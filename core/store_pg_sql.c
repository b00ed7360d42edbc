/*
 * store_pg_sql.c - every SQL statement of the PostgreSQL back end, by
 * enum db_stmt (db.h): the entries of store_sqlite_sql.c in PostgreSQL's
 * dialect, plus the row locks that keep seqs gapless and deadlocks away
 * when several processes write at once (store_ops_msg.c explains the
 * order). Parameters in a SELECT list carry casts: PostgreSQL would take
 * them as text.
 */
#include "core/store_pg_int.h"

#define MSG_COLS                                                                                   \
    "m.id, m.conversation_id, m.seq, m.sender, m.client_msg_id, m.type, m.body, m.meta, "          \
    "m.created_at"

const char *const pg_sql[DB_NSTMT] = {
    [DB_PING] = "SELECT 1",

    /* messages and inboxes */
    [DB_MSG_BY_CLIENT] = "SELECT " MSG_COLS " FROM messages m"
                         " WHERE m.sender = $1 AND m.client_msg_id = $2",
    [DB_MSG_INSERT] = "INSERT INTO messages (conversation_id, seq, id, sender, client_msg_id,"
                      " type, body, meta, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [DB_MSG_LAST] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = $1"
                    " ORDER BY m.seq DESC LIMIT 1",
    [DB_MSG_LAST_SEQ] = "SELECT last_seq FROM conversations WHERE id = $1",
    [DB_CONV_BY_DIRECT] = "SELECT id FROM conversations WHERE direct_key = $1",
    [DB_CONV_INSERT] = "INSERT INTO conversations (id, type, title, direct_key, creator,"
                       " last_seq, last_activity, member_count, created_at)"
                       " VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $6)",
    [DB_CONV_TYPE] = "SELECT type FROM conversations WHERE id = $1",
    [DB_CONV_BUMP] = "UPDATE conversations SET last_seq = last_seq + 1, last_activity = $2"
                     " WHERE id = $1 RETURNING last_seq",
    [DB_USER_ENSURE] = "INSERT INTO users (id, created_at) VALUES ($1, $2)"
                       " ON CONFLICT (id) DO NOTHING",
    [DB_MEMBER_INSERT] = "INSERT INTO members (conversation_id, user_id, role, joined_seq,"
                         " joined_at) VALUES ($1, $2, $3, $4, $5)",
    [DB_MEMBER_ROLE] = "SELECT role FROM members WHERE conversation_id = $1 AND user_id = $2",
    [DB_LOCK_MEMBERS] = "SELECT u.id FROM users u JOIN members m ON m.user_id = u.id"
                        " WHERE m.conversation_id = $1 ORDER BY u.id FOR UPDATE OF u",
    [DB_LOCK_USERS] = "SELECT id FROM users WHERE id IN"
                      " (SELECT json_array_elements_text($1::json)) ORDER BY id FOR UPDATE",
    [DB_INBOX_BUMP_MEMBERS] = "UPDATE users SET inbox_head = inbox_head + 1 WHERE id IN"
                              " (SELECT user_id FROM members WHERE conversation_id = $1)"
                              " RETURNING id, inbox_head",
    [DB_INBOX_INSERT_MEMBERS] =
        "INSERT INTO inbox (user_id, seq, type, conversation_id, msg_seq, payload, created_at)"
        " SELECT u.id, u.inbox_head, $2::text, $1, $3::bigint, $4::text, $5::bigint"
        " FROM members mb JOIN users u ON u.id = mb.user_id WHERE mb.conversation_id = $1",
    [DB_INBOX_BUMP_USER] = "UPDATE users SET inbox_head = inbox_head + 1 WHERE id = $1"
                           " RETURNING inbox_head",
    [DB_INBOX_INSERT] = "INSERT INTO inbox (user_id, seq, type, conversation_id, msg_seq,"
                        " payload, created_at) VALUES ($1, $2, $3, $4, NULL, $5, $6)",
    [DB_ACK] = "UPDATE users SET acked_seq = $2 WHERE id = $1 AND acked_seq < $2",
    [DB_ACK_SENDERS] = "SELECT i.conversation_id, m.sender FROM inbox i JOIN messages m"
                       " ON m.conversation_id = i.conversation_id AND m.seq = i.msg_seq"
                       " WHERE i.user_id = $1 AND i.seq > $2 AND i.seq <= $3"
                       " AND i.type = 'message' AND m.sender <> $1"
                       " GROUP BY i.conversation_id, m.sender",
    [DB_ACK_CONV_MAX] = "SELECT conversation_id, MAX(msg_seq) FROM inbox"
                        " WHERE user_id = $1 AND seq > $2 AND seq <= $3 AND type = 'message'"
                        " GROUP BY conversation_id",
    [DB_DELIVERED] = "UPDATE members SET delivered_seq = GREATEST(delivered_seq, $3)"
                     " WHERE conversation_id = $1 AND user_id = $2",
    [DB_INBOX_STATE] = "SELECT inbox_head, acked_seq FROM users WHERE id = $1",
    [DB_INBOX_READ] = "SELECT i.seq, i.type, i.payload, " MSG_COLS " FROM inbox i"
                      " LEFT JOIN messages m ON i.type = 'message'"
                      " AND m.conversation_id = i.conversation_id AND m.seq = i.msg_seq"
                      " WHERE i.user_id = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3",
    [DB_HIST_DESC] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = $1"
                     " AND m.seq < $2 AND m.seq > $3 ORDER BY m.seq DESC LIMIT $4",
    [DB_HIST_ASC] = "SELECT " MSG_COLS " FROM messages m WHERE m.conversation_id = $1"
                    " AND m.seq < $2 AND m.seq > $3 ORDER BY m.seq ASC LIMIT $4",

    /* conversations */
    [DB_CONV_GET] = "SELECT id, type, title, creator, created_at, last_seq, member_count"
                    " FROM conversations WHERE id = $1",
    [DB_CONV_COUNT_ADD] = "UPDATE conversations SET member_count = member_count + $2"
                          " WHERE id = $1",
    [DB_CONV_LIST] = "SELECT c.id FROM members mb JOIN conversations c"
                     " ON c.id = mb.conversation_id WHERE mb.user_id = $1"
                     " ORDER BY c.last_activity DESC, c.id DESC LIMIT $2",
    [DB_CONV_LIST_AFTER] = "SELECT c.id FROM members mb JOIN conversations c"
                           " ON c.id = mb.conversation_id WHERE mb.user_id = $1"
                           " AND (c.last_activity, c.id) < ($3::bigint, $4::text)"
                           " ORDER BY c.last_activity DESC, c.id DESC LIMIT $2",
    [DB_CONV_ACTIVITY] = "SELECT last_activity FROM conversations WHERE id = $1",
    [DB_MEMBERS] = "SELECT user_id, role, read_seq, delivered_seq FROM members"
                   " WHERE conversation_id = $1 ORDER BY joined_at, user_id",
    [DB_MEMBER_DELETE] = "DELETE FROM members WHERE conversation_id = $1 AND user_id = $2",
    [DB_MEMBER_ADMINS] = "SELECT COUNT(*) FROM members WHERE conversation_id = $1"
                         " AND role = 'admin'",
    [DB_MEMBER_PROMOTE] = "UPDATE members SET role = 'admin' WHERE conversation_id = $1"
                          " AND user_id = (SELECT user_id FROM members"
                          " WHERE conversation_id = $1 ORDER BY joined_at, user_id LIMIT 1)",
    [DB_MEMBER_READ_GET] = "SELECT read_seq FROM members WHERE conversation_id = $1"
                           " AND user_id = $2",
    [DB_MEMBER_READ_SET] = "UPDATE members SET read_seq = $3,"
                           " delivered_seq = GREATEST(delivered_seq, $3)"
                           " WHERE conversation_id = $1 AND user_id = $2",
    [DB_READ_SENDERS] = "SELECT DISTINCT sender FROM messages WHERE conversation_id = $1"
                        " AND seq > $2 AND seq <= $3 AND sender <> $4 ORDER BY sender",
    [DB_UNREAD] = "SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND seq > $2"
                  " AND sender <> $3",

    /* presence; $1 is a JSON array of user ids */
    [DB_PRESENCE_LOCK] = "SELECT user_id FROM presence WHERE user_id IN"
                         " (SELECT json_array_elements_text($1::json))"
                         " ORDER BY user_id FOR UPDATE",
    [DB_PRESENCE_NEWLY_ONLINE] = "SELECT DISTINCT j FROM json_array_elements_text($1::json) j"
                                 " WHERE NOT EXISTS (SELECT 1 FROM presence p"
                                 " WHERE p.user_id = j AND p.online = 1)",
    [DB_PRESENCE_TOUCH] =
        "INSERT INTO presence (user_id, last_seen, online)"
        " SELECT DISTINCT j, $2::bigint, 1 FROM json_array_elements_text($1::json) j"
        " ON CONFLICT (user_id) DO UPDATE"
        " SET last_seen = GREATEST(presence.last_seen, excluded.last_seen),"
        " online = 1",
    [DB_PRESENCE_EXPIRE] = "UPDATE presence SET online = 0 WHERE online = 1 AND last_seen < $1"
                           " RETURNING user_id, last_seen",
    [DB_PRESENCE_GET] = "SELECT online, last_seen FROM presence WHERE user_id = $1",
};
