# lark - build, run, test, bench, fuzz, install.
#
#   make         every binary and tool (build/), and the unit test programs
#   make run     install missing Debian packages, build, serve on :8080 (PORT)
#   make run-cgi the same with larkd as a plain CGI program (lighttpd mod_cgi)
#   make test    build everything and run every test (release and ASan builds)
#   make bench   load-test a make-run-style instance (docs/BENCHMARKS.md)
#   make bench-peers  lark side by side with Nchan, alternating (docs/BENCHMARKS.md)
#   make bench-cgi    CGI mode beside FastCGI: long-poll delivery, memory per waiting process
#   make bench-media  upload and download throughput of a 10 MiB file (docs/BENCHMARKS.md)
#   make fuzz    run every fuzzer for longer (FUZZ_SECONDS each)
#   make lint    clang-format, clang-tidy, cppcheck, header and banned-call checks
#   make asan    the AddressSanitizer + UBSan build, in build-asan/
#   make install binaries, migrations, www/, systemd units, lighttpd snippets
#                and an example config under PREFIX (default /usr/local;
#                DESTDIR for staging; docs/DEPLOY.md)
#   make deb     the Debian package build/lark_VERSION_ARCH.deb

CC      ?= cc
BUILD   ?= build
# Warnings live apart from CFLAGS so that `make CFLAGS=...` cannot drop them.
WARN    := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 \
           -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition \
           -Wpointer-arith -Wwrite-strings -Wvla -Wundef -Wimplicit-fallthrough \
           -Wcast-qual -fno-common
CFLAGS  ?= -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
# Only the unit tests and fuzzers know the source tree; the binaries find
# their migrations next to themselves (core/config.c), installed or not.
DEFS    := -DLARK_MIGRATIONS_DIR=\"$(CURDIR)/migrations\"
# Paths in debug info and __FILE__ are relative to the tree, not where it sits.
CPPFLAGS_ALL = -I. -ffile-prefix-map=$(CURDIR)=. $(shell pkg-config --cflags libpq 2>/dev/null) $(CPPFLAGS)
PKGS    := jansson libjwt sqlite3 libpq libcrypto
LIBS    := -lfcgi $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
# libcurl for everyone: core's S3 media storage (core/blob_s3.c) signs its
# requests with it, and lark-push sends through it.
LIBS    := -lfcgi $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(CURL_LIBS) -lpthread
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer

CORE_SRC := core/err.c core/log.c core/timeutil.c core/mem.c core/buf.c core/config.c core/version.c \
            core/redact.c core/b64url.c core/ticket.c core/jwk.c core/keyset.c core/lockfile.c \
            core/json.c core/ids.c core/auth.c core/migrate.c core/store.c \
            core/db.c core/store_json.c core/store_ops.c core/store_ops_msg.c core/store_ops_conv.c core/store_ops_presence.c core/store_ops_ticket.c \
            core/store_ops_push.c core/store_ops_health.c core/store_ops_limits.c core/store_sqlite.c \
            core/store_sqlite_sql.c core/store_sqlite_wake.c core/store_pg.c \
            core/store_pg_sql.c core/store_notes.c core/store_later.c core/pgnote.c core/evdata.c core/query.c core/hmap.c \
            core/heap.c core/pushstat.c core/store_ops_media.c core/media.c core/sigv4.c \
            core/spool.c core/blob.c core/blob_local.c core/blob_s3.c
