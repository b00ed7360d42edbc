#!/bin/sh
# conf/apache-cgi-env.sh - print a PassEnv line for each LARK_* variable
# (and the sanitizers' options) in this environment: the file that
# conf/apache-cgi.conf includes as ${LARK_APACHE_ENV}. mod_cgid gives a
# CGI program only the CGI variables and what PassEnv/SetEnv add, so this
# is how larkd under Apache gets the environment `make run` gives it.
# Only names are printed; Apache takes the values from its own environment.
exec awk 'BEGIN {
  for (k in ENVIRON)
    if (k ~ /^LARK_[A-Z0-9_]+$/ || k ~ /^(ASAN|UBSAN|LSAN)_OPTIONS$/)
      printf "PassEnv %s\n", k
}'
