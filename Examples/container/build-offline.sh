#!/usr/bin/env bash
# Builds the aerialseg image with no container registry, as an air-gapped site would
# (../shared/docs/offline-containers.md): Debian 12 bases made by mmdebstrap from the machine's apt
# sources, imported into podman; the Swift toolchain (/opt/swift) and the Swift packages
# (/opt/swift-packages, git mirrors of the github.com packages) mounted read-only into the build.
#
#   Examples/container/build-offline.sh [--run]      # from anywhere; --run also starts it and checks it
#
# Environment: WORK (default /tmp/aerialseg-container: rootfs tars, logs), SWIFT_DIR (/opt/swift),
# SWIFT_PACKAGES (/opt/swift-packages), IMAGE (localhost/aerialseg:latest), PORT (18080, for --run),
# LOCK (a file to flock around the Swift build, e.g. /tmp/aerialseg-build.lock; unset: none).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${WORK:-/tmp/aerialseg-container}
swift_dir=${SWIFT_DIR:-/opt/swift}
packages=${SWIFT_PACKAGES:-/opt/swift-packages}
image=${IMAGE:-localhost/aerialseg:latest}
port=${PORT:-18080}
mkdir -p "$work"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
timed() { local s; s=$(date +%s.%N); "$@"; log "$(printf '%.1f' "$(echo "$(date +%s.%N) - $s" | bc)") s: $*"; }

# 1. Tools (Debian packages). runc: crun fails here on rlimits and cgroups.
tools=(podman mmdebstrap runc uidmap slirp4netns fuse-overlayfs netavark aardvark-dns catatonit iptables bc)
missing=()
for p in "${tools[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
podman=(podman --runtime runc)

# 2. Base images from Debian packages: the runtime (only what the binary links, and curl for the
# healthcheck) and the build stage's (the -dev packages and what the Swift toolchain runs on).
runtime_pkgs=libgdal32,libopenblas0,libdnnl2,ca-certificates,curl
build_pkgs=libgdal-dev,libopenblas-dev,libdnnl-dev,libtiff-dev,libpng-dev,libc6-dev,libstdc++-12-dev,libgcc-12-dev
build_pkgs+=,binutils,gcc,git,ca-certificates,libcurl4,libxml2,libsqlite3-0,libncurses6,zlib1g-dev,pkg-config
base() {  # name packages
    local tar="$work/$1-rootfs.tar"
    if ! "${podman[@]}" image exists "localhost/$1:bookworm"; then
        [ -s "$tar" ] || timed mmdebstrap --quiet --variant=minbase --include="$2" bookworm "$tar"
        timed "${podman[@]}" import "$tar" "localhost/$1:bookworm" >/dev/null
    fi
}
base aerialseg-base "$runtime_pkgs"
base aerialseg-build-base "$build_pkgs"

# 3. The image: no network, no pulls; Swift and its packages come from the host, read-only.
# --format docker: OCI images have no HEALTHCHECK. The ulimits: as for running (runc, these machines).
build=("${podman[@]}" build --network=none --pull=never --format docker -f "$repo/Examples/container/Containerfile"
       --ignorefile "$repo/Examples/container/Containerfile.dockerignore"
       --ulimit nofile=16384:16384 --ulimit nproc=32768:32768
       --build-arg BUILD_BASE=localhost/aerialseg-build-base:bookworm
       --build-arg RUNTIME_BASE=localhost/aerialseg-base:bookworm
       --build-arg SWIFT_PACKAGES_MIRROR="$packages"
       -v "$swift_dir:/opt/swift:ro" -v "$packages:$packages:ro" -t "$image" "$repo")
if [ -n "${LOCK:-}" ]; then timed flock "$LOCK" "${build[@]}"; else timed "${build[@]}"; fi
"${podman[@]}" image inspect "$image" --format '{{.Size}}' | awk '{printf "image size: %.0f MB\n", $1/1e6}' >&2

[ "${1:-}" = "--run" ] || exit 0

# 4. Run it (runc, these ulimits, host network) and send it one real prediction.
name=aerialseg-check
"${podman[@]}" rm -f "$name" >/dev/null 2>&1 || true
start=$(date +%s.%N)
"${podman[@]}" run -d --name "$name" --ulimit nofile=16384:16384 --ulimit nproc=32768:32768 --network=host \
    -e AERIALSEG_PORT="$port" "$image" >/dev/null
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
    "${podman[@]}" container exists "$name" && [ "$("${podman[@]}" inspect -f '{{.State.Running}}' "$name")" = true ] \
        || { "${podman[@]}" logs "$name" >&2; exit 1; }
    sleep 0.1
done
log "$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s: container start to /healthz 200"
curl -fsS "http://127.0.0.1:$port/healthz" >&2; echo >&2
crop="$work/crop512.tif"
# A corner with trees (29 % canopy in canopy_mask.tif), so the labels say something.
gdal_translate -q -srcwin 1536 512 512 512 "$repo/Examples/tree-canopy/data/ortho_10cm.tif" "$crop"
s=$(date +%s.%N)
curl -fsS -X POST -H 'Content-Type: image/tiff' --data-binary @"$crop" -o "$work/crop512.labels.tif" \
    "http://127.0.0.1:$port/v1/models/tree-canopy/predict"
log "$(printf '%.2f' "$(echo "$(date +%s.%N) - $s" | bc)") s: POST /v1/models/tree-canopy/predict (512²)"
gdalinfo -stats "$work/crop512.labels.tif" | grep -E "Size is|STATISTICS_(MEAN|MAXIMUM)" >&2
"${podman[@]}" healthcheck run "$name" && log "podman healthcheck: healthy"
"${podman[@]}" stop -t 30 "$name" >/dev/null && "${podman[@]}" rm "$name" >/dev/null
