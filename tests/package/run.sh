#!/usr/bin/env bash
# tests/package/run.sh [DEB] - the Debian package from install to purge, as
# CI runs it (`make test`, tools/test.sh): build it (make deb) unless DEB is
# given, install it with `apt-get install ./lark_*.deb`, check the units
# with `systemd-analyze verify`, run test_deb.mjs (services started the way
# their units say, smoke tests over HTTP and TLS) in a network namespace of
# its own, then `apt-get purge lark` and check that nothing it added is
# left: files, links, the lark user and group, www-data's membership, the
# statoverrides, systemd's enablement state.
#
# Needs root (it installs a package and makes a namespace); without it the
# step is skipped and says so. A machine where lark was already installed
# gets it purged first. Ends with "package: ok" or the first failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ] || ! command -v dpkg-deb >/dev/null || ! command -v ip >/dev/null; then
  echo "package: skipped (needs root, dpkg-deb and ip: it installs the package and makes a namespace)"
  exit 0
fi

fail() { echo "package: FAILED: $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

deb=${1:-}
if [ -z "$deb" ]; then
  deb=$(make -s deb | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at $deb"

ns=lkpkg$$
cleanup() {
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

if dpkg-query -W -f='${Status}' lark 2>/dev/null | grep -q 'install ok\|config-files'; then
  echo "package: purging the lark already installed"
  apt-get purge -y -qq lark >/dev/null
fi

echo "package: apt-get install ./$deb"
apt-get install -y -qq "./$deb" >/dev/null || fail "apt-get install"

echo "package: systemd-analyze verify"
out=$(systemd-analyze verify /lib/systemd/system/larkd.service /lib/systemd/system/lark-push.service 2>&1) ||
  fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"

echo "package: test_deb.mjs in network namespace $ns"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip netns exec "$ns" node tests/package/test_deb.mjs || fail "test_deb.mjs"

echo "package: apt-get purge lark"
apt-get purge -y -qq lark >/dev/null || fail "apt-get purge"
left=()
for p in /usr/bin/larkd /usr/bin/lark-push /usr/bin/lark-token /usr/bin/lark-push-admin \
         /usr/bin/lark-copy /usr/bin/larkbench /usr/bin/fsyncbench /usr/share/lark /usr/share/doc/lark \
         /lib/systemd/system/larkd.service /lib/systemd/system/lark-push.service \
         /etc/lark /var/lib/lark /run/lark \
         /etc/lighttpd/conf-available/50-lark.conf /etc/lighttpd/conf-available/51-lark-tls.conf \
         /etc/lighttpd/conf-enabled/50-lark.conf /etc/lighttpd/conf-enabled/51-lark-tls.conf \
         /etc/systemd/system/multi-user.target.wants/larkd.service \
         /etc/systemd/system/multi-user.target.wants/lark-push.service; do
  [ -e "$p" ] || [ -L "$p" ] && left+=("$p")
done
getent passwd lark >/dev/null && left+=("user lark")
getent group lark >/dev/null && left+=("group lark")
id -nG www-data 2>/dev/null | tr ' ' '\n' | grep -qx lark && left+=("www-data in group lark")
dpkg-statoverride --list | grep -q ' /etc/lark' && left+=("statoverrides on /etc/lark")
grep -rqs 'lark' /var/lib/systemd/deb-systemd-helper-enabled/ && left+=("deb-systemd-helper state")
dpkg-query -W -f='${Status}' lark 2>/dev/null | grep -q 'installed\|config-files' && left+=("dpkg still lists lark")
[ ${#left[@]} -eq 0 ] || fail "left after purge: ${left[*]}"
lighttpd -tt -f /etc/lighttpd/lighttpd.conf || fail "lighttpd's configuration is broken after the purge"
echo "package: ok"
