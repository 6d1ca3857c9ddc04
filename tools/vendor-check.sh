#!/usr/bin/env bash
# Checks that the vendored uPlot under assets/vendor/uplot/ is the registry's package, unmodified:
# downloads the version named in assets/vendor/uplot/VERSION with `npm pack`, checks the tarball
# against the registry's dist.integrity (and the one recorded in VERSION), and compares every
# vendored file byte for byte with the package's. Exits non-zero, saying what differs, otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=assets/vendor/uplot
manifest=$dir/VERSION
field() { sed -n "s/^$1=//p" "$manifest"; }
package=$(field package)
version=$(field version)
recorded=$(field integrity)
files=$(field files)
if [ -z "$package" ] || [ -z "$version" ] || [ -z "$recorded" ] || [ -z "$files" ]; then
  echo "vendor-check: $manifest must name package=, version=, integrity= and files=" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

registry=$(npm view "$package@$version" dist.integrity)
if [ "$registry" != "$recorded" ]; then
  echo "vendor-check: $package@$version: the registry's integrity is $registry," >&2
  echo "  but $manifest records $recorded" >&2
  exit 1
fi

tarball=$(cd "$work" && npm pack --silent "$package@$version")
# Hashed with node (npm needs it anyway), not openssl, which a slim machine may lack.
actual="sha512-$(node -e 'const fs = require("fs"), crypto = require("crypto");
process.stdout.write(crypto.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"));' "$work/$tarball")"
if [ "$actual" != "$registry" ]; then
  echo "vendor-check: the downloaded $tarball hashes to $actual, not the registry's $registry" >&2
  exit 1
fi
tar -xzf "$work/$tarball" -C "$work"

status=0
for file in $files; do
  if [ ! -f "$dir/$file" ]; then
    echo "vendor-check: $dir/$file is listed in $manifest but missing" >&2
    status=1
  elif ! cmp -s "$dir/$file" "$work/package/$file"; then
    echo "vendor-check: $dir/$file differs from $file in $package@$version from the registry:" >&2
    cmp "$dir/$file" "$work/package/$file" >&2 || true
    status=1
  fi
done
# Nothing vendored that the check does not cover.
while IFS= read -r path; do
  rel=${path#"$dir/"}
  [ "$rel" = VERSION ] && continue
  case " $files " in
    *" $rel "*) ;;
    *) echo "vendor-check: $path is not in $manifest's files= list, so nothing checks it" >&2; status=1 ;;
  esac
done < <(find "$dir" -type f | sort)

if [ "$status" -ne 0 ]; then
  echo "vendor-check: FAILED: the vendored $package is not $package@$version as published" >&2
  exit "$status"
fi
echo "vendor-check: $package@$version ($registry): $(echo $files | wc -w) files identical to the registry's"
