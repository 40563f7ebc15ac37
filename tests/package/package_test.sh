#!/usr/bin/env bash
# The Debian package, end to end:
#   1. `cpack -G DEB` of this build makes natmesh_VERSION_ARCH.deb;
#   2. dpkg-deb: its control fields (Package, Version, Architecture, Depends, ...), its
#      maintainer scripts, and its contents: the six programs in /usr/bin, the three units,
#      sysusers.d/tmpfiles.d, /etc/natmesh/manager.xml (a conffile), docs and examples, and
#      every man page `cmake --install` puts in share/man;
#   3. Depends covers every shared library the programs need: for each NEEDED entry of
#      each program, the host package that ships it (dpkg -S) is listed;
#   4. it is installed into a clean Debian 12 root: debootstrap --variant=minbase into a
#      cache (NATMESH_PKGTEST_CACHE, default /var/tmp/natmesh-pkgtest; made once, about half
#      a minute), copied for this run, then `apt-get install ./natmesh.deb` in a chroot,
#      which resolves Depends from the mirror and runs postinst (the natmesh user,
#      /etc/natmesh). Then every installed program's --version runs in that root, the
#      manager checks the packaged config, and each man page renders (man -l, no warnings).
#      Without root, debootstrap or the mirror (NATMESH_DEBIAN_MIRROR), or with
#      NATMESH_PKGTEST_ROOT=extract: `dpkg -x` into a temporary root and the programs run
#      from there on the host's libraries, as the issue allows (said in the output).
# usage: package_test.sh BUILD_DIR VERSION
set -u
build=$1 version=$2
mirror=${NATMESH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${NATMESH_PKGTEST_CACHE:-/var/tmp/natmesh-pkgtest}
programs="natmesh-manager natmesh-servant natmesh-relay natmesh-ctl natmesh-portmap natmesh-netsim"
for t in cpack dpkg-deb; do command -v $t >/dev/null || { echo "SKIP: no $t"; exit 77; }; done
tmp=$(mktemp -d /tmp/natmesh-package-test.XXXXXX)
root=$tmp/root
cleanup() {
  mountpoint -q "$root/proc" 2>/dev/null && umount "$root/proc"
  rm -rf "$tmp"
}
trap cleanup EXIT
failed=0
bad() { echo "FAIL: $*"; failed=1; }
ok() { echo "ok: $*"; }

# 1. Build it.
(cd "$build" && cpack -G DEB -B "$tmp/out") >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; echo "FAIL: cpack -G DEB exited non-zero"; exit 1; }
arch=$(dpkg --print-architecture)
deb=$tmp/out/natmesh_${version}_${arch}.deb
[ -s "$deb" ] || { ls "$tmp/out"; echo "FAIL: no $deb"; exit 1; }
ok "cpack -G DEB made $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# 2. Control fields and scripts.
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = natmesh ] || bad "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || bad "Version: $(field Version), expected $version"
[ "$(field Architecture)" = "$arch" ] || bad "Architecture: $(field Architecture)"
for f in Maintainer Description Section Priority; do
  [ -n "$(field $f)" ] || bad "no $f field"
done
depends=$(field Depends)
echo "-- Depends: $depends"
for p in libc6 libuv1 libxml2 libssl3 libsystemd0 libminiupnpc17 libnatpmp1; do
  echo "$depends" | grep -qE "(^|, )$p( |,|$)" || bad "Depends does not list $p"
done
dpkg-deb -e "$deb" "$tmp/control"
for s in postinst prerm postrm; do
  [ -x "$tmp/control/$s" ] || bad "no executable $s in the control archive"
done
grep -qx /etc/natmesh/manager.xml "$tmp/control/conffiles" 2>/dev/null ||
  bad "/etc/natmesh/manager.xml is not a conffile"

# Contents.
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/contents"
want="/etc/natmesh/manager.xml
/usr/lib/systemd/system/natmesh-manager.service
/usr/lib/systemd/system/natmesh-relay.service
/usr/lib/systemd/system/natmesh-servant@.service
/usr/lib/sysusers.d/natmesh.conf
/usr/lib/tmpfiles.d/natmesh.conf
/usr/share/doc/natmesh/README.md
/usr/share/doc/natmesh/operators.md
/usr/share/doc/natmesh/relay.md
/usr/share/doc/natmesh/examples/manager.sample.xml
/usr/share/doc/natmesh/examples/config.sample.xml
/usr/share/doc/natmesh/examples/relay.xml
/usr/share/doc/natmesh/examples/servant.xml
/usr/share/natmesh/netsim/scenarios/example.xml"
for p in $programs; do want="$want
/usr/bin/$p"; done
# Every man page this build installs must be in the package too.
mandir=$tmp/staged
cmake --install "$build" --prefix "$mandir" >/dev/null 2>&1 || bad "cmake --install to $mandir failed"
for m in $(cd "$mandir" && find share/man -type f 2>/dev/null | sort); do want="$want
/usr/$m"; done
nman=$(echo "$want" | grep -c '^/usr/share/man/')
while read -r f; do
  grep -qxF "$f" "$tmp/contents" && echo "ok: contains $f" || bad "the package has no $f"
