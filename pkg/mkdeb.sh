#!/bin/sh
# mkdeb.sh BUILD VERSION - assemble mxring_VERSION_amd64.deb in BUILD/ with
# dpkg-deb from the binaries in BUILD (mxringd, plus mxbench, mxlog and
# mxringctl when they were built), the man pages in BUILD/man (make man),
# pkg/mxringd.conf as the conffile, etc/mxringd.service and pkg/debian/.
# Run by `make deb`.
set -eu
build=$1
version=$2
top=$(pwd)
root=$build/deb/root
out=$build/mxring_${version}_amd64.deb
when=$(git log -1 --format=%ct 2>/dev/null || date +%s)
date=$(LC_ALL=C date -R -u -d "@$when")
year=$(date -u -d "@$when" +%Y)
# the Maintainer field: DEB_MAINTAINER, else the git identity of this tree,
# else a project placeholder (a fresh machine or CI has no git identity)
gname=$(git config user.name 2>/dev/null || true)
gmail=$(git config user.email 2>/dev/null || true)
if [ -n "$gname" ] && [ -n "$gmail" ]; then
    maint=${DEB_MAINTAINER:-"$gname <$gmail>"}
else
    maint=${DEB_MAINTAINER:-"mxring developers <mxring@example.org>"}
fi

rm -rf "$build/deb"
mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/etc/mxring" \
    "$root/lib/systemd/system" "$root/usr/share/man/man8" "$root/usr/share/man/man5" \
    "$root/usr/share/man/man1" "$root/usr/share/doc/mxring" "$root/usr/share/lintian/overrides"

# binary - install one program stripped (the debug info stays in BUILD).
binary() {
    install -m 0755 "$1" "$2"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$2"
}
binary "$build/mxringd" "$root/usr/sbin/mxringd"
for b in mxbench mxlog mxringctl; do
    for src in "$build/$b" "$build/tools/$b"; do
        if [ -x "$src" ] && [ -f "$src" ]; then
            binary "$src" "$root/usr/bin/$b"
            echo "mkdeb: including $b" >&2
            break
        fi
    done
done

install -m 0644 pkg/mxringd.conf "$root/etc/mxring/mxringd.conf"
install -m 0644 etc/mxringd.service "$root/lib/systemd/system/mxringd.service"
install -m 0644 "$build/man/mxringd.8.gz" "$root/usr/share/man/man8/"
install -m 0644 "$build/man/mxringd.conf.5.gz" "$root/usr/share/man/man5/"
for page in "$build"/man/*.1.gz; do
    [ -f "$page" ] && install -m 0644 "$page" "$root/usr/share/man/man1/"
done
rmdir "$root/usr/share/man/man1" "$root/usr/bin" 2>/dev/null || true
sed "s/@YEAR@/$year/" pkg/debian/copyright > "$root/usr/share/doc/mxring/copyright"
# the RUNPATH override, once per installed program that has that RUNPATH
ov="$root/usr/share/lintian/overrides/mxring"
grep '^#' pkg/debian/lintian-overrides > "$ov"
for f in "$root"/usr/sbin/* "$root"/usr/bin/*; do
    [ -f "$f" ] || continue
    if readelf -d "$f" | grep -q 'R.*PATH.*/usr/lib/x86_64-linux-gnu/android'; then
        echo "custom-library-search-path RUNPATH /usr/lib/x86_64-linux-gnu/android [${f#$root/}]" >> "$ov"
    fi
done
chmod 0644 "$ov"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$date/" -e "s|@MAINTAINER@|$maint|" pkg/debian/changelog |
    gzip -9n > "$root/usr/share/doc/mxring/changelog.gz"
chmod 0644 "$root/usr/share/doc/mxring/changelog.gz"

# Depends: what dpkg-shlibdeps finds for the binaries (it wants a debian/control).
tmp=$(mktemp -d)
mkdir "$tmp/debian"
printf 'Source: mxring\n\nPackage: mxring\nArchitecture: amd64\n' > "$tmp/debian/control"
bins=$(find "$root/usr/sbin" "$root/usr/bin" -type f 2>/dev/null | sed "s|^|-e$top/|" | tr '\n' ' ')
# shellcheck disable=SC2086
deps=$(cd "$tmp" && dpkg-shlibdeps -O $bins 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$tmp"
[ -n "$deps" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$deps/" -e "s|@MAINTAINER@|$maint|" \
    pkg/debian/control.in > "$root/DEBIAN/control"
echo /etc/mxring/mxringd.conf > "$root/DEBIAN/conffiles"
install -m 0755 pkg/debian/postinst pkg/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/usr/share/doc/mxring/copyright" "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "mkdeb: $out"
