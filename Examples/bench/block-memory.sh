#!/usr/bin/env bash
# Peak memory against image size, with blocks (issue #15): the small DeepLabV3+ R-18 fixture model
# (1/16 widths; its weights for 6 classes, random weights for a 16-class head at 896/512) on VRT
# mosaics of shifted copies of Tests/Fixtures/rasters/ortho_10cm.tif (no pixel copies), peak RSS
# from /usr/bin/time, recompute overhead from run's own layout line.
#
#   swift build -c release --product aerialseg
#   Examples/bench/block-memory.sh [widths...]        # default: 8192 65536 (2048 rows each)
#   SQUARE=65536 Examples/bench/block-memory.sh       # also a 65536 × 65536 mosaic, end to end
#   MEMORY_MB=512 Examples/bench/block-memory.sh      # run with --memory-mb 512 (default: run's default)
#   SPARSE=100000 Examples/bench/block-memory.sh -    # assembly at 100000²: one real 2048² tile in a
#                                                     # 100000² VRT of nodata (windows skipped, every
#                                                     # piece, COG and overview still written)
#   FULL=16384 Examples/bench/block-memory.sh -       # full-size DeepLabV3+ R-18-D8 (random weights)
#                                                     # on a 16384² mosaic
#
# Prints one line per (model, mosaic): peak RSS, the block layout run chose, and the overhead.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-$here/.build/release/aerialseg}
src=$here/Tests/Fixtures/rasters/ortho_10cm.tif
fixture=$here/Tests/Fixtures/mmseg/dlv3p_r18_d8_potsdam
work=${WORK:-/tmp/aerialseg-block-memory}
widths=("$@"); [ ${#widths[@]} -gt 0 ] || widths=(8192 65536)
[ "${widths[0]}" = "-" ] && widths=()
mkdir -p "$work"
[ -x "$bin" ] || { echo "block-memory: build first: swift build -c release --product aerialseg" >&2; exit 2; }

# Pipelines: the fixture's model; 6 classes with its weights, 16 classes with random weights.
/usr/bin/python3 - "$fixture" "$work" <<'EOF'
import json, sys
fixture, work = sys.argv[1], sys.argv[2]
oracle = json.load(open(f"{fixture}/oracle.json"))
model = {k: oracle[k] for k in ("backbone", "decode_head", "data_preprocessor")}
six = ["impervious_surface", "building", "low_vegetation", "tree", "car", "clutter"]
with open(f"{work}/six.yaml", "w") as f:
    f.write("model: " + json.dumps(model) + "\n")
    f.write("classes: [" + ", ".join(six) + "]\n")
    f.write("tiling: {crop: 512, stride: 341, blend: mean}\n")
    f.write(f"checkpoint: {fixture}/checkpoint.pth\n")
model16 = json.loads(json.dumps(model)); model16["decode_head"]["num_classes"] = 16
with open(f"{work}/sixteen.yaml", "w") as f:
    f.write("model: " + json.dumps(model16) + "\n")
    f.write("classes: [" + ", ".join(f"c{i}" for i in range(16)) + "]\n")
    f.write("tiling: {crop: 896, stride: 512, blend: mean}\n")
EOF

# mosaic W H: copies of the 2048² ortho, shifted by whole tiles.
mosaic() {
    local w=$1 h=$2 out=$work/mosaic_${1}x${2}.vrt
    [ -f "$out" ] && { echo "$out"; return; }
    read -r x0 y0 px < <(gdalinfo -json "$src" | /usr/bin/python3 -c 'import json,sys; g=json.load(sys.stdin)["geoTransform"]; print(g[0], g[3], g[1])')
    local list=$work/list_${w}x${h}.txt; : > "$list"
    for ((i = 0; i < h / 2048; i++)); do for ((j = 0; j < w / 2048; j++)); do
        local t=$work/tiles/t_${i}_${j}.vrt
        mkdir -p "$work/tiles"
        if [ ! -f "$t" ]; then
            read -r a b c d < <(/usr/bin/python3 -c "print($x0+$j*2048*$px, $y0-$i*2048*$px, $x0+($j+1)*2048*$px, $y0-($i+1)*2048*$px)")
            gdal_translate -q -of VRT -a_ullr "$a" "$b" "$c" "$d" "$src" "$t"
        fi
        echo "$t" >> "$list"
    done; done
    gdalbuildvrt -q -input_file_list "$list" "$out"
    echo "$out"
}

measure() {  # pipeline label mosaic
    local out=$work/out; rm -rf "$out"
    local extra=(); [ -n "${MEMORY_MB:-}" ] && extra=(--memory-mb "$MEMORY_MB")
    local random=(); [ "$2" = 6 ] || random=(--random-weights)
    local log=$work/log.txt
    /usr/bin/time -f "%M %e" -o "$work/time.txt" "$bin" run "$1" --input "$3" --output "$out" --preview none \
        "${random[@]}" "${extra[@]}" > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
    read -r kb secs < "$work/time.txt"
    local layout; layout=$(grep -m1 -o 'blocks: .*' "$log" || grep -m1 -i 'block' "$log" || true)
    local plan; plan=$(grep -m1 -o 'memory plan: .*' "$log" || true)
    local phases; phases=$(grep -m1 -o 'model [0-9.]* s (.*)' "$log" || true)
    printf '%-4s classes  %-18s  peak %5d MiB  %7.1f s  %s\n      %s\n      %s\n' "$2" "$(basename "$3" .vrt)" \
        $((kb / 1024)) "$secs" "$layout" "$plan" "$phases"
}

for w in "${widths[@]}"; do
    m=$(mosaic "$w" 2048)
    measure "$work/six.yaml" 6 "$m"
    measure "$work/sixteen.yaml" 16 "$m"
done
if [ -n "${SQUARE:-}" ]; then
    m=$(mosaic "$SQUARE" "$SQUARE")
    measure "$work/six.yaml" 6 "$m"
fi
if [ -n "${SPARSE:-}" ]; then
    sparse=$work/sparse_${SPARSE}.vrt
    read -r x0 y0 px < <(gdalinfo -json "$src" | /usr/bin/python3 -c 'import json,sys; g=json.load(sys.stdin)["geoTransform"]; print(g[0], g[3], g[1])')
    gdalbuildvrt -q -overwrite -srcnodata 0 -vrtnodata 0 -te "$x0" "$(/usr/bin/python3 -c "print($y0-$SPARSE*$px)")" \
        "$(/usr/bin/python3 -c "print($x0+$SPARSE*$px)")" "$y0" "$sparse" "$src"
    measure "$work/six.yaml" 6 "$sparse"
fi
if [ -n "${FULL:-}" ]; then
    m=$(mosaic "$FULL" "$FULL")
    measure "$here/Pipelines/deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.yaml" full "$m"
fi
