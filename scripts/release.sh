#!/usr/bin/env bash
# Build the release binaries of chute and their checksums into dist/.
#
# Usage: scripts/release.sh [VERSION]
#   VERSION defaults to `git describe --tags --always --dirty`.
#   RELEASE_TARGETS="linux/amd64" narrows the matrix (for trying the script).
#
# Writes dist/chute_<VERSION>_<GOOS>_<GOARCH>[.exe] and dist/SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

version=${1:-$(git describe --tags --always --dirty)}
# The version goes into file names and into -ldflags, which splits on
# spaces: refuse anything that is not a plain tag-like word.
if [[ ! $version =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
	echo "release: bad version '$version'" >&2
	exit 2
fi

targets=${RELEASE_TARGETS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}

# CGO_ENABLED=0: static binaries that run on any libc and cross-compile
# from one host. -trimpath: no builder paths in the binary, and the same
# source gives the same bytes on any machine. -s -w: no symbol table or
# DWARF, about a third smaller; panics still print file:line.
# The version is stamped into internal/version.Version; the binary also
# reads runtime/debug build info, so -buildvcs=auto is passed to win over
# a GOFLAGS=-buildvcs=false in the builder's environment.
ldflags="-s -w -X github.com/chutemq/chute/internal/version.Version=$version"

mkdir -p dist
built=()
for target in $targets; do
	goos=${target%/*} goarch=${target#*/}
	ext=""
	if [[ $goos == windows ]]; then
		ext=".exe"
	fi
	out="chute_${version}_${goos}_${goarch}${ext}"
	echo "release: $out"
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch \
		go build -trimpath -buildvcs=auto -ldflags "$ldflags" -o "dist/$out" ./cmd/chute
	built+=("$out")
done

# Checksums of this run's files only, by bare name, so that users can run
# `sha256sum -c SHA256SUMS` inside the download directory. shasum is the
# fallback on macOS, which has no sha256sum.
(
	cd dist
	if command -v sha256sum >/dev/null; then
		sha256sum -- "${built[@]}"
	else
		shasum -a 256 -- "${built[@]}"
	fi
) >dist/SHA256SUMS.tmp
mv dist/SHA256SUMS.tmp dist/SHA256SUMS
echo "release: dist/SHA256SUMS (${#built[@]} files)"
