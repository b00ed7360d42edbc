#!/bin/sh
# conf/lighttpd-cgi-env.sh - print a setenv.add-environment line for each
# LARK_* variable (and the sanitizers' options) in lighttpd's environment,
# for conf/lighttpd-cgi.conf's include_shell. lighttpd's mod_cgi gives a
# CGI program only the CGI variables and what setenv adds, so this is how
# larkd under `make run-cgi` gets the environment `make run` gives it.
# Each value is lighttpd's own env.NAME: no value is printed or quoted here.
exec awk 'BEGIN {
  for (k in ENVIRON)
    if (k ~ /^LARK_[A-Z0-9_]+$/ || k ~ /^(ASAN|UBSAN|LSAN)_OPTIONS$/)
      printf "setenv.add-environment += ( \"%s\" => env.%s )\n", k, k
}'
