#!/usr/bin/env python3
"""The fair spatial split of the OAM-TCD tile: 512 x 512 blocks, every third one held out.

    python3 make_split.py        (from Examples/tree-canopy; needs GDAL's Python bindings + numpy)

Block (bx, by) = (x // 512, y // 512) is held out when (bx + by) % 3 == 0: a diagonal pattern, so the
held-out blocks sample every part of the tile (the left third of the tile is all nodata collar, the
right third mostly valid). Writes, in data/:

  heldout_blocks.tif   1 = pixel of a held-out block, 0 = training block (the whole 2048 x 2048 grid)
  heldout_truth.tif    the canopy mask (0 = background, 1 = tree) on held-out blocks, 255 elsewhere
                       and on the collar: `aerialseg evaluate PRED data/heldout_truth.tif` scores only
                       held-out pixels
  training_truth.tif   the same for the training blocks (255 on held-out blocks and the collar):
                       the labels `aerialseg tile` cuts, and the truth for tuning ExG / model selection
  train_blocks.vrt     the orthophoto with only the training blocks' pixels: held-out blocks are not
                       sources of the VRT, so they read as nodata 255 like the collar. `aerialseg tile`
                       cuts this, so no held-out pixel can reach a training crop.

All rasters are uint8, DEFLATE-compressed, on the orthophoto's grid, nodata 255. Prints the pixel counts.
"""
import os

import numpy as np
from osgeo import gdal

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, 'data')
BLOCK = 512


def heldout(bx, by):
    return (bx + by) % 3 == 0


def write(path, array, like, nodata=None):
    ds = gdal.GetDriverByName('GTiff').Create(path, like.RasterXSize, like.RasterYSize, 1, gdal.GDT_Byte,
                                              ['COMPRESS=DEFLATE', 'PREDICTOR=2', 'TILED=YES'])
    ds.SetGeoTransform(like.GetGeoTransform())
    ds.SetProjection(like.GetProjection())
    band = ds.GetRasterBand(1)
    band.WriteArray(array)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    ds = None


def training_vrt(path, image, blocks_x, blocks_y):
    w, h = image.RasterXSize, image.RasterYSize
    gt = ', '.join(f'{v:.16e}' for v in image.GetGeoTransform())
    srs = image.GetProjection().replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace('"', '&quot;')
    lines = [f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">',
             '  <!-- made by make_split.py: the training blocks ((x//512 + y//512) % 3 != 0) of ortho_10cm.tif;'
             ' held-out blocks have no source and read as nodata 255 -->',
             f'  <SRS dataAxisToSRSAxisMapping="1,2">{srs}</SRS>',
             f'  <GeoTransform>{gt}</GeoTransform>']
    for b, colour in enumerate(('Red', 'Green', 'Blue'), start=1):
        lines += [f'  <VRTRasterBand dataType="Byte" band="{b}">',
                  '    <NoDataValue>255</NoDataValue>',
                  f'    <ColorInterp>{colour}</ColorInterp>']
        for by in range(blocks_y):
            for bx in range(blocks_x):
                if heldout(bx, by):
                    continue
                x, y = bx * BLOCK, by * BLOCK
                bw, bh = min(BLOCK, w - x), min(BLOCK, h - y)
                lines += ['    <SimpleSource>',
                          '      <SourceFilename relativeToVRT="1">ortho_10cm.tif</SourceFilename>',
                          f'      <SourceBand>{b}</SourceBand>',
                          f'      <SrcRect xOff="{x}" yOff="{y}" xSize="{bw}" ySize="{bh}" />',
                          f'      <DstRect xOff="{x}" yOff="{y}" xSize="{bw}" ySize="{bh}" />',
                          '    </SimpleSource>']
        lines.append('  </VRTRasterBand>')
    lines.append('</VRTDataset>')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def main():
    image = gdal.Open(os.path.join(DATA, 'ortho_10cm.tif'))
    rgb = image.ReadAsArray()
    truth = gdal.Open(os.path.join(DATA, 'canopy_mask.tif')).ReadAsArray()
    h, w = truth.shape
    valid = ~(rgb == 255).all(axis=0)  # the collar, as data/ortho_10cm.vrt declares it (every band 255)
    y, x = np.mgrid[0:h, 0:w]
    held = heldout(x // BLOCK, y // BLOCK)

    write(os.path.join(DATA, 'heldout_blocks.tif'), held.astype(np.uint8), image)
    write(os.path.join(DATA, 'heldout_truth.tif'), np.where(held & valid, truth, 255).astype(np.uint8), image, 255)
    write(os.path.join(DATA, 'training_truth.tif'), np.where(~held & valid, truth, 255).astype(np.uint8), image, 255)
    training_vrt(os.path.join(DATA, 'train_blocks.vrt'), image, (w + BLOCK - 1) // BLOCK, (h + BLOCK - 1) // BLOCK)

    check = gdal.Open(os.path.join(DATA, 'train_blocks.vrt')).ReadAsArray()
    assert ((check == 255).all(axis=0) == (held | ~valid)).all(), 'train_blocks.vrt: nodata is not held-out + collar'

    for name, area in (('held-out', held & valid), ('training', ~held & valid)):
        print(f'{name} blocks: {area.sum()} of {valid.sum()} valid px ({100 * area.sum() / valid.sum():.1f} %), '
              f'tree {100 * (truth[area] == 1).mean():.2f} %')


if __name__ == '__main__':
    main()
