#!/bin/sh
# check-tools.sh - before `make test` starts: is every tool, library and
# data file that some test suite uses present? One line per missing item,
# naming the suite and the Debian package to install (scripts/deps.sh test
# installs them all); exit 1 when anything is missing, 0 otherwise.
# Usage: scripts/check-tools.sh
set -eu
missing=0

# have_cmd CMD - CMD is on PATH or in an sbin folder (clamd, dnsmasq).
have_cmd() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

# need WHAT SUITE PACKAGE TEST... - run the test command; report when it fails.
need() {
    what=$1 suite=$2 pkg=$3
    shift 3
    if ! "$@" >/dev/null 2>&1; then
        echo "check-tools: missing $what (used by $suite): install the Debian package $pkg" >&2
        missing=1
    fi
}

# fuzz_links - clang can build a libFuzzer binary (needs the clang runtime).
fuzz_links() {
    t=$(mktemp -d)
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$t/f.c"
    rc=0
    clang -fsanitize=fuzzer,address,undefined -o "$t/f" "$t/f.c" || rc=1
    rm -rf "$t"
    return "$rc"
}

# The builds (normal, ASan+UBSan, TSan; mxbench and the micro benchmarks).
need "gcc" "the builds" gcc have_cmd gcc
need "g++" "bench-micro" g++ have_cmd g++
need "make" "the builds" make have_cmd make
need "cmocka.h" "the unit tests" libcmocka-dev test -f /usr/include/cmocka.h
need "benchmark.h" "bench-micro" libbenchmark-dev test -f /usr/include/benchmark/benchmark.h
need "spdlog.h" "bench-micro" libspdlog-dev test -f /usr/include/spdlog/spdlog.h
need "BoringSSL headers" "the builds" android-libboringssl-dev \
    test -f /usr/include/android/openssl/is_boringssl.h
need "the system public suffix list" "test_regdom, test_defects_io" publicsuffix \
    test -f /usr/share/publicsuffix/public_suffix_list.dafsa
# The fuzz smoke run.
need "clang" "the fuzz smoke run" clang have_cmd clang
need "clang-format" "the format check" clang-format have_cmd clang-format
if have_cmd clang; then
    need "libFuzzer runtime" "the fuzz smoke run" libclang-rt-14-dev fuzz_links
fi
# The end-to-end suite.
need "python3" "the e2e suite" python3 have_cmd python3
need "python3 crypt, smtplib, ssl" "the e2e suite" python3 \
    python3 -c "import crypt, smtplib, ssl"
need "openssl" "gen-test-cert.sh, test_tls_auth" openssl have_cmd openssl
need "swaks" "test_core, test_tls_auth" swaks have_cmd swaks
need "Perl Net::SSLeay (swaks --tls)" "test_tls_auth" libnet-ssleay-perl perl -MNet::SSLeay -e 1
need "dnsmasq" "test_filters" dnsmasq-base have_cmd dnsmasq
need "clamd" "test_filters" clamav-daemon have_cmd clamd
need "sslscan" "test_defects_io" sslscan have_cmd sslscan
need "prometheus" "test_metrics" prometheus have_cmd prometheus
need "promtool" "test_metrics" prometheus have_cmd promtool
need "lintian" "test_package" lintian have_cmd lintian
need "adduser" "test_package (the postinst)" adduser have_cmd adduser
need "man" "test_package" man-db have_cmd man
need "dpkg-deb, dpkg-shlibdeps" "make deb, test_package" dpkg-dev have_cmd dpkg-shlibdeps
need "haproxy" "test_haproxy, compare-proxy.sh" haproxy have_cmd haproxy
# Real milters, run in a loopback-only network namespace (test_milter_real).
need "rspamd" "test_milter_real, compare-milter.sh" rspamd have_cmd rspamd
need "opendkim" "test_milter_real" opendkim have_cmd opendkim
need "python3 cryptography" "test_milter_real (DKIM signing)" python3-cryptography \
    python3 -c "import cryptography.hazmat.primitives.asymmetric.rsa"
need "ip" "test_milter_real, compare-milter.sh" iproute2 have_cmd ip
need "unshare, nsenter" "test_milter_real, compare-milter.sh" util-linux have_cmd nsenter
need "mkfs.ext4" "test_powerloss" e2fsprogs have_cmd mkfs.ext4
need "xfs_io" "test_powerloss" xfsprogs have_cmd xfs_io
need "losetup, mount" "test_powerloss, test_hostile" mount have_cmd losetup

if [ "$missing" -ne 0 ]; then
    echo "check-tools: run scripts/deps.sh test (as root or with sudo), then make test again" >&2
    exit 1
fi
exit 0
