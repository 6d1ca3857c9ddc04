#!/bin/bash
# The image's HEALTHCHECK: exits 0 when internet-monitor's /healthz answers 200 (the store is
# usable), 1 otherwise. Uses bash's /dev/tcp, so the image needs no curl or wget. The port follows
# INTERNET_MONITOR_LISTEN (default 0.0.0.0:5000). When the port answers that it speaks HTTPS
# (--web.config.file with tls_server_config), asks again through `openssl s_client` (the image
# has openssl with ca-certificates), without verifying the certificate: it asks its own process
# on 127.0.0.1. With basic_auth_users, /healthz needs --web.healthz-unauthenticated.
set -u
listen=${INTERNET_MONITOR_LISTEN:-0.0.0.0:5000}
port=${listen##*:}
request='GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'
if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
  echo "healthcheck: nothing listens on 127.0.0.1:$port" >&2
  exit 1
fi
printf "$request" >&3
if ! IFS= read -r -t 5 status <&3; then
  echo "healthcheck: no answer from 127.0.0.1:$port" >&2
  exit 1
fi
exec 3<&-
status=${status%$'\r'}
# The server answers plain HTTP on its HTTPS port with this status line (hyper's own answers
# are HTTP/1.1).
if [ "$status" = "HTTP/1.0 400 Bad Request" ]; then
  if ! command -v openssl >/dev/null; then
    echo "healthcheck: 127.0.0.1:$port speaks HTTPS and openssl is not installed" >&2
    exit 1
  fi
  status=$(printf "$request" | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" 2>/dev/null | head -n 1)
  status=${status%$'\r'}
fi
case $status in
  "HTTP/1.1 200 "*) exit 0 ;;
  "HTTP/1.1 401 "*)
    echo "healthcheck: /healthz needs credentials: start serve with --web.healthz-unauthenticated (INTERNET_MONITOR_WEB_HEALTHZ_UNAUTHENTICATED=true)" >&2
    exit 1 ;;
esac
echo "healthcheck: /healthz answered: ${status:-nothing}" >&2
exit 1
