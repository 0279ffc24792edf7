#!/usr/bin/env bash
# Packs Debian's chromium-headless-shell for a bare GPU machine (bench/CHROMIUM.md): the browser's own files,
# the shared libraries `ldd` finds for it here (glibc excepted: the GPU machine has its own, 2.39 on Ubuntu
# 24.04), one font, and playwright-core, split into pieces a call can carry (64 MiB each, with the tree).
#   bash bench/chromium-pack.sh          # here: writes .chromium/{part-aa,part-ab,libs.tar.xz,pw.tar.xz}
#   then there, one call per piece on a warm machine: bash bench/chromium-unpack.sh  (see CHROMIUM.md)
set -euo pipefail
out=${1:-.chromium}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lists="$work/lists"; mkdir -p "$lists/partial" "$work/debs" "$work/x" "$work/bundle/chromium" "$work/bundle/lib" "$work/bundle/fonts"
o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
apt-get $o update >/dev/null 2>&1 || true
(cd "$work/debs" && apt-get $o download chromium-headless-shell chromium-common >/dev/null 2>&1) ||
  { echo "chromium-pack: could not download chromium-headless-shell / chromium-common" >&2; exit 2; }
for f in "$work"/debs/*.deb; do dpkg -x "$f" "$work/x"; done
lib="$work/x/usr/lib/chromium"
# What the headless shell loads: its binary, paks, ICU data, V8 snapshots and Chromium's Vulkan loader
# (the NVIDIA ICD itself comes from the machine; the glvnd libraries it needs from ../shared/gpu/pack.sh).
cp "$lib"/{chromium-headless-shell,headless_command_resources.pak,headless_lib_data.pak,headless_lib_strings.pak,icudtl.dat,snapshot_blob.bin,v8_context_snapshot.bin,libvulkan.so.1,chrome_crashpad_handler} "$work/bundle/chromium/"
ldd "$lib/chromium-headless-shell" | awk '$3 ~ /^\// {print $3}' | grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64)\.so' |
  xargs -I{} cp -L {} "$work/bundle/lib/" ||
  { echo "chromium-pack: ldd needs the shell's libraries installed here (apt-get install chromium-headless-shell or chromium)" >&2; exit 2; }
cp /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf "$work/bundle/fonts/" 2>/dev/null || true
mkdir -p "$out"
(cd "$work/bundle" && tar cf - chromium | xz -T2 -9) > "$work/chromium.tar.xz"
(cd "$work/bundle" && tar cf - lib fonts | xz -T2 -6) > "$out/libs.tar.xz"
(cd node_modules && tar cf - playwright-core | xz -T2 -6) > "$out/pw.tar.xz"
rm -f "$out"/part-*
split -b 52000000 "$work/chromium.tar.xz" "$out/part-"
ls -l "$out"
