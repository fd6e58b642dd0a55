#!/usr/bin/env python3
"""Trains the tree-canopy demo model with mmsegmentation 1.2.2 on the CPU (a manual step, not CI).

    bash ../../../shared/tools/mmseg-venv.sh            # or any env with mmsegmentation 1.2.2
    swift build -c release                                # from the project root: builds aerialseg
    ~/.venvs/mmseg/bin/python train.py                    # from Examples/tree-canopy

1. `aerialseg tile` cuts the left two thirds of data/ortho_10cm.vrt (the orthophoto with its white
   collar declared nodata; columns 0-1365, i.e. x < 2/3 of the width) and data/canopy_mask.tif
   (0 = background, 1 = tree) into 512-pixel crops with stride 256; collar pixels become label 255
   (ignored by the loss) and crops with less than 5 % labelled pixels are skipped.
2. mmengine's Runner trains tree_canopy_config.py for a fixed schedule (TREE_CANOPY_ITERS, default 600).
3. The last checkpoint is slimmed to its state_dict and class metadata and saved as
   tree_canopy_dlv3p_r18w32.pth; training_summary.json records the schedule, losses, timing,
   versions and the SHA-256 of every input.
The right third of the orthophoto is never seen in training: README.md evaluates it.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
AERIALSEG = os.environ.get('AERIALSEG', os.path.join(ROOT, '.build', 'release', 'aerialseg'))
WORK = os.path.join(HERE, 'work')
CROPS = os.path.join(WORK, 'crops')
IMAGE = os.path.join(HERE, 'data', 'ortho_10cm.vrt')  # the GeoTIFF with its white collar declared nodata
MASK = os.path.join(HERE, 'data', 'canopy_mask.tif')
CHECKPOINT = os.path.join(HERE, 'tree_canopy_dlv3p_r18w32.pth')
TRAIN_COLUMNS = 1366  # columns 0..1365 are below 2/3 of the 2048-pixel width


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def main():
    threads = int(os.environ.get('TREE_CANOPY_THREADS', '2'))
    tile = [AERIALSEG, 'tile', IMAGE, '--labels', MASK, '--size', '512', '--stride', '256',
            '--window', f'0,0,{TRAIN_COLUMNS},2048', '--skip-empty', '0.05', '--output', CROPS, '--json']
    print('$', ' '.join(tile), flush=True)
    crops = json.loads(subprocess.run(tile, check=True, capture_output=True, text=True).stdout)
    crops['outputDirectory'] = os.path.relpath(CROPS, HERE)

    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    import mmseg
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(os.path.join(HERE, 'tree_canopy_config.py'))
    cfg.train_dataloader.dataset.data_root = CROPS
    if 'TREE_CANOPY_ITERS' in os.environ:  # smoke tests only; the committed model uses the config's schedule
        iters = int(os.environ['TREE_CANOPY_ITERS'])
        cfg.train_cfg.max_iters = iters
        cfg.train_cfg.val_interval = iters + 1
        cfg.param_scheduler[1].end = iters
        cfg.default_hooks.checkpoint.interval = iters
    cfg.work_dir = os.path.join(WORK, 'train')
    runner = Runner.from_cfg(cfg)
    start = time.time()
    runner.train()
    seconds = time.time() - start

    last = os.path.join(cfg.work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    full = torch.load(last, map_location='cpu', weights_only=False)
    state = {k: v.float().contiguous() for k, v in full['state_dict'].items()}
    meta = dict(dataset_meta=dict(classes=['background', 'tree'], palette=[[0, 0, 0], [0, 160, 0]]),
                mmseg_version=mmseg.__version__, note='AerialSeg tree-canopy demo, see train.py')
    torch.save(dict(meta=meta, state_dict=state), CHECKPOINT)

    losses = []
    for root, _, files in os.walk(cfg.work_dir):
        for name in files:
            if name == 'scalars.json':
                with open(os.path.join(root, name)) as f:
                    losses += [json.loads(line) for line in f if '"loss"' in line]
    losses.sort(key=lambda r: r.get('iter', 0))
    summary = dict(
        model='DeepLabV3+ (DepthwiseSeparableASPPHead) on ResNetV1c-18 D8, stem/base channels 32, 2 classes',
        config='tree_canopy_config.py',
        schedule=dict(iterations=cfg.train_cfg.max_iters, batch_size=cfg.train_dataloader.batch_size,
                      crop=list(cfg.crop_size), optimizer='AdamW lr 2e-3 wd 1e-4, 30-iter warm-up, poly 0.9',
                      seed=0, threads=threads),
        crops=crops,
        training_seconds=round(seconds, 1),
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
        loss_every_100=[r for r in losses if r.get('iter', 0) % 100 == 0],
        versions=dict(python=sys.version.split()[0], torch=torch.__version__, mmseg=mmseg.__version__),
        inputs={os.path.relpath(p, HERE): sha256(p) for p in (os.path.join(HERE, 'data', 'ortho_10cm.tif'), IMAGE, MASK, os.path.join(HERE, 'tree_canopy_config.py'))},
        checkpoint=dict(file=os.path.basename(CHECKPOINT), sha256=sha256(CHECKPOINT),
                        bytes=os.path.getsize(CHECKPOINT)),
    )
    with open(os.path.join(HERE, 'training_summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    print(f'saved {CHECKPOINT} after {seconds:.0f} s', flush=True)


if __name__ == '__main__':
    main()
