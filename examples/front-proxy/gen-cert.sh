#!/usr/bin/env bash
# Makes a self-signed certificate for localhost (CN and SAN) in DIR: tls.crt and tls.key, as the
# frontend-proxy's 8443 listener reads them from /etc/legate/tls (and as a Kubernetes TLS Secret
# names them). Usage: ./gen-cert.sh DIR
set -euo pipefail
dir=${1:?usage: gen-cert.sh DIR}
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
  -keyout "$dir/tls.key" -out "$dir/tls.crt" \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
# Readable by the proxy whichever user the container runs as; the key is a throwaway test key.
chmod 644 "$dir/tls.key" "$dir/tls.crt"
echo "$dir/tls.crt $dir/tls.key (CN=localhost)"
