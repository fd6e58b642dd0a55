#!/usr/bin/env bash
# AerialSeg against ONNX Runtime and OpenVINO on the same networks, side by side in one run (issue #14).
#
#   swift build -c release --product aerialseg
#   Examples/bench/compare-runtimes.sh                 # the three models of the README's table
#   Examples/bench/compare-runtimes.sh fcn_r50-d8_4xb2-80k_cityscapes-512x1024   # or any Pipelines/ name
#   SIZE=512 THREADS=2 RUNS=5 ROUNDS=2 VENV=~/.venvs/aerialseg-compare Examples/bench/compare-runtimes.sh
#
# Each model is built by mmsegmentation 1.2.2 itself from its own config (mmseg/.mim/configs), with
# random weights as `aerialseg bench` uses (timing does not depend on the values), and exported to
# ONNX: backbone, neck and decode head, then the bilinear resize of the logits to the tile, which
# is what `aerialseg bench` times. ONNX Runtime f32, OpenVINO f32, OpenVINO bf16 (its default on a
# CPU with AVX512-BF16 or AMX), AerialSeg f32 and bf16 then run interleaved: ROUNDS rounds, each
# RUNS timed runs per runtime after a warm-up; a runtime's figure is the lowest of its per-round
# medians. Only ratios from one run count: this machine's speed drifts by ±20 %.
#
# The environment: ../shared/tools/mmseg-venv.sh (torch, mmengine, mmcv-lite, mmseg 1.2.2 from PyPI)
# plus onnx, onnxruntime and openvino from PyPI, made once in $VENV.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN:-$here/.build/release/aerialseg}
venv=${VENV:-$HOME/.venvs/aerialseg-compare}
work=${WORK:-/tmp/aerialseg-compare}
shared=${SHARED:-$here/../shared}
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512 fcn_r50-d8_4xb4-80k_ade20k-512x512
                                  fastfcn_r50-d32_jpu_psp_4xb4-80k_ade20k-512x512)
[ -x "$bin" ] || { echo "compare-runtimes: build first: swift build -c release --product aerialseg" >&2; exit 2; }
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import mmseg, onnxruntime, openvino" 2>/dev/null; then
    [ -f "$shared/tools/mmseg-venv.sh" ] || { echo "compare-runtimes: $shared/tools/mmseg-venv.sh not found (set SHARED)" >&2; exit 2; }
    bash "$shared/tools/mmseg-venv.sh" "$venv"
    "$venv/bin/pip" install -q onnx onnxruntime openvino
fi
mkdir -p "$work"
for m in "${models[@]}"; do
    [ -f "$here/Pipelines/$m.yaml" ] || { echo "compare-runtimes: no pipeline Pipelines/$m.yaml" >&2; exit 2; }
done

"$venv/bin/python" -W ignore - "$bin" "$here" "$work" "${SIZE:-512}" "${THREADS:-2}" "${RUNS:-5}" "${ROUNDS:-2}" \
    "${models[@]}" <<'EOF'
import glob, json, os, statistics, subprocess, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
import onnxruntime as ort, openvino as ov
import mmseg
from mmengine import Config
from mmseg.apis import init_model

binary, here, work, size, threads, runs, rounds = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
models = sys.argv[8:]
torch.set_num_threads(threads)
configs = os.path.join(os.path.dirname(mmseg.__file__), ".mim", "configs")


class SlicedAdaptiveAvgPool(nn.Module):
    """nn.AdaptiveAvgPool2d with PyTorch's bin edges (floor(i·H/o) … ceil((i+1)·H/o)) as slices:
    the ONNX exporter refuses adaptive pooling whose output does not divide the input (PSP's 3 and 6
    bins of a 64² map)."""
    def __init__(self, out):
        super().__init__()
        self.out = out if isinstance(out, tuple) else (out, out)

    def forward(self, x):
        H, W = int(x.shape[2]), int(x.shape[3])
        oh, ow = self.out
        rows = []
        for i in range(oh):
            h0, h1 = i * H // oh, -(-(i + 1) * H // oh)
            rows.append(torch.cat([x[:, :, h0:h1, j * W // ow:-(-(j + 1) * W // ow)].mean(dim=(2, 3), keepdim=True)
                                   for j in range(ow)], 3))
        return torch.cat(rows, 2)


def replace_adaptive_pools(module):
    for name, child in module.named_children():
        if isinstance(child, nn.AdaptiveAvgPool2d):
            setattr(module, name, SlicedAdaptiveAvgPool(child.output_size))
        else:
            replace_adaptive_pools(child)


class Network(nn.Module):
    """What `aerialseg bench` times: backbone (+ neck), decode head, logits resized to the tile."""
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits = self.model.decode_head.forward(self.model.extract_feat(x))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)


