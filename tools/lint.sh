#!/usr/bin/env bash
# tools/lint.sh - `make lint`: the checks STYLE.md asks for.
#   1. clang-format 14 (.clang-format) - no diff
#   2. clang-tidy 14 (.clang-tidy) - analyzer, bugprone, performance, size
#   3. cppcheck - warnings are errors
#   4. every header compiles on its own
#   5. no banned calls (sprintf strcpy strcat ... strerror)
set -uo pipefail
cd "$(dirname "$0")/.."

src=$(git ls-files '*.c' '*.h' | grep -E '^(core|fcgi|push|tools|tests/unit|tests/fuzz)/' || true)
prod=$(echo "$src" | grep -E '^(core|fcgi|push|tools)/' || true)
cflags="-std=c11 -D_GNU_SOURCE -I. -DLARK_MIGRATIONS_DIR=\"migrations\" $(pkg-config --cflags jansson libjwt sqlite3 libpq 2>/dev/null)"
fail=0
step() { echo "== $1"; }

step "clang-format"
# shellcheck disable=SC2086
if ! clang-format --dry-run --Werror $src; then fail=1; fi

step "clang-tidy"
for f in $(echo "$prod" | grep '\.c$'); do
  # shellcheck disable=SC2086
  out=$(clang-tidy --quiet "$f" -- $cflags 2>/dev/null | grep -E 'warning:|error:')
  [ -n "$out" ] && { echo "$out"; fail=1; }
done

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

if [ $fail -ne 0 ]; then echo "lint: FAILED"; exit 1; fi
echo "lint: clean"
