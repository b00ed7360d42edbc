#!/usr/bin/env bash
# tools/mkdeb.sh - build build/lark_VERSION_ARCH.deb from the release build
# with Debian's own tools: `make install` into a staging tree (PREFIX=/usr,
# units in /lib/systemd/system, lighttpd snippets in
# /etc/lighttpd/conf-available), dpkg-shlibdeps for the libraries'
# packages, dpkg-deb to pack (owner root:root for every file; postinst gives
# the configuration to the lark group). `make deb` runs it after building.
#
# Maintainer scripts, conffiles and the control template are in
# packaging/debian/. Prints the path of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
build=${BUILD:-build}
version=$(cat VERSION)
arch=$(dpkg --print-architecture)
name=lark_${version}_$arch
stage=$top/$build/deb/$name
rm -rf "$stage"
mkdir -p "$stage"

make -s install BUILD="$build" DESTDIR="$stage" PREFIX=/usr SYSCONFDIR=/etc \
  SYSTEMDUNITDIR=/lib/systemd/system >/dev/null
# Debug symbols stay in build/; the package ships stripped binaries.
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage"/usr/bin/*
install -m 0644 packaging/debian/copyright "$stage/usr/share/doc/lark/copyright"
printf 'lark (%s) stable; urgency=medium\n\n  * Release %s (commit %s).\n\n -- lark developers <lark@localhost>  %s\n' \
  "$version" "$version" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  "$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")" |
  gzip -9n >"$stage/usr/share/doc/lark/changelog.gz"

# The libraries' packages, as Debian's tools see them (libc6, libfcgi0ldbl,
# libjansson4, libjwt0, libcurl4, libsqlite3-0, libpq5, libssl3).
shlibs_dir=$(mktemp -d)
trap 'rm -rf "$shlibs_dir"' EXIT
mkdir "$shlibs_dir/debian"
printf 'Source: lark\n\nPackage: lark\nArchitecture: any\n' >"$shlibs_dir/debian/control"
shlibs=$(cd "$shlibs_dir" && dpkg-shlibdeps -O "$stage"/usr/bin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "mkdeb: dpkg-shlibdeps found no libraries" >&2; exit 1; }

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" -e "s|@SHLIBS@|$shlibs|" \
  packaging/debian/control.in >"$stage/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$stage/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$stage/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$build/$name.deb" >/dev/null
echo "$build/$name.deb"
