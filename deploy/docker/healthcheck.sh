#!/bin/bash
# The image's HEALTHCHECK: exits 0 when internet-monitor's /healthz answers 200 (the store is
# usable), 1 otherwise. Uses bash's /dev/tcp, so the image needs no curl or wget. The port follows
# serve's: a --listen among the arguments of the container's command line (PID 1, tini, holds
# serve's: `docker run IMAGE serve --listen :6000`), else INTERNET_MONITOR_LISTEN, else
# 0.0.0.0:5000; every spelling --listen takes ends in :PORT or is PORT. The host asked is the
# address serve listens on (`[::1]:5000` is asked on ::1), 127.0.0.1 for every interface (no
# host, 0.0.0.0, [::]) and for localhost. When the port answers that it speaks HTTPS
# (--web.config.file with tls_server_config), asks again through `openssl s_client` (the image
# has openssl with ca-certificates), without verifying the certificate: it asks its own
# process. With basic_auth_users, /healthz needs --web.healthz-unauthenticated.
set -u
listen=${INTERNET_MONITOR_LISTEN:-0.0.0.0:5000}
# HEALTHCHECK_CMDLINE: another file to read the arguments from (the tests).
cmdline=${HEALTHCHECK_CMDLINE:-/proc/1/cmdline}
if [ -r "$cmdline" ]; then
  mapfile -d '' -t words < "$cmdline"
  next=
  skip=
  for word in "${words[@]}"; do
    if [ -n "$skip" ]; then
      # The value of --speedtest-arg, which may be anything, even --listen=…
      skip=
    elif [ -n "$next" ]; then
      listen=$word
      next=
    elif [ "$word" = --speedtest-arg ]; then
      skip=1
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
if (( 10#$port > 65535 )); then
  echo "healthcheck: the port of --listen $listen is above 65535" >&2
  exit 1
fi
host=
[ "${listen%:*}" != "$listen" ] && host=${listen%:*}
host=${host//[[:space:]]/}
host=${host#[}
host=${host%]}
host=${host,,}
if [ -z "$host" ] || [ "$host" = localhost ] || [[ $host != *[!0:.]* ]]; then
  # Every interface (no host, 0.0.0.0, [::], [0::0]) or localhost: the IPv4 loopback answers.
  host=127.0.0.1
elif [[ $host == *[!0-9a-f:.]* ]]; then
  # An address serve takes is a literal IP: never a name to look up.
  echo "healthcheck: cannot read an address from --listen $listen" >&2
  exit 1
fi
# host:port for people and openssl, [host]:port for IPv6.
address=$host:$port
[ "${host#*:}" != "$host" ] && address=[$host]:$port
request="GET /healthz HTTP/1.1\r\nHost: ${address%:*}\r\nConnection: close\r\n\r\n"
if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "healthcheck: nothing listens on $address" >&2
  exit 1
fi
printf "$request" >&3
if ! IFS= read -r -t 5 status <&3; then
  echo "healthcheck: no answer from $address" >&2
  exit 1
fi
exec 3<&-
status=${status%$'\r'}
# The server answers plain HTTP on its HTTPS port with this status line (hyper's own answers
# are HTTP/1.1).
if [ "$status" = "HTTP/1.0 400 Bad Request" ]; then
  if ! command -v openssl >/dev/null; then
    echo "healthcheck: $address speaks HTTPS and openssl is not installed" >&2
    exit 1
  fi
  status=$(printf "$request" | timeout 5 openssl s_client -quiet -connect "$address" 2>/dev/null | head -n 1)
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