def export(name):
    path = os.path.join(work, f"{name}-{size}.onnx")
    found = glob.glob(os.path.join(configs, "*", name + ".py"))
    if not found:
        sys.exit(f"compare-runtimes: mmseg has no config {name}.py")
    cfg = Config.fromfile(found[0])
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    net = Network(init_model(cfg, checkpoint=None, device="cpu")).eval()
    replace_adaptive_pools(net)
    x = torch.rand(1, 3, size, size) * 2 - 1
    with torch.no_grad():
        expected = net(x).numpy()
        if not os.path.exists(path):
            torch.onnx.export(net, x, path + ".tmp", opset_version=17, input_names=["x"], output_names=["logits"],
                              dynamo=False)
            os.replace(path + ".tmp", path)
    return path, x.numpy(), expected


def timed(run, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def aerialseg(name, precision):
    out = subprocess.run([binary, "bench", os.path.join(here, "Pipelines", name + ".yaml"), "--size", str(size),
                          "--runs", str(runs), "--threads", str(threads), "--precision", precision, "--json"],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out)[0]  # one size
    return result["medianMs"], result["peakRSSMiB"], result.get("precision", precision)


rows = []
for name in models:
    path, x, expected = export(name)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    core = ov.Core()
    network = core.read_model(path)
    compiled = {p: core.compile_model(network, "CPU", {"INFERENCE_PRECISION_HINT": p, "INFERENCE_NUM_THREADS": threads,
                                                      "PERFORMANCE_HINT": "LATENCY"}) for p in ("f32", "bf16")}
    ran = {p: str(c.get_property("INFERENCE_PRECISION_HINT")) for p, c in compiled.items()}
    got = session.run(None, {"x": x})[0]
    print(f"{name}: ONNX Runtime against PyTorch, max |Δ| {np.abs(got - expected).max():.2e}; "
          f"OpenVINO precisions {ran}", file=sys.stderr)
    runners = {"ORT f32": lambda: session.run(None, {"x": x}),
               "OV f32": lambda: compiled["f32"]({"x": x}),
               "OV bf16": lambda: compiled["bf16"]({"x": x})}
    for run in runners.values():
        run()  # warm-up (aerialseg bench warms up itself)
    best, rss, ours = {}, {}, {}
    for _ in range(rounds):
        for label, run in runners.items():
            best[label] = min(best.get(label, 1e18), timed(run, runs))
        for precision in ("f32", "bf16"):
            ms, peak, effective = aerialseg(name, precision)
            label = f"AerialSeg {precision}"
            best[label] = min(best.get(label, 1e18), ms)
            rss[label], ours[label] = max(rss.get(label, 0), peak), effective
    rows.append((name, best, rss, ours))

labels = ["AerialSeg f32", "AerialSeg bf16", "ORT f32", "OV f32", "OV bf16"]
print(f"\n{size}², {threads} threads, lowest of {rounds} rounds' medians of {runs} runs (ms); ratios = ours / theirs")
print("| model | " + " | ".join(labels) + " | f32 / ORT | bf16 / OV bf16 | peak RSS ours f32 / bf16 |")
print("|---|" + "---:|" * (len(labels) + 3))
for name, best, rss, ours in rows:
    cells = [f"{best[l]:.0f}" for l in labels]
    print(f"| {name} | " + " | ".join(cells)
          + f" | {best['AerialSeg f32'] / best['ORT f32']:.2f} | {best['AerialSeg bf16'] / best['OV bf16']:.2f}"
          + f" | {rss['AerialSeg f32']:.0f} / {rss['AerialSeg bf16']:.0f} MiB |")
EOF