done <<<"$want"
echo "-- $nman man pages installed by this build"
units=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/lib/systemd/system/natmesh-manager.service)
echo "$units" | grep -qx 'ExecStart=/usr/bin/natmesh-manager --config /etc/natmesh/manager.xml' ||
  bad "the packaged manager unit does not run /usr/bin/natmesh-manager with /etc/natmesh/manager.xml"

# 3. Depends covers every library the programs are linked with.
mkdir -p "$tmp/x"
dpkg -x "$deb" "$tmp/x"
for p in $programs; do
  for lib in $(objdump -p "$tmp/x/usr/bin/$p" | awk '$1 == "NEEDED" { print $2 }'); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    if [ -z "$pkg" ]; then bad "$p needs $lib, from no Debian package found"
    elif ! echo "$depends" | grep -qE "(^|, )$pkg( |,|$)"; then bad "$p needs $lib ($pkg), not in Depends"
    fi
  done
done
[ $failed = 0 ] && ok "Depends lists the package of every library each program needs"

# 4. Install into a clean Debian 12 root.
how=extract
if [ "${NATMESH_PKGTEST_ROOT:-debootstrap}" = debootstrap ] && [ "$(id -u)" = 0 ] &&
   command -v debootstrap >/dev/null && command -v chroot >/dev/null &&
   curl -sf --max-time 10 -o /dev/null "$mirror/dists/bookworm/Release"; then
  how=debootstrap
fi

if [ $how = debootstrap ]; then
  mkdir -p "$cache"
  (
    flock 9
    if [ ! -f "$cache/bookworm/.natmesh-ready" ]; then
      echo "-- making the Debian 12 root in $cache/bookworm (once)"
      rm -rf "$cache/bookworm.tmp"
      debootstrap --variant=minbase bookworm "$cache/bookworm.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 &&
        cp /etc/resolv.conf "$cache/bookworm.tmp/etc/resolv.conf" &&
        chroot "$cache/bookworm.tmp" apt-get -q update >>"$cache/debootstrap.log" 2>&1 &&
        touch "$cache/bookworm.tmp/.natmesh-ready" &&
        rm -rf "$cache/bookworm" && mv "$cache/bookworm.tmp" "$cache/bookworm" ||
        { tail -20 "$cache/debootstrap.log"; exit 1; }
    fi
    cp -a "$cache/bookworm" "$root"
  ) 9>"$cache/.lock" || { echo "FAIL: no Debian root (debootstrap)"; exit 1; }
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp "$deb" "$root/tmp/natmesh.deb"
  mount -t proc proc "$root/proc"
  if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends \
       /tmp/natmesh.deb >"$tmp/apt.log" 2>&1; then
    # The cached lists may be stale (a point release): once more after an update.
    chroot "$root" apt-get -q update >>"$tmp/apt.log" 2>&1
    chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends \
      /tmp/natmesh.deb >>"$tmp/apt.log" 2>&1 || { tail -30 "$tmp/apt.log"; bad "apt-get install ./natmesh.deb in the Debian 12 root failed"; }
  fi
  ok "installed with apt-get (dpkg -i and its Depends) into a debootstrapped Debian 12 root"
  run() { chroot "$root" setpriv --reuid=natmesh --regid=natmesh --clear-groups "$@"; }
  chroot "$root" getent passwd natmesh >/dev/null && ok "postinst made the natmesh user" ||
    bad "postinst made no natmesh user"
  # (stat in the root: its natmesh group's number means another group on this host)
  perm=$(chroot "$root" stat -c '%a %U:%G' /etc/natmesh)
  [ "$perm" = "750 root:natmesh" ] && ok "/etc/natmesh is 0750 root:natmesh" ||
    bad "/etc/natmesh is $perm, expected 750 root:natmesh"
  bindir=/usr/bin
else
  echo "-- no debootstrap root (needs root, debootstrap and $mirror): dpkg -x into $tmp/x," \
       "programs run on this host's libraries"
  run() { "$@"; }
  root=$tmp/x
  bindir=$tmp/x/usr/bin
fi

for p in $programs; do
  out=$(run "$bindir/$p" --version 2>&1 </dev/null)
  rc=$?
  if [ $rc -ne 0 ] || [ "$out" != "$p $version" ]; then
    bad "$p --version in the installed root: exit $rc, \"$(echo "$out" | head -n 3)\""
  else
    ok "$p --version in the installed root: $out"
  fi
done
if [ $how = debootstrap ]; then
  out=$(run /usr/bin/natmesh-manager --config /etc/natmesh/manager.xml --state-dir /tmp/state --check-config 2>&1)
  [ "$out" = "configuration ok" ] && ok "the packaged manager.xml checks" || bad "manager.xml: $out"
fi
# Man pages render, without warnings, on this host's man (minbase has none).
if command -v man >/dev/null; then
  for m in $(grep '^/usr/share/man/' "$tmp/contents"); do
    [ -f "$root$m" ] || continue
    warn=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$root$m" 2>&1 >/dev/null)
    [ -z "$warn" ] && ok "man -l ${m#/usr/share/man/} renders" || bad "man -l $m: $warn"
  done
fi

[ $failed = 0 ] && echo "PASS ($how)"
exit $failed
