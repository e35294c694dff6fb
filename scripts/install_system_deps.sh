#!/usr/bin/env bash
# Debian/Ubuntu packages robolearn needs at run time: Mesa's EGL + OpenGL for headless
# MuJoCo rendering on CPU-only machines (llvmpipe). Installs only what is missing; needs
# root (or sudo) for that, otherwise prints the command to run.
set -euo pipefail
PKGS=(libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libglx-mesa0)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "robolearn: please install the EGL/Mesa libraries for headless rendering: ${missing[*]}" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "robolearn: installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
