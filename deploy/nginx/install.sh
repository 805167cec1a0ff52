#!/usr/bin/env bash
# Install deploy/nginx/aistack.conf into nginx's configuration folder (default /etc/nginx),
# with a self-signed certificate for this host unless aistack/tls.crt is already there, and an
# empty token list unless aistack/tokens.map is. Then: add-token.sh NAME, and reload nginx.
#   install.sh [CONF_DIR]
# AISTACK_TLS_NAMES: the certificate's names, comma-separated DNS names and IP addresses
# (default: this host's name, localhost, 127.0.0.1 and this host's addresses).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
conf_dir=${1:-/etc/nginx}
dir=$conf_dir/aistack

mkdir -p "$conf_dir/conf.d" "$dir"
install -m 644 "$here/aistack.conf" "$conf_dir/conf.d/aistack.conf"
[[ -f $dir/tokens.map ]] || install -m 600 /dev/null "$dir/tokens.map"

if [[ ! -f $dir/tls.crt ]]; then
  names=${AISTACK_TLS_NAMES:-$(hostname),localhost,127.0.0.1$(printf ',%s' $(hostname -I 2>/dev/null))}
  san=""
  IFS=, read -ra items <<<"$names"
  for name in "${items[@]}"; do
    [[ -n $name ]] || continue
    if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san+=",IP:$name"; else san+=",DNS:$name"; fi
  done
  (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 825 -sha256 \
    -subj "/CN=${items[0]}" -addext "subjectAltName=${san#,}" \
    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null)
  chmod 644 "$dir/tls.crt"
  echo "self-signed certificate for ${san#,}: $dir/tls.crt (give it to clients to trust)"
fi
echo "installed $conf_dir/conf.d/aistack.conf; add a client with $here/add-token.sh NAME"