FCGI_SRC := fcgi/main.c fcgi/router.c fcgi/http.c fcgi/hub.c fcgi/fcgirec.c fcgi/events.c \
            fcgi/hold_hub.c fcgi/cgi.c fcgi/cgi_wait.c fcgi/cgi_stream.c fcgi/heldcap.c \
            fcgi/heldcap_store.c fcgi/ratelimit_store.c \
            fcgi/ratelimit.c fcgi/quota.c fcgi/metrics.c fcgi/h_messages.c fcgi/h_events.c fcgi/h_misc.c \
            fcgi/hub_presence.c fcgi/hub_queue.c fcgi/hub_pool.c fcgi/hub_conn.c \
            fcgi/hub_user.c fcgi/hub_timer.c fcgi/hub_catchup.c fcgi/hub_stream.c fcgi/h_conversations.c fcgi/h_presence.c fcgi/actions.c \
            fcgi/wsbridge.c fcgi/h_dev.c fcgi/h_devices.c fcgi/h_tickets.c fcgi/live.c fcgi/reload.c \
            fcgi/health.c fcgi/procstat.c fcgi/h_media.c fcgi/attach.c fcgi/media_sweep.c
PUSH_SRC := push/main.c push/queue.c push/net.c push/fcm.c push/apns.c push/notify.c \
            push/reply.c push/backoff.c
TOOLS    := $(BUILD)/lark-token $(BUILD)/larkbench $(BUILD)/lark-push-admin $(BUILD)/lark-copy \
            $(BUILD)/fsyncbench
# Every program a user runs (README.md names each).
BINS     := $(BUILD)/larkd $(BUILD)/lark-push $(TOOLS)
UNIT_TESTS := test_buf test_json test_auth test_ticket test_ids test_query test_config test_hmap \
              test_heap test_fcgirec test_events test_ratelimit test_quota test_router test_store test_pgnote test_hub \
              test_backoff test_push_reply test_store_push test_log test_keys test_media test_sigv4 \
              test_blob
# larkbench (tools/larkbench/, docs/BENCHMARKS.md): the load generator, a file
# per job. Its parsers (and the bench-peers table) are pure and linked into
# their own unit tests.
BENCH_PARSERS := tools/larkbench/httpresp.c tools/larkbench/sse.c tools/larkbench/ws.c \
                 tools/larkbench/procstat.c tools/larkbench/compare.c
BENCH_SRC := $(BENCH_PARSERS) $(addprefix tools/larkbench/,main.c util.c conn.c sample.c \
             call.c subs.c senders.c target_lark.c target_nchan.c report.c fanout.c \
             throughput.c idle.c group.c)
BENCH_TESTS := test_bench_http test_bench_sse test_bench_ws test_bench_proc test_bench_compare
UNIT_TESTS += $(BENCH_TESTS)

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
FCGI_OBJ := $(FCGI_SRC:%.c=$(BUILD)/%.o)
# larkd's modules minus main, for unit tests
FCGI_LIB_OBJ := $(filter-out $(BUILD)/fcgi/main.o,$(FCGI_OBJ))
PUSH_OBJ := $(PUSH_SRC:%.c=$(BUILD)/%.o)
# lark-push's modules minus main, for unit tests
PUSH_LIB_OBJ := $(filter-out $(BUILD)/push/main.o,$(PUSH_OBJ))

.PHONY: all bins asan run run-cgi test unit unit-asan integration bench bench-peers bench-media bench-cgi \
        fuzz lint clean deps install deb print-unit-tests print-fuzzers
all: $(BINS) $(UNIT_TESTS:%=$(BUILD)/tests/%)
bins: $(BINS)

# The release (VERSION) and commit go into core/version.c alone; the stamp
# changes only when they do, so a new commit recompiles one file.
VERSION    := $(shell cat VERSION)
GIT_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell \
                git rev-parse HEAD >/dev/null 2>&1 && ! git diff --quiet HEAD 2>/dev/null && echo -dirty)
VERSION_DEFS := -DLARK_VERSION=\"$(VERSION)\" -DLARK_COMMIT=\"$(GIT_COMMIT)\"

.PHONY: FORCE
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION_DEFS)' | cmp -s - $@ || echo '$(VERSION_DEFS)' > $@

$(BUILD)/core/version.o: $(BUILD)/version.stamp
$(BUILD)/core/version.o: CPPFLAGS_ALL += $(VERSION_DEFS)
$(BUILD)/tests/unit/%.o: CPPFLAGS_ALL += $(DEFS)

