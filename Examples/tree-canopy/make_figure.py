#!/usr/bin/env python3
"""The README figure: the orthophoto with AerialSeg's tree labels (left) and the reference mask (right).

    python3 make_figure.py OUT_DIR/ortho_10cm.labels.tif figure.jpg    (GDAL's Python bindings + numpy)

Both panels are 2048² pixels shown at 1/3 scale; the dashed line marks the held-out right third.
"""
import sys

import numpy as np
from osgeo import gdal

HERE = __file__.rsplit('/', 1)[0] if '/' in __file__ else '.'
SIZE = 683


def read(path, bands=None):
    ds = gdal.Open(path)
    return ds.ReadAsArray(buf_xsize=SIZE, buf_ysize=SIZE, resample_alg=gdal.GRIORA_NearestNeighbour)


def panel(rgb, labels, colour):
    out = rgb.astype(np.float32).copy()
    tree = labels == 1
    for c in range(3):
        out[c][tree] = 0.45 * out[c][tree] + 0.55 * colour[c]
    x = SIZE * 2 // 3
    out[:, ::8, x] = 255
    out[:, 1::8, x] = 255
    return out.astype(np.uint8)


def main():
    labels_path, out = sys.argv[1], sys.argv[2]
    rgb = read(f'{HERE}/data/ortho_10cm.tif')
    left = panel(rgb, read(labels_path), (0, 200, 0))
    right = panel(rgb, read(f'{HERE}/data/canopy_mask.tif'), (255, 140, 0))
    gap = np.full((3, SIZE, 12), 255, np.uint8)
    image = np.concatenate([left, gap, right], axis=2)
    mem = gdal.GetDriverByName('MEM').Create('', image.shape[2], image.shape[1], 3, gdal.GDT_Byte)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(image[b])
    gdal.GetDriverByName('JPEG').CreateCopy(out, mem, options=['QUALITY=85'])
    print(out)


if __name__ == '__main__':
    main()
