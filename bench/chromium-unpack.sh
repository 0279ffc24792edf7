#!/usr/bin/env bash
# On the GPU machine: collects the pieces of bench/chromium-pack.sh (carried in .chromium/ over one or more
# calls to the same warm machine) in /tmp/chromium-pieces and, once all are there, unpacks the browser into
# /tmp/chromium and playwright-core into node_modules/. Prints what is still missing.
set -euo pipefail
pieces=/tmp/chromium-pieces
mkdir -p "$pieces"
cp -n .chromium/part-* .chromium/libs.tar.xz .chromium/pw.tar.xz "$pieces/" 2>/dev/null || true
if [ ! -x /tmp/chromium/chromium/chromium-headless-shell ]; then
  for f in part-aa part-ab libs.tar.xz pw.tar.xz; do
    [ -f "$pieces/$f" ] || { echo "chromium-unpack: waiting for $f (carry it in a later call)"; exit 0; }
  done
  mkdir -p /tmp/chromium
  cat "$pieces"/part-* | xz -dc | tar xf - -C /tmp/chromium
  tar xJf "$pieces/libs.tar.xz" -C /tmp/chromium
fi
# The machine has no fontconfig setup: without one Skia aborts ("SkFontMgr_FontConfigInterface: Not implemented")
# on the first page that draws text. FONTCONFIG_FILE=/tmp/chromium/fonts.conf points Chrome at the carried font.
cat > /tmp/chromium/fonts.conf <<'CONF'
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig><dir>/tmp/chromium/fonts</dir><cachedir>/tmp/chromium/fontcache</cachedir></fontconfig>
CONF
mkdir -p node_modules
[ -d node_modules/playwright-core ] || tar xJf "$pieces/pw.tar.xz" -C node_modules
missing=$(LD_LIBRARY_PATH=/tmp/chromium/lib ldd /tmp/chromium/chromium/chromium-headless-shell | grep 'not found' || true)
[ -z "$missing" ] || { echo "chromium-unpack: libraries still missing:"; echo "$missing"; exit 2; }
echo "chromium-unpack: /tmp/chromium/chromium/chromium-headless-shell ready (LD_LIBRARY_PATH=/tmp/chromium/lib FONTCONFIG_FILE=/tmp/chromium/fonts.conf)"