# Every object depends on the compiler flags it was built with: a change of
# flags (a new -ffile-prefix-map, a sanitizer) rebuilds what they touch
# instead of linking objects of two kinds.
FLAGS_LINE := $(CC) $(WARN) $(CFLAGS) $(CPPFLAGS_ALL)
$(BUILD)/flags.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(subst ','\'',$(FLAGS_LINE))' | cmp -s - $@ || echo '$(subst ','\'',$(FLAGS_LINE))' > $@

$(BUILD)/%.o: %.c $(BUILD)/flags.stamp
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(WARN) $(CFLAGS) $(CPPFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/larkd: $(FCGI_OBJ) $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/lark-push: $(PUSH_OBJ) $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS)

$(BUILD)/lark-push-admin: $(BUILD)/tools/lark-push-admin.o $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/lark-copy: $(BUILD)/tools/lark-copy.o $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

# fsyncbench needs nothing of lark but its --version
$(BUILD)/fsyncbench: $(BUILD)/tools/fsyncbench.o $(BUILD)/core/version.o
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

$(BUILD)/lark-token: $(BUILD)/tools/lark-token.o $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/larkbench: $(BENCH_SRC:%.c=$(BUILD)/%.o) $(CORE_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -lm

# larkbench's parser tests: the parsers and core only (no larkd modules).
$(BENCH_TESTS:%=$(BUILD)/tests/%): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o \
		$(BENCH_PARSERS:%.c=$(BUILD)/%.o) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(shell pkg-config --libs check)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(FCGI_LIB_OBJ) $(PUSH_LIB_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) $(CURL_LIBS) $(shell pkg-config --libs check)

# Keep the test objects (make would delete them as intermediates).
.SECONDARY: $(UNIT_TESTS:%=$(BUILD)/tests/unit/%.o)

asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" all

# ---- running ------------------------------------------------------------

deps:
	tools/deps.sh

run: deps
	$(MAKE) bins
	tools/run.sh

# CGI mode (docs/OPERATIONS.md "CGI mode"): same environment as run
run-cgi: deps
	$(MAKE) bins
	tools/run-cgi.sh

# ---- installing -----------------------------------------------------------
#
# The binaries find the migrations at BINDIR/../share/lark/migrations
# (core/config.c), so the layout below is relocatable: nothing installed
# refers to this tree. The example configuration is installed only where
# none exists yet (an edited one is never overwritten).

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/lark
DOCDIR     ?= $(PREFIX)/share/doc/lark
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
LIGHTTPDCONFDIR ?= $(SYSCONFDIR)/lighttpd/conf-available
# The paths the units and the lighttpd snippets name (conf/*/*.in).
SUBST = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g' \
            -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g'
DOCS := README.md docs/DEPLOY.md docs/OPERATIONS.md docs/API.md

install: bins
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/migrations/sqlite \
		$(DESTDIR)$(DATADIR)/migrations/postgres $(DESTDIR)$(DATADIR)/www \
		$(DESTDIR)$(DATADIR)/errors $(DESTDIR)$(SYSCONFDIR)/lark $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(LIGHTTPDCONFDIR)
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0644 migrations/sqlite/*.sql $(DESTDIR)$(DATADIR)/migrations/sqlite/
	install -m 0644 migrations/postgres/*.sql $(DESTDIR)$(DATADIR)/migrations/postgres/
	install -m 0644 www/*.html www/*.css www/*.js $(DESTDIR)$(DATADIR)/www/
	install -m 0644 conf/errors/*.html $(DESTDIR)$(DATADIR)/errors/
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	for u in larkd lark-push; do \
		$(SUBST) conf/systemd/$$u.service.in > $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service && \
		chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.service || exit 1; done
	for c in 50-lark 51-lark-tls; do [ -e $(DESTDIR)$(LIGHTTPDCONFDIR)/$$c.conf ] || { \
		$(SUBST) conf/lighttpd/$$c.conf.in > $(DESTDIR)$(LIGHTTPDCONFDIR)/$$c.conf && \
		chmod 0644 $(DESTDIR)$(LIGHTTPDCONFDIR)/$$c.conf; } || exit 1; done
	[ -e $(DESTDIR)$(SYSCONFDIR)/lark/lark.conf ] || \
		install -m 0640 conf/lark.conf $(DESTDIR)$(SYSCONFDIR)/lark/lark.conf

# The Debian package, build/lark_VERSION_ARCH.deb (tools/mkdeb.sh).
deb:
	tools/deps.sh deb
	$(MAKE) bins
	tools/mkdeb.sh

# ---- tests --------------------------------------------------------------

unit: all
	tools/unit.sh $(BUILD) $(UNIT_TESTS)

unit-asan: asan
	tools/unit.sh build-asan $(UNIT_TESTS)

test:
	tools/deps.sh test
	$(MAKE) all
	$(MAKE) asan
	$(MAKE) fuzz-build
	tools/test.sh

print-unit-tests:
	@echo $(UNIT_TESTS)

print-fuzzers:
	@echo $(FUZZERS)

bench: deps
	$(MAKE) $(BUILD)/larkd $(BUILD)/lark-token $(BUILD)/larkbench
	tools/bench.sh

# lark side by side with Nchan (installs nginx-light + libnginx-mod-nchan
# when missing; docs/BENCHMARKS.md "Side by side with Nchan")
bench-peers: deps
	$(MAKE) $(BUILD)/larkd $(BUILD)/larkbench $(BUILD)/fsyncbench
	tools/bench-peers.sh

# larkd as a CGI program (lighttpd mod_cgi) beside larkd under FastCGI, in
# the same run (docs/BENCHMARKS.md "CGI mode")
bench-cgi: deps
	$(MAKE) $(BUILD)/larkd $(BUILD)/lark-token $(BUILD)/larkbench
	tools/bench-cgi.sh

# media upload/download throughput against lighttpd serving the same file
# (tools/mediabench.sh; docs/BENCHMARKS.md "Media")
bench-media: deps
	$(MAKE) $(BUILD)/larkd $(BUILD)/lark-token
	tools/mediabench.sh

# ---- fuzzing ------------------------------------------------------------

FUZZERS := fuzz_json fuzz_query fuzz_auth fuzz_ticket fuzz_fcgirec fuzz_push_reply fuzz_pgnote fuzz_log
FUZZ_CC := clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CORE := $(filter-out core/store%.c core/migrate.c,$(CORE_SRC))
FUZZ_SECONDS ?= 60
# larkbench's HTTP, SSE and WebSocket parsers (tests/fuzz/fuzz_bench.c)
FUZZERS += fuzz_bench
# what clients send about media: types, names, declarations, media lists
FUZZERS += fuzz_media

.PHONY: fuzz-build
fuzz-build: $(FUZZERS:%=build-fuzz/%)

# push/ parsers are pure functions over core (no libcurl needed)
FUZZ_PUSH := push/reply.c push/notify.c

build-fuzz/%: tests/fuzz/%.c $(FUZZ_CORE) fcgi/fcgirec.c $(FUZZ_PUSH)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) -I. $(DEFS) $(VERSION_DEFS) -o $@ $< $(FUZZ_CORE) fcgi/fcgirec.c \
		$(FUZZ_PUSH) $(LIBS)

# larkbench's parsers are pure: core and the three of them.
BENCH_FUZZ_SRC := $(filter-out %/procstat.c %/compare.c,$(BENCH_PARSERS))
build-fuzz/fuzz_bench: tests/fuzz/fuzz_bench.c $(FUZZ_CORE) $(BENCH_FUZZ_SRC)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(WARN) $(FUZZ_FLAGS) -I. $(DEFS) $(VERSION_DEFS) -o $@ $< $(FUZZ_CORE) $(BENCH_FUZZ_SRC) $(LIBS)

fuzz: fuzz-build
	tools/fuzz.sh $(FUZZ_SECONDS) $(FUZZERS)

# ---- lint ---------------------------------------------------------------

lint:
	tools/lint.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
