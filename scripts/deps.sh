#!/bin/sh
# deps.sh - install the Debian 12 packages mxring needs to build, run and
# test. Idempotent and quick when everything is present: apt runs only when
# a package is missing. Usage: scripts/deps.sh [build|test|bench]
set -eu
want=${1:-build}

pkgs="gcc g++ make pkg-config liburing-dev libjemalloc-dev zlib1g-dev libcrypt-dev libpsl-dev publicsuffix"
pkgs="$pkgs android-libboringssl-dev"
case "$want" in
test|bench)
    pkgs="$pkgs libcmocka-dev python3 swaks openssl clang libclang-rt-14-dev clang-format"
    pkgs="$pkgs libbenchmark-dev libspdlog-dev dnsmasq-base clamav clamav-daemon xfsprogs e2fsprogs"
    # swaks --tls needs Net::SSLeay, only a Recommends of swaks (not installed
    # with --no-install-recommends); sslscan checks the TLS cipher policy
    pkgs="$pkgs libnet-ssleay-perl sslscan"
    pkgs="$pkgs chromium"    # renders mxlog's HTML report (tests/e2e/test_mxlog.py)
    pkgs="$pkgs postfix"     # smtp-sink: the mxbench tests' peer (chromium: their plot check too)
    # the metrics test scrapes with a real Prometheus (and promtool); the
    # package test checks the .deb with lintian and renders the man pages
    pkgs="$pkgs prometheus lintian man-db dpkg-dev adduser"
    pkgs="$pkgs dovecot-core dovecot-lmtpd"   # Dovecot LMTP: a delivery peer (tests/e2e/test_delivery.py)
    pkgs="$pkgs haproxy"  # test_haproxy.py and compare-proxy.sh run a private instance
    # test_milter_real.py and compare-milter.sh run a private Rspamd and
    # OpenDKIM (and dnsmasq) in a loopback-only network namespace (unshare,
    # nsenter: util-linux; ip: iproute2); the test signs with python3-cryptography
    pkgs="$pkgs rspamd opendkim python3-cryptography iproute2 util-linux"
    ;;
esac
case "$want" in
bench) pkgs="$pkgs postfix iproute2"
    pkgs="$pkgs pflogsumm"   # mxlog stats side by side (scripts/bench-mxlog.sh)
    ;;
esac

missing=""
for p in $pkgs; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix is only a benchmark peer (scripts/compare.sh runs a private
# instance): do not let the package configure a system mail server.
case "$missing" in
*postfix*) echo "postfix postfix/main_mailer_type select No configuration" |
               $SUDO debconf-set-selections ;;
esac
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The tests run their own clamd, dnsmasq, Rspamd and OpenDKIM; the packaged
# services must not run (freshclam would try to download signatures, the
# packaged Rspamd and OpenDKIM would query the system's resolver).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now clamav-freshclam clamav-daemon >/dev/null 2>&1 || true
    $SUDO systemctl disable --now rspamd opendkim >/dev/null 2>&1 || true
fi
