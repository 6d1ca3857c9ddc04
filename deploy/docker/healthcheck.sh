#!/bin/bash
# The image's HEALTHCHECK: exits 0 when internet-monitor's /healthz answers 200 (the store is
# usable), 1 otherwise. Uses bash's /dev/tcp, so the image needs no curl or wget. The port follows
# INTERNET_MONITOR_LISTEN (default 0.0.0.0:5000).
set -u
listen=${INTERNET_MONITOR_LISTEN:-0.0.0.0:5000}
port=${listen##*:}
if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
  echo "healthcheck: nothing listens on 127.0.0.1:$port" >&2
  exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
if ! IFS= read -r -t 5 status <&3; then
  echo "healthcheck: no answer from 127.0.0.1:$port" >&2
  exit 1
fi
status=${status%$'\r'}
case $status in
  "HTTP/1.1 200 "*) exit 0 ;;
esac
echo "healthcheck: /healthz answered: $status" >&2
exit 1
