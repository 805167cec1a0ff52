#!/usr/bin/env bash
# Give a client a bearer token: appends it to aistack/tokens.map and prints it once.
#   add-token.sh NAME [CONF_DIR]     (then reload nginx: nginx -s reload)
# Revoke a client by deleting its line and reloading.
set -euo pipefail
name=${1:?usage: add-token.sh NAME [CONF_DIR]}
[[ $name =~ ^[A-Za-z0-9._-]+$ ]] || { echo "NAME: letters, digits, . _ - only" >&2; exit 2; }
map=${2:-/etc/nginx}/aistack/tokens.map
token=$(openssl rand -hex 24)
printf '"Bearer %s" %s;\n' "$token" "$name" >>"$map"
echo "$token"
