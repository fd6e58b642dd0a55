#!/usr/bin/env python3
"""Trains the tree-canopy demo model with mmsegmentation 1.2.2 on the CPU (a manual step, not CI).

    bash ../../../shared/tools/mmseg-venv.sh            # or any env with mmsegmentation 1.2.2
    swift build -c release                                # from the project root: builds aerialseg
    python3 make_split.py                                 # the block split (its outputs are committed)
    nice -n 19 ~/.venvs/mmseg/bin/python train.py         # from Examples/tree-canopy

1. `aerialseg tile` cuts data/train_blocks.vrt (the orthophoto's training blocks only: held-out blocks and
   the white collar are nodata 255) and data/training_truth.tif (0 = background, 1 = tree, 255 on held-out
   blocks and the collar) into 512-pixel crops with stride 128; nodata pixels become label 255 (ignored by
   the loss) and crops with less than 5 % labelled pixels are skipped. No pixel of a held-out block is in
   any crop, image or label.
2. mmengine's Runner trains tree_canopy_config.py (max_iters iterations; TREE_CANOPY_ITERS overrides it)
   with RandomRot90, registered below. TREE_CANOPY_DEADLINE (a Unix time) is a wall-clock budget for
   shared machines: when the speed of the last 200 iterations says the schedule would end later, the
   schedule is shortened (and lengthened back, up to max_iters, when the machine frees up); the poly
   decay is re-aimed at the new end, so the learning rate still reaches its floor. The summary records
   every change. A checkpoint is kept every 200 iterations for model selection, on the training
   blocks only (`aerialseg run --checkpoint work/train/iter_N.pth` then `aerialseg evaluate` against
   data/training_truth.tif; README.md).
3. The last checkpoint is slimmed to its state_dict and class metadata and saved as
   tree_canopy_dlv3p_r18w32.pth; training_summary.json records the schedule, the loss curve, timing,
   versions and the SHA-256 of every input. TREE_CANOPY_PICK=iter_N.pth (with TREE_CANOPY_SECONDS, the
   run's wall time) slims an earlier checkpoint of the same work dir instead, without training.
The held-out blocks (data/heldout_blocks.tif) are never seen in training: README.md evaluates them.
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
WORK = os.environ.get('TREE_CANOPY_WORK', os.path.join(HERE, 'work'))  # crops and mmengine's work dir
CROPS = os.path.join(WORK, 'crops')
IMAGE = os.path.join(HERE, 'data', 'train_blocks.vrt')  # training blocks only; the rest is nodata 255
MASK = os.path.join(HERE, 'data', 'training_truth.tif')  # 255 on held-out blocks and the collar
CHECKPOINT = os.path.join(HERE, 'tree_canopy_dlv3p_r18w32.pth')
STRIDE = 128  # 512-pixel crops every 128 pixels: more crop positions for the random crops to start from


def register_rot90():
    """mmseg 1.2.2 has no plain 90-degree rotation (RandomRotate interpolates and pads): this one is exact."""
    import numpy as np
    from mmcv.transforms import BaseTransform
    from mmseg.registry import TRANSFORMS

    @TRANSFORMS.register_module(force=True)
    class RandomRot90(BaseTransform):
        """Rotates the image and every segmentation map by k * 90 degrees, k uniform in 0..3."""

        def transform(self, results):
            k = np.random.randint(4)
            if k:
                results['img'] = np.ascontiguousarray(np.rot90(results['img'], k, axes=(0, 1)))
                for key in results.get('seg_fields', []):
                    results[key] = np.ascontiguousarray(np.rot90(results[key], k, axes=(0, 1)))
                results['img_shape'] = results['img'].shape[:2]
            return results


def deadline_hook(deadline, planned):
    """Shortens the schedule when the measured speed would miss `deadline` (Unix time)."""
    from mmengine.hooks import Hook

    class Deadline(Hook):
        priority = 'LOWEST'

        def __init__(self, planned):
            self.planned = planned
            self.times = []
            self.changes = []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.times.append(time.time())

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            done = runner.iter + 1
            if len(self.times) < 41 or done % 20:
                return
            recent = self.times[-201:]  # the speed of the last (up to) 200 iterations
            per_iter = (recent[-1] - recent[0]) / (len(recent) - 1)
            fits = done + int((deadline - time.time()) / per_iter)
            loop = runner.train_loop
            if fits < loop.max_iters:  # shorten, never below 20 more iterations
                end = max(fits, min(loop.max_iters, done + 21))
            else:  # lengthen back towards the plan when the machine frees up
                end = min(self.planned, fits)
            if abs(end - loop.max_iters) > 20:
                loop._max_iters = end
                for s in runner.param_schedulers:
                    if type(s).__name__ == 'PolyLR':  # its decay is recursive: it re-aims at the new end
                        s.end = end
                        s.total_iters = end - s.begin - 1
                self.changes.append(dict(at_iter=done, new_max_iters=end, seconds_per_iter=round(per_iter, 2)))
                runner.logger.info(f'deadline: {per_iter:.2f} s/iter, schedule now ends at {end} iterations')

    return Deadline(planned)


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def main():
    threads = int(os.environ.get('TREE_CANOPY_THREADS', '2'))
    tile = [AERIALSEG, 'tile', IMAGE, '--labels', MASK, '--size', '512', '--stride', str(STRIDE),
            '--skip-empty', '0.05', '--output', CROPS, '--json']
    print('$', ' '.join(tile), flush=True)
    crops = json.loads(subprocess.run(tile, check=True, capture_output=True, text=True).stdout)
    crops['outputDirectory'] = os.path.relpath(CROPS, HERE)

    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    import mmseg
    from mmengine.config import Config
    from mmengine.runner import Runner
    register_rot90()

    cfg = Config.fromfile(os.path.join(HERE, 'tree_canopy_config.py'))
    cfg.train_dataloader.dataset.data_root = CROPS
    if 'TREE_CANOPY_ITERS' in os.environ:
        iters = int(os.environ['TREE_CANOPY_ITERS'])
        cfg.train_cfg.max_iters = iters
        cfg.train_cfg.val_interval = iters + 1
        cfg.param_scheduler[1].end = iters
    cfg.work_dir = os.path.join(WORK, 'train')
    planned = cfg.train_cfg.max_iters
    runner = Runner.from_cfg(cfg)
    deadline = deadline_hook(float(os.environ['TREE_CANOPY_DEADLINE']), planned) if 'TREE_CANOPY_DEADLINE' in os.environ else None
    if deadline:
        runner.register_hook(deadline)
    start = time.time()
    if os.environ.get('TREE_CANOPY_PICK'):  # slim an already trained checkpoint (model selection), no training
        seconds = float(os.environ.get('TREE_CANOPY_SECONDS', 'nan'))
        iterations = int(os.environ['TREE_CANOPY_PICK'].split('_')[-1].split('.')[0])
    else:
        runner.train()
        seconds = time.time() - start
        iterations = runner.iter
    picked = os.path.join(cfg.work_dir, os.environ.get('TREE_CANOPY_PICK') or f'iter_{iterations}.pth')
    full = torch.load(picked, map_location='cpu', weights_only=False)
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
    losses = [r for r in losses if r.get('iter', 0) <= iterations]  # up to the checkpoint kept
    summary = dict(
        model='DeepLabV3+ (DepthwiseSeparableASPPHead) on ResNetV1c-18 D8, stem/base channels 32, 2 classes',
        config='tree_canopy_config.py',
        schedule=dict(iterations=iterations, planned_iterations=planned,
                      deadline_changes=deadline.changes if deadline else [],
                      batch_size=cfg.train_dataloader.batch_size, crop=list(cfg.crop_size),
                      optimizer=f"AdamW lr {cfg.optim_wrapper.optimizer.lr:g} wd {cfg.optim_wrapper.optimizer.weight_decay:g}, "
                                f"{cfg.param_scheduler[0].end}-iter warm-up, poly 0.9",
                      augmentation=[t['type'] + (f" {t.get('ratio_range')}" if 'ratio_range' in t else '')
                                    + (f" cat_max_ratio {t.get('cat_max_ratio')}" if 'cat_max_ratio' in t else '')
                                    for t in cfg.train_pipeline[2:-1]],
                      seed=0, threads=threads),
        checkpoint_picked=os.path.basename(picked),
        crops=crops,
        training_seconds=round(seconds, 1),
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
        loss_every_100=[r for r in losses if r.get('iter', 0) % 100 == 0],
        loss_curve=[[r['iter'], round(r['loss'], 4)] for r in losses],  # every 20 iterations (the logger's interval)
        versions=dict(python=sys.version.split()[0], torch=torch.__version__, mmseg=mmseg.__version__),
        inputs={os.path.relpath(p, HERE): sha256(p) for p in (
            os.path.join(HERE, 'data', 'ortho_10cm.tif'), IMAGE, MASK, os.path.join(HERE, 'data', 'canopy_mask.tif'),
            os.path.join(HERE, 'data', 'heldout_blocks.tif'), os.path.join(HERE, 'tree_canopy_config.py'),
            os.path.abspath(__file__))},
        checkpoint=dict(file=os.path.basename(CHECKPOINT), sha256=sha256(CHECKPOINT),
                        bytes=os.path.getsize(CHECKPOINT)),
    )
    with open(os.path.join(HERE, 'training_summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    print(f'saved {CHECKPOINT} after {seconds:.0f} s', flush=True)


if __name__ == '__main__':
    main()
