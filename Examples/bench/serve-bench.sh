#!/usr/bin/env bash
# The server's benchmark (README, "Benchmarks" → "The server"): sync predict requests/s on 512² tiles,
# a job on the 2048² orthophoto through the server against `aerialseg run` on the same file
# (interleaved rounds), and the server's peak RSS (VmHWM) with 2 models loaded and with 20 jobs queued.
#
#   swift build -c release && Examples/bench/serve-bench.sh [ROUNDS] [SECONDS]     # default 3 rounds, 20 s of load
#
# Needs wrk, curl, gdal_translate and python3. Load comes from a second process (wrk) on loopback.
# Only ratios measured in the same run mean much: these machines drift ±20 % between runs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${AERIALSEG:-$repo/.build/release/aerialseg}
rounds=${1:-3}
seconds=${2:-20}
work=$(mktemp -d /tmp/aerialseg-serve-bench.XXXXXX)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
ortho=$repo/Examples/tree-canopy/data/ortho_10cm.tif
pipeline=$repo/Pipelines/tree-canopy.yaml
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
mkdir -p "$work/inputs" "$work/data"
cp "$ortho" "$work/inputs/ortho.tif"
gdal_translate -q -srcwin 0 0 512 512 "$ortho" "$work/tile512.tif"
# A second model: the same network under another name (its own loaded copy), for "2 models loaded".
sed "s|^checkpoint: ../|checkpoint: $repo/|" "$pipeline" > "$work/tree-canopy-b.yaml"

start_server() {
    "$bin" serve "$pipeline" "$work/tree-canopy-b.yaml" --data "$work/data" --inputs-root "$work/inputs" \
        --port "$port" --queue 32 2> "$work/server.log" > /dev/null &
    pid=$!
    until curl -fsS "$url/healthz" > /dev/null 2>&1; do sleep 0.1; done
}
hwm() { awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$pid/status"; }
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' "/proc/$pid/status"; }

echo "== $(date -u +%FT%TZ) $(nproc) cores, $bin"
start_server
for m in tree-canopy tree-canopy-b; do
    curl -fsS -X POST -H 'Content-Type: image/tiff' --data-binary @"$work/tile512.tif" -o /dev/null "$url/v1/models/$m/predict"
done
echo "peak RSS, 2 models loaded, one 512² prediction each: VmHWM $(hwm)"

# 1. Sync predict on 512² tiles, bounded load from wrk: 1 and 2 connections (2 predictions run at once).
cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/tiff"
local f = io.open("$work/tile512.tif", "rb"); wrk.body = f:read("*a"); f:close()
LUA
for c in 1 2; do
    out=$(wrk -t1 -c$c -d${seconds}s --latency -s "$work/post.lua" "$url/v1/models/tree-canopy/predict")
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<< "$out")
    echo "sync predict 512², $c connection(s), ${seconds} s: $rps req/s, median latency $p50, non-2xx ${non2xx:-0}"
done
echo "peak RSS after the predict load: VmHWM $(hwm)"

# 2. The 2048² orthophoto: a job through the server (POST of the file → status succeeded, polled every
# 20 ms) against `aerialseg run` on the same file (process start to exit, model load included), interleaved.
python3 - "$url" "$bin" "$pipeline" "$work" "$rounds" <<'PY'
import json, subprocess, sys, time, urllib.request
url, bin, pipeline, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def submit():
    body = open(f"{work}/inputs/ortho.tif", "rb").read()
    req = urllib.request.Request(f"{url}/v1/jobs?model=tree-canopy", data=body, method="POST",
                                 headers={"Content-Type": "image/tiff"})
    return json.load(urllib.request.urlopen(req))["id"]
def wait(job):
    while True:
        j = json.load(urllib.request.urlopen(f"{url}/v1/jobs/{job}"))
        if j["status"] in ("succeeded", "failed", "cancelled"):
            return j
        time.sleep(0.02)
rows = []
for r in range(rounds):
    t = time.monotonic(); j = wait(submit()); server = time.monotonic() - t
    assert j["status"] == "succeeded", j
    t = time.monotonic()
    p = subprocess.run([bin, "run", pipeline, "--input", f"{work}/inputs/ortho.tif", "--output", f"{work}/run{r}", "--quiet"],
                       capture_output=True, text=True, check=True)
    run = time.monotonic() - t
    inner = float(p.stdout.split(" in ")[1].split(" s")[0])  # "…windows (… skipped…) in 7.9 s, model …"
    rows.append((server, run, j["timings"]["seconds"], inner))
    print(f"round {r + 1}: server job {server:.2f} s (its run {j['timings']['seconds']:.2f} s), "
          f"aerialseg run {run:.2f} s (its run {inner:.2f} s): ratio {server / run:.3f}")
tot = [sum(x[i] for x in rows) for i in range(4)]
print(f"2048² job, {rounds} rounds: server {tot[0] / rounds:.2f} s, run {tot[1] / rounds:.2f} s, "
      f"ratio {tot[0] / tot[1]:.3f} (end to end); segmentation alone {tot[2] / tot[3]:.3f}")
PY

# 3. Twenty jobs queued behind a running one (uploads of the 2048² file), then the running one finished.
for i in $(seq 21); do
    curl -fsS -X POST -H 'Content-Type: image/tiff' --data-binary @"$work/inputs/ortho.tif" -o /dev/null \
        "$url/v1/jobs?model=tree-canopy"
done
echo "21 jobs submitted (1 running, 20 queued): VmRSS $(rss), VmHWM $(hwm)"
python3 - "$url" "$rounds" <<'PY'
import json, sys, time, urllib.request
url, rounds = sys.argv[1], int(sys.argv[2])
while True:
    jobs = json.load(urllib.request.urlopen(f"{url}/v1/jobs?limit=1000"))["jobs"]
    if sum(j["status"] == "succeeded" for j in jobs) >= rounds + 1:  # the rounds' jobs + one more
        break
    time.sleep(0.2)
PY
echo "after one more job ran, 20 still waiting: VmRSS $(rss), VmHWM $(hwm)"
kill -TERM "$pid"; wait "$pid" || true
