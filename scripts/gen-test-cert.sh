#!/bin/sh
# gen-test-cert.sh - make a throwaway CA and a server certificate for tests,
# with the openssl command line tool. Usage: scripts/gen-test-cert.sh DIR [ec|rsa] [NAME]
# Writes into DIR (created if missing):
#   ca.pem ca.key        the test CA (CN=mxring test CA), valid 2 days
#   cert.pem key.pem     server certificate and key: CN=NAME (default mx.test),
#                        SAN DNS:NAME, IP:127.0.0.1, serverAuth
#   chain.pem            cert.pem followed by ca.pem (a certificate chain file)
#   other.key            an unrelated key (for "key does not match" tests)
# Keys are EC P-256 by default, RSA 2048 with "rsa". Never commit the output.
set -eu
dir=${1:?usage: gen-test-cert.sh DIR [ec|rsa] [NAME]}
kind=${2:-ec}
name=${3:-mx.test}
mkdir -p "$dir"
umask 077

newkey() {
    case "$kind" in
    ec)  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ;;
    *)   echo "gen-test-cert.sh: key kind must be ec or rsa, not $kind" >&2; exit 2 ;;
    esac 2>/dev/null
}

newkey "$dir/ca.key"
newkey "$dir/key.pem"
newkey "$dir/other.key"

openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=mxring test CA" -days 2 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.pem"

cat > "$dir/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$name,IP:127.0.0.1
EXT
openssl req -new -key "$dir/key.pem" -subj "/CN=$name" -out "$dir/server.csr"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 \
    -extfile "$dir/server.ext" -out "$dir/cert.pem" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext"
cat "$dir/cert.pem" "$dir/ca.pem" > "$dir/chain.pem"
chmod 644 "$dir/ca.pem" "$dir/cert.pem" "$dir/chain.pem"
