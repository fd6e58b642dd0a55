#!/usr/bin/env python3
"""The README figures (GDAL's Python bindings + numpy):

    python3 make_figure.py OUT_DIR EXG.tif

OUT_DIR is the output folder of the README's `aerialseg run` (ortho_10cm.labels.tif,
unseen_oam_10cm.labels.tif); EXG.tif the map of greenness_baseline.py. Writes

  figure.jpg         held-out block (3, 0) of the OAM-TCD tile (x 1536-2047, y 0-511), full resolution:
                     image | reference (orange) | this model (green) | ExG threshold (magenta)
  figure_unseen.jpg  the unseen Manila tile (no labels), 2048² at about 1/3.4 scale: image | this model (green) |
                     ExG with the same threshold (magenta)
"""
import os
import sys

import numpy as np
from osgeo import gdal

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCK = (1536, 0, 512, 512)  # held-out block (3, 0) of make_split.py
UNSEEN = 600  # 2048 / 3.4


def read(path, window=None, size=None, bands=None):
    ds = gdal.Open(path)
    x, y, w, h = window or (0, 0, ds.RasterXSize, ds.RasterYSize)
    bw, bh = size or (w, h)
    a = ds.ReadAsArray(x, y, w, h, buf_xsize=bw, buf_ysize=bh, resample_alg=gdal.GRIORA_NearestNeighbour,
                       band_list=bands)
    return a if a.ndim == 3 else a[None]


def overlay(rgb, labels, colour, alpha=0.55):
    out = rgb.astype(np.float32).copy()
    tree = labels[0] == 1
    for c in range(3):
        out[c][tree] = (1 - alpha) * out[c][tree] + alpha * colour[c]
    return out.astype(np.uint8)


def save(panels, path, quality=82):
    gap = np.full((3, panels[0].shape[1], 8), 255, np.uint8)
    parts = []
    for p in panels:
        parts += [p, gap]
    image = np.concatenate(parts[:-1], axis=2)
    mem = gdal.GetDriverByName('MEM').Create('', image.shape[2], image.shape[1], 3, gdal.GDT_Byte)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(image[b])
    gdal.GetDriverByName('JPEG').CreateCopy(path, mem, options=[f'QUALITY={quality}'])
    print(path, os.path.getsize(path), 'bytes')


def main():
    out_dir, exg = sys.argv[1], sys.argv[2]
    data = os.path.join(HERE, 'data')

    rgb = read(os.path.join(data, 'ortho_10cm.tif'), BLOCK)
    save([rgb,
          overlay(rgb, read(os.path.join(data, 'heldout_truth.tif'), BLOCK), (255, 140, 0)),
          overlay(rgb, read(os.path.join(out_dir, 'ortho_10cm.labels.tif'), BLOCK), (0, 200, 0)),
          overlay(rgb, read(exg, BLOCK), (230, 0, 230))],
         os.path.join(HERE, 'figure.jpg'))

    size = (UNSEEN, UNSEEN)
    src = os.path.join(data, 'unseen_oam_10cm.tif')
    rgb = read(src, size=size, bands=[1, 2, 3])
    full = read(src, bands=[1, 2, 3]).astype(np.int32)
    threshold = int(os.environ.get('EXG_THRESHOLD', '25'))  # greenness_baseline.py's, tuned on the training blocks
    green = (2 * full[1] - full[0] - full[2] > threshold).astype(np.uint8)[None]
    idx = np.arange(UNSEEN) * full.shape[1] // UNSEEN  # nearest neighbour, like GDAL's buffer reads
    green = green[:, idx][:, :, idx]
    # the collar (nodata 0 in data/unseen_oam_10cm.vrt) is no tree for ExG either
    green[:, (read(src, size=size, bands=[1, 2, 3]) == 0).all(axis=0)] = 0
    save([rgb,
          overlay(rgb, read(os.path.join(out_dir, 'unseen_oam_10cm.labels.tif'), size=size), (0, 200, 0)),
          overlay(rgb, green, (230, 0, 230))],
         os.path.join(HERE, 'figure_unseen.jpg'))


if __name__ == '__main__':
    main()
