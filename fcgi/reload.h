/*
 * reload.h - SIGHUP: read the configuration again and apply what can change
 * while larkd runs (docs/OPERATIONS.md "Signals").
 *
 * Applied at once, without dropping a connection:
 *   keys      jwt_alg, jwt_secret, jwt_key_file, jwt_jwks_file,
 *             jwt_secrets_file, jwt_aud, jwt_iss, jwt_leeway (auth_reload;
 *             the key files are read again even when these keys are
 *             unchanged: rotating a key means editing a key file)
 *   logs      log_level, log_format
 *   HTTP      cors_origins, metrics_allow (fcgi/live.h)
 *   limits    the write quotas (fcgi/quota.h): send_rate, send_burst,
 *             typing_rate, typing_burst, media_rate, media_burst and the
 *             *_per_min and *_burst keys
 * Any other key that differs from the running value is logged as needing a
 * restart and keeps its running value. Held connections are untouched: a
 * stream keeps running after the key that admitted it is removed (its
 * token was valid when it was checked, like an HTTP request in flight).
 *
 * All or nothing: a file that does not load (a syntax error, a bad key
 * file) is logged and nothing changes. Every reload is logged and counted
 * (lark_reloads_total{result}).
 *
 * Shape: the hub reads SIGHUP from its signalfd and calls reload_request,
 * which only wakes a thread of this module: reading files must not block
 * the event loop (STYLE.md). Requests that arrive during a reload are
 * merged into one more reload after it.
 */
#ifndef LARK_RELOAD_H
#define LARK_RELOAD_H

struct app;
struct config;
struct lark_err;
struct reload;

/*
 * Start the reload thread for app, which was configured from config_path
 * (NULL: LARK_CONFIG or none, as at start). Returns 0 or LARK_EINTERNAL.
 * Caller frees with reload_free before app goes away.
 */
int reload_new(struct app *app, const char *config_path, struct reload **out, struct lark_err *err);

/* Ask for a reload. Never blocks; any thread. Accepts NULL (logged). */
void reload_request(struct reload *r);

/* Stop the thread (a reload in progress finishes first) and free. NULL ok. */
void reload_free(struct reload *r);

#endif
