#!/usr/bin/env bash
# tools/lint.sh - `make lint`: the checks STYLE.md asks for.
#   1. clang-format 14 (.clang-format) - no diff
#   2. clang-tidy 14 (.clang-tidy) - analyzer, bugprone, performance, size
#   3. cppcheck - warnings are errors
#   4. every header compiles on its own
#   5. no banned calls (sprintf strcpy strcat ... strerror)
#   6. core/ never includes fcgi/ or push/ headers (DESIGN.md: core is
#      what every binary shares; it knows nothing of how it is served)
#   A tool that is missing fails the lint: tools/deps.sh installs them.
set -uo pipefail
cd "$(dirname "$0")/.."

src=$(git ls-files '*.c' '*.h' | grep -E '^(core|fcgi|push|tools|tests/unit|tests/fuzz)/' || true)
prod=$(echo "$src" | grep -E '^(core|fcgi|push|tools)/' || true)
cflags="-std=c11 -D_GNU_SOURCE -I. -DLARK_MIGRATIONS_DIR=\"migrations\" $(pkg-config --cflags jansson libjwt sqlite3 libpq 2>/dev/null)"
fail=0
step() { echo "== $1"; }

for tool in clang-format clang-tidy cppcheck; do
  command -v "$tool" >/dev/null || { echo "lint: $tool is missing (tools/deps.sh installs it)"; fail=1; }
done
[ $fail -ne 0 ] && { echo "lint: FAILED"; exit 1; }

step "clang-format"
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $src; then fail=1; fi

step "clang-tidy"
# one file per process, as many at once as there are cores (the longest step)
export LINT_CFLAGS="$cflags"
# shellcheck disable=SC2016
out=$(echo "$prod" | grep '\.c$' | xargs -P "$(nproc)" -n 1 bash -c \
  'clang-tidy --quiet "$1" -- $LINT_CFLAGS 2>/dev/null | grep -E "warning:|error:"' _)
[ -n "$out" ] && { echo "$out"; fail=1; }

step "cppcheck"
# shellcheck disable=SC2086
if ! cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
     --inline-suppr --suppress=missingIncludeSystem -D_GNU_SOURCE -I. $prod; then fail=1; fi

step "headers compile alone"
for h in $(echo "$prod" | grep '\.h$'); do
  # shellcheck disable=SC2086
  echo "#include \"$h\"" | cc $cflags -Wall -Werror -fsyntax-only -x c - || { echo "  $h"; fail=1; }
done

step "banned calls"
banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|strtok|gets|atoi|atol|sscanf|rand|gmtime|localtime|strerror)\s*\('
# shellcheck disable=SC2086
if grep -nE "$banned" $src | grep -v 'NOLINT'; then fail=1; fi

step "core/ includes neither fcgi/ nor push/"
if git ls-files 'core/*.c' 'core/*.h' | xargs grep -nE '^\s*#\s*include\s*"(fcgi|push)/'; then fail=1; fi

if [ $fail -ne 0 ]; then echo "lint: FAILED"; exit 1; fi
echo "lint: clean"
