#!/usr/bin/env bash
# tools/deps.sh [run|deb|test] - install the Debian packages lark needs, if missing.
#
#   run   what `make run` needs: compiler, libraries (libcurl for lark-push
#         and for S3 media storage, OpenSSL's libcrypto for JWKS keys, media
#         hashes and SigV4 signatures), lighttpd, Check, and curl (README's
#         examples, tools/mediabench.sh)
#         (`make all` builds the unit test programs too)
#   deb   also what `make deb` needs: dpkg-dev (dpkg-shlibdeps)
#   test  also what `make test` needs: clang (fuzzers), openssl (test keys),
#         PostgreSQL (the push daemons' shared-queue test),
#         Node.js + npm and the npm packages the integration tests use,
#         Chromium for the browser tests (driven by the npm package
#         playwright-core; no browser is ever downloaded) and fonts for
#         their screenshots, the PostgreSQL server (the tests make
#         throwaway clusters with initdb and pg_ctl; psql comes with it)
#         and iproute2 (ip netns: the several-hosts and failover suites),
#         Patroni (with python3-etcd, its etcd client) and etcd (the
#         failover suite run by Patroni), and the proxies
#         of the proxy matrix (tests/browser/test_proxies.mjs): squid,
#         tinyproxy, privoxy, nginx, haproxy - run there with private
#         configurations; the system services their packages may start are
#         stopped here; for the package test (tests/package/run.sh), deb's
#         packages, systemd (systemd-analyze verify; it need not run) and the
#         TLS module lighttpd-mod-openssl (haproxy serves the load balancer
#         example too); apache2 (the CGI suite runs larkd under mod_cgid,
#         test_cgi.mjs, as a throwaway instance with conf/apache-cgi.conf)
#
# Only missing packages are installed; `apt-get update` runs once, and only
# when something is missing. Needs root (or sudo) the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}

run_pkgs=(gcc make pkg-config libfcgi-dev libfcgi-bin lighttpd lighttpd-modules-lua libjansson-dev
          libjwt-dev libsqlite3-dev sqlite3 libpq-dev libcurl4-openssl-dev libssl-dev ca-certificates
          check curl)
test_pkgs=(clang clang-format clang-tidy cppcheck libclang-rt-14-dev openssl valgrind nodejs npm procps
           iproute2 postgresql patroni python3-etcd etcd-server
           chromium fonts-dejavu-core fonts-noto-color-emoji systemd lighttpd-mod-openssl
           squid tinyproxy privoxy nginx haproxy apache2)

deb_pkgs=(dpkg-dev)

pkgs=("${run_pkgs[@]}")
[ "$mode" = deb ] && pkgs+=("${deb_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${deb_pkgs[@]}" "${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Node.js that did not come from Debian (e.g. /usr/local) is fine too.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian starts the packaged lighttpd on port 80; lark runs its own.
  if [[ " ${missing[*]} " == *" lighttpd "* ]] && command -v service >/dev/null; then
    $sudo service lighttpd stop >/dev/null 2>&1 || true
  fi
  # ...and PostgreSQL its "main" cluster on 5432; the tests make their own.
  if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v service >/dev/null; then
    $sudo service postgresql stop >/dev/null 2>&1 || true
  fi
  # ...and the proxies theirs (3128, 8888, 8118, 80); the proxy matrix
  # and the load balancer test start their own on free ports. etcd (2379)
  # and patroni likewise: the Patroni suite runs its own in network
  # namespaces.
  for svc in squid tinyproxy privoxy nginx haproxy etcd patroni; do
    pkg=$svc
    [ "$svc" = etcd ] && pkg=etcd-server
    if [[ " ${missing[*]} " == *" $pkg "* ]] && command -v service >/dev/null; then
      $sudo service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
  # ...and Apache on 80, for good: the CGI suite runs its own instances.
  if [[ " ${missing[*]} " == *" apache2 "* ]]; then
    if command -v service >/dev/null; then $sudo service apache2 stop >/dev/null 2>&1 || true; fi
    if command -v systemctl >/dev/null; then $sudo systemctl disable apache2 >/dev/null 2>&1 || true; fi
  fi
fi

if [ "$mode" = test ]; then
  # npm packages for the integration tests, pinned by package-lock.json
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
