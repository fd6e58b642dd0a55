#!/usr/bin/env python3
"""Proves the deploy path: mmsegmentation's own inference and `aerialseg run` give the same labels.

    ~/.venvs/mmseg/bin/python mmseg_agreement.py          (from Examples/tree-canopy, after train.py)

On a held-out block of the orthophoto (block (3, 0): x 1536-2047, y 0-511, never seen in training, see
make_split.py):
1. gdal_translate cuts the window as GeoTIFF (for aerialseg) and PNG (for mmseg, read with cv2 as mmseg does);
2. mmseg's `init_model` + `inference_model` run the checkpoint with the config's test_cfg (slide 512/341);
3. `aerialseg run Pipelines/tree-canopy.yaml --blend mean` runs the same checkpoint on the GeoTIFF window
   (mean: mmseg's plain average of overlapping windows; the pipeline itself blends with hann);
4. the two label maps are compared pixel by pixel.
mmseg's labels are saved to Tests/Fixtures/tree-canopy/heldout_mmseg_labels.png (the oracle of the
swift test that repeats step 3-4 in CI) with the window in heldout_window.json.
"""
import json
import os
import subprocess
import tempfile

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
AERIALSEG = os.environ.get('AERIALSEG', os.path.join(ROOT, '.build', 'release', 'aerialseg'))
CHECKPOINT = os.path.join(HERE, 'tree_canopy_dlv3p_r18w32.pth')
FIXTURES = os.path.join(ROOT, 'Tests', 'Fixtures', 'tree-canopy')
WINDOW = dict(x=1536, y=0, width=512, height=512)  # held-out block (3, 0)


def main():
    import torch
    torch.set_num_threads(2)
    import mmseg
    from mmseg.apis import inference_model, init_model

    tmp = tempfile.mkdtemp(prefix='agreement-')
    src = os.path.join(HERE, 'data', 'ortho_10cm.tif')
    win = [str(WINDOW[k]) for k in ('x', 'y', 'width', 'height')]
    tif, png = os.path.join(tmp, 'heldout.tif'), os.path.join(tmp, 'heldout.png')
    subprocess.run(['gdal_translate', '-q', '-srcwin', *win, src, tif], check=True)
    subprocess.run(['gdal_translate', '-q', '-of', 'PNG', '-srcwin', *win, src, png], check=True)

    model = init_model(os.path.join(HERE, 'tree_canopy_config.py'), CHECKPOINT, device='cpu')
    result = inference_model(model, cv2.imread(png))  # BGR, as mmseg's LoadImageFromFile reads it
    mm = result.pred_sem_seg.data[0].numpy().astype(np.uint8)

    out = os.path.join(tmp, 'out')
    subprocess.run([AERIALSEG, 'run', os.path.join(ROOT, 'Pipelines', 'tree-canopy.yaml'), '--input', tif,
                    '--output', out, '--checkpoint', CHECKPOINT, '--blend', 'mean', '--quiet'], check=True)
    labels = os.path.join(out, 'heldout.labels.tif')
    raw = os.path.join(tmp, 'labels.raw')  # raw class ids (a PNG would carry the palette, which cv2 expands)
    subprocess.run(['gdal_translate', '-q', '-of', 'ENVI', labels, raw], check=True)
    ours = np.fromfile(raw, dtype=np.uint8).reshape(mm.shape)

    equal = int((ours == mm).sum())
    agreement = equal / mm.size
    os.makedirs(FIXTURES, exist_ok=True)
    cv2.imwrite(os.path.join(FIXTURES, 'heldout_mmseg_labels.png'), mm)
    with open(os.path.join(FIXTURES, 'heldout_window.json'), 'w') as f:
        json.dump(dict(window=WINDOW, source='Examples/tree-canopy/data/ortho_10cm.tif',
                       checkpoint='Examples/tree-canopy/tree_canopy_dlv3p_r18w32.pth',
                       config='Examples/tree-canopy/tree_canopy_config.py (test_cfg slide 512/341)',
                       block='(3, 0) of make_split.py: held out from training', aerialseg_blend='mean',
                       mmseg_version=mmseg.__version__, torch_version=torch.__version__,
                       tree_pixels_mmseg=int((mm == 1).sum()), agreement_with_aerialseg=agreement), f, indent=2)
        f.write('\n')
    print(f'labels equal on {equal} of {mm.size} pixels: {100 * agreement:.4f} % '
          f'(tree pixels: mmseg {(mm == 1).sum()}, aerialseg {(ours == 1).sum()})')


if __name__ == '__main__':
    main()
