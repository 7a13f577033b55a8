#!/usr/bin/env bash
# Installs the Debian packages vouch builds with (plus any named as arguments), if any is missing. Idempotent: when all are
# present it does nothing (no apt-get update, no network).
set -euo pipefail

PACKAGES=(
  bazel-bootstrap
  clang-14              # --config=tsan and --config=fuzz (.bazelrc)
  g++
  libclang-rt-14-dev    # clang-14's TSan, ASan, UBSan and libFuzzer runtimes
  libabsl-dev
  libbenchmark-dev
  libconcurrentqueue-dev
  libgmock-dev
  libgtest-dev
  libprotobuf-dev
  libreaderwriterqueue-dev
  prometheus-cpp-dev
  protobuf-compiler
  python3-protobuf
)
PACKAGES+=("$@")  # Extra packages a caller needs (the performance report: python3-matplotlib).

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
