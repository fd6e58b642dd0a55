#!/usr/bin/env python3
"""How much accuracy a bf16 Winograd F(4x4, 3x3) would lose, against a direct bf16 convolution.

    python3 Examples/bench/winograd-bf16-error.py      # needs numpy only

Why the README says the 3x3 layers stay f32 Winograd in `--precision bf16` (issue #14): oneDNN 2.6
has no bf16 Winograd kernel, and building one (our transforms around a bf16 matmul) would round the
transformed inputs V = Bᵀ d B and weights U = G g Gᵀ to bf16, whose values the transforms have
already mixed (coefficients up to 5 in Bᵀ, 8 in Aᵀ). This models one 4x4 output tile of a
256 -> 64-channel layer on post-ReLU inputs, Lavin's F(4,3) matrices (points 0, ±1, ±2), products
accumulated in f32 as the kernels do, and reports the error relative to Σ|w·x| (the scale our
tests use) and to |exact|:

    direct bf16      mean 8.9e-05, max 3.5e-04 of Σ|w·x|
    Winograd bf16    mean 5.6e-04, max 5.0e-03 of Σ|w·x|   (6x and 14x worse)
    Winograd, only its sums rounded to f32: mean 6.0e-09, max 1.0e-07 (the transforms' own error
    in f32 is measured by FastBackendTests against the naive convolution: within 1e-5)
"""
import numpy as np


def bf16(a):
    """Round to bfloat16 (nearest, ties to even), returned as float32."""
    bits = np.asarray(a, np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)


BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
               [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64)
G = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
              [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64)

rng = np.random.default_rng(0)
C, K = 256, 64
d = np.maximum(rng.standard_normal((C, 6, 6)), 0).astype(np.float32)   # one 6x6 input patch
g = (rng.standard_normal((K, C, 3, 3)) * 0.05).astype(np.float32)

exact, scale, direct = (np.zeros((K, 4, 4)) for _ in range(3))
dd, gg = bf16(d).astype(np.float64), bf16(g).astype(np.float64)
for y in range(4):
    for x in range(4):
        patch = d[:, y:y + 3, x:x + 3].astype(np.float64)
        exact[:, y, x] = np.einsum('kcij,cij->k', g.astype(np.float64), patch)
        scale[:, y, x] = np.einsum('kcij,cij->k', np.abs(g.astype(np.float64)), np.abs(patch))
        direct[:, y, x] = np.einsum('kcij,cij->k', gg, dd[:, y:y + 3, x:x + 3])


def winograd(rounded):
    V = np.einsum('ai,cij,bj->cab', BT, d.astype(np.float64), BT)
    U = np.einsum('ai,kcij,bj->kcab', G, g.astype(np.float64), G)
    if rounded:
        V, U = bf16(V).astype(np.float64), bf16(U).astype(np.float64)
    M = np.einsum('kcab,cab->kab', U, V).astype(np.float32).astype(np.float64)
    return np.einsum('ia,kab,jb->kij', AT, M, AT)


for name, out in [('direct bf16', direct), ('Winograd bf16', winograd(True)), ('Winograd f32 sums', winograd(False))]:
    e = np.abs(out - exact) / scale
    print(f"{name:17}  mean {e.mean():.1e}, max {e.max():.1e} of Σ|w·x|; "
          f"median {np.median(np.abs(out - exact) / np.abs(exact)):.1e} of |exact|")
