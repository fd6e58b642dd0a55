#!/usr/bin/env python3
"""A trivial baseline for the tree-canopy demo: an excess-green threshold, tuned on the training blocks.

    python3 greenness_baseline.py OUT.tif        (needs GDAL's Python bindings: apt install python3-gdal)

ExG = 2G - R - B on the 8-bit bands; a pixel is tree when ExG > threshold. The threshold is the integer
in -40..120 that maximises the tree IoU on the training blocks (data/training_truth.tif, made by
make_split.py: held-out blocks and the collar are 255 there, so they take no part in the choice). The map
is then written for the whole tile (0 = background, 1 = tree, 255 = nodata collar) on the orthophoto's
grid, so `aerialseg evaluate OUT.tif data/heldout_truth.tif` scores it on the held-out blocks exactly
like the model's labels.
"""
import sys

import numpy as np
from osgeo import gdal

HERE = __file__.rsplit('/', 1)[0] if '/' in __file__ else '.'


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'greenness_baseline.tif'
    image = gdal.Open(f'{HERE}/data/ortho_10cm.tif')
    rgb = image.ReadAsArray().astype(np.int32)
    collar = (rgb == 255).all(axis=0)  # the nodata declared by data/ortho_10cm.vrt
    exg = 2 * rgb[1] - rgb[0] - rgb[2]

    training = gdal.Open(f'{HERE}/data/training_truth.tif').ReadAsArray()
    train = training != 255  # training blocks, collar excluded
    best = (-1.0, 0)
    for t in range(-40, 121):
        pred = exg[train] > t
        tree = training[train] == 1
        union = np.logical_or(pred, tree).sum()
        iou = np.logical_and(pred, tree).sum() / union if union else 0.0
        best = max(best, (iou, t))
    iou, threshold = best
    labels = (exg > threshold).astype(np.uint8)
    labels[collar] = 255

    driver = gdal.GetDriverByName('GTiff')
    ds = driver.Create(out, image.RasterXSize, image.RasterYSize, 1, gdal.GDT_Byte, ['COMPRESS=DEFLATE'])
    ds.SetGeoTransform(image.GetGeoTransform())
    ds.SetProjection(image.GetProjection())
    ds.GetRasterBand(1).WriteArray(labels)
    ds.GetRasterBand(1).SetNoDataValue(255)
    ds = None
    print(f'ExG threshold {threshold} (training-block tree IoU {iou:.4f}) -> {out}')


if __name__ == '__main__':
    main()
