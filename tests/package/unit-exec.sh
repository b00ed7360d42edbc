#!/usr/bin/env bash
# tests/package/unit-exec.sh - run an installed systemd service the way its
# unit file says, on a machine where systemd is not running (CI containers).
#
#   unit-exec.sh start UNIT        exec ExecStart in the foreground
#   unit-exec.sh reload UNIT PID   run ExecReload with $MAINPID = PID
#
# "The way the unit says": User= and Group= (with the user's supplementary
# groups), UMask=, NoNewPrivileges=, LimitNOFILE=, and RuntimeDirectory= /
# StateDirectory= made with their *Mode= and owned by User:Group, as
# systemd would before ExecStart. The sandboxing directives (Protect*,
# SystemCall*, Restrict*, ...) only narrow what the service may do and need
# systemd itself; `systemd-analyze verify` checks them instead.
set -euo pipefail

usage() { echo "usage: unit-exec.sh start UNIT | reload UNIT PID" >&2; exit 2; }
[ $# -ge 2 ] || usage
mode=$1 unit=$2

# The last value of a [Service] key (later lines override earlier ones).
get() {
  sed -n '/^\[Service\]/,/^\[/p' "$unit" | sed -n "s/^$1=//p" | tail -n 1
}

if [ "$mode" = reload ]; then
  [ $# -eq 3 ] || usage
  cmd=$(get ExecReload)
  [ -n "$cmd" ] || { echo "unit-exec: $unit has no ExecReload" >&2; exit 1; }
  cmd=${cmd//\$MAINPID/$3}
  # shellcheck disable=SC2086 # ExecReload is a plain word list
  exec $cmd
fi
[ "$mode" = start ] || usage

user=$(get User) group=$(get Group) cmd=$(get ExecStart)
[ -n "$user" ] && [ -n "$group" ] && [ -n "$cmd" ] || {
  echo "unit-exec: $unit lacks User=, Group= or ExecStart=" >&2; exit 1; }

# RuntimeDirectory= under /run, StateDirectory= under /var/lib.
for kind in Runtime:/run State:/var/lib; do
  name=$(get "${kind%%:*}Directory")
  [ -n "$name" ] || continue
  dirmode=$(get "${kind%%:*}DirectoryMode")
  install -d -o "$user" -g "$group" -m "${dirmode:-0755}" "${kind#*:}/$name"
done

umask_value=$(get UMask)
umask "${umask_value:-0022}"
nofile=$(get LimitNOFILE)
if [ -n "$nofile" ]; then
  # as systemd would; a container may cap the hard limit below it
  ulimit -Hn "$nofile" 2>/dev/null || true
  hard=$(ulimit -Hn)
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$nofile" ]; then
    echo "unit-exec: LimitNOFILE=$nofile above this machine's hard limit; using $hard" >&2
    nofile=$hard
  fi
  ulimit -Sn "$nofile"
fi
privs=()
[ "$(get NoNewPrivileges)" = yes ] && privs+=(--no-new-privs)
# shellcheck disable=SC2086 # ExecStart is a plain word list
exec setpriv --reuid="$user" --regid="$group" --init-groups "${privs[@]}" -- $cmd
