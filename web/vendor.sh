#!/bin/sh
# vendor.sh fetches the pinned uPlot release with npm and copies the files
# the dashboard uses (the minified IIFE build, its CSS and the licence)
# into static/vendor/uplot/. Run it from anywhere; commit the result.
#
#	web/vendor.sh            # the pinned version
#	UPLOT_VERSION=1.6.32 web/vendor.sh
set -eu

version="${UPLOT_VERSION:-1.6.32}"
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/static/vendor/uplot"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null)
tar -xzf "$tmp"/uplot-"$version".tgz -C "$tmp"

mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$dest/"
cp "$tmp/package/dist/uPlot.min.css" "$dest/"
cp "$tmp/package/LICENSE" "$dest/"
echo "$version" >"$dest/VERSION"
echo "uPlot $version -> $dest"
