#!/bin/bash
# The image's HEALTHCHECK: exits 0 when internet-monitor's /healthz answers 200 (the store is
# usable), 1 otherwise. Uses bash's /dev/tcp, so the image needs no curl or wget. The port follows
# serve's: a --listen among the arguments of the container's command line (PID 1, tini, holds
# serve's: `docker run IMAGE serve --listen :6000`), else INTERNET_MONITOR_LISTEN, else
# 0.0.0.0:5000; every spelling --listen takes ends in :PORT or is PORT. When the port answers that it speaks HTTPS
# (--web.config.file with tls_server_config), asks again through `openssl s_client` (the image
# has openssl with ca-certificates), without verifying the certificate: it asks its own process
# on 127.0.0.1. With basic_auth_users, /healthz needs --web.healthz-unauthenticated.
set -u
listen=${INTERNET_MONITOR_LISTEN:-0.0.0.0:5000}
# HEALTHCHECK_CMDLINE: another file to read the arguments from (the tests).
cmdline=${HEALTHCHECK_CMDLINE:-/proc/1/cmdline}
if [ -r "$cmdline" ]; then
  mapfile -d '' -t words < "$cmdline"
  next=
  for word in "${words[@]}"; do
    if [ -n "$next" ]; then
      listen=$word
      next=
    elif [ "$word" = --listen ]; then
      next=1
    elif [ "${word#--listen=}" != "$word" ]; then
      listen=${word#--listen=}
    fi
  done
fi
port=${listen##*:}
port=${port//[[:space:]]/}
case $port in
  ''|*[!0-9]*)
    echo "healthcheck: cannot read a port from --listen $listen" >&2
    exit 1 ;;
esac
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
