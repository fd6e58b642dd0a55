#!/usr/bin/env python3
"""A trivial baseline for the tree-canopy demo: an excess-green threshold, tuned on the training area.

    python3 greenness_baseline.py OUT.tif        (needs GDAL's Python bindings: apt install python3-gdal)

ExG = 2G - R - B on the 8-bit bands. The threshold is the one that maximises the tree IoU on the left two
thirds of the tile (the training area of train.py, collar excluded); the map is then written for the whole
tile (0 = background, 1 = tree, 255 = nodata collar) on the orthophoto's grid, so `aerialseg evaluate` can
score it on the held-out right third exactly like the model's labels.
"""
import sys

import numpy as np
from osgeo import gdal

HERE = __file__.rsplit('/', 1)[0] if '/' in __file__ else '.'
TRAIN_COLUMNS = 1366


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'greenness_baseline.tif'
    image = gdal.Open(f'{HERE}/data/ortho_10cm.tif')
    rgb = image.ReadAsArray().astype(np.int32)
    truth = gdal.Open(f'{HERE}/data/canopy_mask.tif').ReadAsArray()
    collar = (rgb == 255).all(axis=0)  # the nodata declared by data/ortho_10cm.vrt
    exg = 2 * rgb[1] - rgb[0] - rgb[2]

    train = np.zeros_like(collar)
    train[:, :TRAIN_COLUMNS] = True
    train &= ~collar
    best = (-1.0, 0)
    for t in range(-40, 121):
        pred = exg[train] > t
        tree = truth[train] == 1
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
    print(f'ExG threshold {threshold} (training-area tree IoU {iou:.4f}) -> {out}')


if __name__ == '__main__':
    main()
