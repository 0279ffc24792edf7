#!/usr/bin/env bash
# Everything df11-web needs on a fresh Debian/Ubuntu machine: Debian's chromium (the browser for the
# Playwright tests, and SwiftShader's Vulkan driver for WebGPU on machines without a GPU), the Vulkan
# loader that Node's WebGPU (Dawn) opens, and the npm packages. Nothing else is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends chromium libvulkan1
fi
npm ci --no-audit --no-fund
