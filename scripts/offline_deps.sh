#!/usr/bin/env bash
# Download the Debian .deb files of every build dependency except LibTorch into a folder, to carry
# to an air-gapped GPU host (whose LibTorch comes from its pip `torch`). Run on a Debian 12 box
# with network access to the Debian mirror; scripts/build_cuda.sh unpacks them there.
#   scripts/offline_deps.sh [dir=.deps]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.deps}"
mkdir -p "$dir"
pkgs=(nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libyaml-cpp0.7
      libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc-dev libutf8proc2
      libgtest-dev libgmock-dev googletest libsentencepiece-dev libsentencepiece0)
apt-get update -q >/dev/null 2>&1 || true
(cd "$dir" && apt-get download "${pkgs[@]}")
ls -1 "$dir"/*.deb | wc -l | xargs echo "downloaded .deb files:"
