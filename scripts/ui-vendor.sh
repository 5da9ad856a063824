#!/usr/bin/env bash
# Rebuilds the web interface's vendored library (opentap/api/ui/static/vendor/) from the npm registry: the exact
# version below, its built files as published, and its licence. Nothing is loaded from a CDN at run time: the
# daemon serves these files itself. Run from anywhere; needs npm and tar. Check the diff before committing.
set -euo pipefail
UPLOT_VERSION=1.6.32
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/opentap/api/ui/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "uplot@$UPLOT_VERSION" >/dev/null
tar -xzf "uplot-$UPLOT_VERSION.tgz"
mkdir -p "$DEST"
cp package/dist/uPlot.iife.min.js "$DEST/uPlot.iife.min.js"
cp package/dist/uPlot.min.css "$DEST/uPlot.min.css"
cp package/LICENSE "$DEST/uPlot.LICENSE"
echo "uPlot $UPLOT_VERSION (MIT) from the npm registry's uplot package; rebuilt by scripts/ui-vendor.sh" > "$DEST/README"
sha256sum "$DEST"/uPlot.* | sed "s|$DEST/||"
