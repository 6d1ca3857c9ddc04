#!/bin/sh
# Installs the official Ookla Speedtest CLI for the image's architecture into DEST_DIR, after
# checking the archive against its pinned SHA-256. Run by the Dockerfile (build arguments arrive
# as environment variables); tests/deploy/image.rs runs it against a local archive.
#
# Usage: install-speedtest.sh DEST_DIR
# Environment: TARGETARCH, TARGETVARIANT (set by BuildKit; without them, dpkg's architecture),
#   SPEEDTEST_VERSION, SPEEDTEST_URL (where the archives are),
#   SPEEDTEST_SHA256_X86_64, SPEEDTEST_SHA256_AARCH64, SPEEDTEST_SHA256_ARMHF.
set -eu

dest=${1:?usage: install-speedtest.sh DEST_DIR}
version=${SPEEDTEST_VERSION:?SPEEDTEST_VERSION is not set}
base=${SPEEDTEST_URL:-https://install.speedtest.net/app/cli}
arch=${TARGETARCH:-$(dpkg --print-architecture)}
platform=$arch${TARGETVARIANT:+/$TARGETVARIANT}

case $platform in
  amd64) ookla=x86_64 sum_var=SPEEDTEST_SHA256_X86_64 ;;
  arm64 | arm64/v8) ookla=aarch64 sum_var=SPEEDTEST_SHA256_AARCH64 ;;
  arm/v7 | armhf) ookla=armhf sum_var=SPEEDTEST_SHA256_ARMHF ;;
  *)
    echo "install-speedtest: no Ookla Speedtest CLI build for $platform (supported: amd64, arm64, arm/v7)" >&2
    exit 1
    ;;
esac
archive=ookla-speedtest-$version-linux-$ookla.tgz
eval "sum=\${$sum_var:-}"
case $sum in
  "")
    echo "install-speedtest: $sum_var is empty: pass --build-arg $sum_var=<SHA-256 of $archive>; refusing to install an unverified binary" >&2
    exit 1
    ;;
  *[!0-9a-f]*)
    echo "install-speedtest: $sum_var=$sum is not a lower-case hex SHA-256" >&2
    exit 1
    ;;
esac
if [ ${#sum} -ne 64 ]; then
  echo "install-speedtest: $sum_var=$sum is not 64 hex digits long" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "install-speedtest: $base/$archive"
curl --fail --silent --show-error --location --retry 3 --proto '=https,file' \
  --output "$work/$archive" "$base/$archive"
if ! (cd "$work" && echo "$sum  $archive" | sha256sum -c -); then
  echo "install-speedtest: $archive does not match $sum_var=$sum" >&2
  exit 1
fi
tar -xzf "$work/$archive" -C "$work" speedtest
install -D -m 0755 "$work/speedtest" "$dest/speedtest"
echo "install-speedtest: installed $dest/speedtest ($archive)"
