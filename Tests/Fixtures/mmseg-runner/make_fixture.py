#!/usr/bin/env python3
"""Makes the mmseg-runner fixture: a FULL checkpoint written by mmengine's training Runner, and mmseg's
own inference of it on an unseen orthophoto window (the oracle). A manual step, not part of CI.

    bash ../shared/tools/mmseg-venv.sh             # mmsegmentation 1.2.2, mmengine 0.10.7, mmcv-lite 2.1.0,
                                                   # torch (CPU) in ~/.venvs/mmseg
    ~/.venvs/mmseg/bin/python Tests/Fixtures/mmseg-runner/make_fixture.py          # from the project root
    ~/.venvs/mmseg/bin/python Tests/Fixtures/mmseg-runner/make_fixture.py --oracle-only   # step 3 only

Options: --iters N (default 150), --threads T (default 2), --work DIR (default /tmp/mmseg-runner-fixture,
deleted and recreated), --aerialseg BIN (default $AERIALSEG, else .build/release/aerialseg, else
.build/debug/aerialseg). Made with: mmsegmentation 1.2.2, mmengine 0.10.7, mmcv-lite 2.1.0,
torch 2.15.0 (CPU), numpy 2.4.6, opencv 5.1.0, GDAL's gdal_translate; the exact values are in oracle.json.

1. Training crops, as the tree-canopy demo (Examples/tree-canopy/train.py) cuts them: a VRT of
   Tests/Fixtures/rasters/ortho_10cm.tif with its white collar declared nodata
   (`gdal_translate -of VRT -a_nodata 255`), then `aerialseg tile <vrt> --labels canopy_mask.tif
   --size 256 --stride 256 --skip-empty 0.05` over the whole tile (collar pixels become label 255,
   ignored by the loss; crops with < 5 % labelled pixels are skipped).
2. Writes config.py (a complete, self-contained mmseg 1.x config: narrow DeepLabV3+ on ResNetV1c-18 D8,
   stem/base channels 16, a tiny FCNHead auxiliary head, BN, SGD with momentum, seed 0) and trains it with
   mmengine's `Runner.from_cfg(cfg).train()` (run with the work folder as the current directory, so the
   config and the checkpoint's meta carry no absolute paths). The checkpoint is copied as it is — meta
   (cfg text, dataset_meta, seed, time, versions), state_dict, optimizer, message_hub, param_schedulers —
   to iter_<N>.pth; its meta['cfg'] text goes to pretty_text_cfg.py, and the Python globals its pickle
   references (pickletools on archive/data.pkl) go to pickle_globals.txt.
3. The oracle: `mmseg.apis.init_model(config.py, iter_<N>.pth, device='cpu')` + `inference_model` (slide,
   crop 256, stride 171) on a 1024 x 1024 window of Examples/tree-canopy/data/unseen_oam_10cm.tif (another
   OpenAerialMap orthophoto, never seen in training), cut with `gdal_translate -of PNG -srcwin` and read with
   cv2 (BGR, as mmseg's LoadImageFromFile reads it), exactly as Examples/tree-canopy/mmseg_agreement.py does.
   Writes oracle_labels.png (class ids, 8-bit grey), oracle_near_tie.png (1 where the two softmax
   probabilities from mmseg's seg_logits differ by < NEAR_TIE, else 0) and oracle.json.
"""
import argparse
import builtins
import collections
import glob
import hashlib
import io
import json
import os
import pickletools
import shutil
import subprocess
import sys
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..', '..'))
ORTHO = os.path.join(ROOT, 'Tests', 'Fixtures', 'rasters', 'ortho_10cm.tif')
MASK = os.path.join(ROOT, 'Tests', 'Fixtures', 'rasters', 'canopy_mask.tif')
UNSEEN = os.path.join(ROOT, 'Examples', 'tree-canopy', 'data', 'unseen_oam_10cm.tif')
WINDOW = dict(x=0, y=1024, width=1024, height=1024)  # bottom-left quarter: trees, buildings, buses, river, bridge
NEAR_TIE = 1e-3  # |p_tree - p_background| below this: the label may flip under float32 re-implementation noise
CONFIG_NAME = 'config.py'

CONFIG = '''\
# mmsegmentation 1.2.2 config: a narrow DeepLabV3+ (DepthwiseSeparableASPPHead) on ResNetV1c-18 D8 with
# stem/base channels 16 (a quarter of deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.py), with a tiny FCNHead
# auxiliary head, 2 classes (background, tree), trained from scratch on the CPU by make_fixture.py on
# 256-pixel crops of Tests/Fixtures/rasters/ortho_10cm.tif cut by `aerialseg tile`.
crop_size = (256, 256)
max_iters = {iters}
data_root = 'crops'  # make_fixture.py runs the Runner from the folder holding the crops

norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='DepthwiseSeparableASPPHead',
        in_channels=128,
        in_index=3,
        channels=32,
        dilations=(1, 12, 24, 36),
        c1_in_channels=16,
        c1_channels=8,
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=64,
        in_index=2,
        channels=16,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(256, 256), stride=(171, 171)))

dataset_type = 'BaseSegDataset'
metainfo = dict(classes=('background', 'tree'), palette=[[0, 0, 0], [0, 160, 0]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(256, 256), ratio_range=(1.0, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.9),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomFlip', prob=0.5, direction='vertical'),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
        img_suffix='.png',
        seg_map_suffix='.png',
        ann_file='train.txt',
        reduce_zero_label=False,
        pipeline=train_pipeline))
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr={lr}, momentum=0.9, weight_decay=0.0005),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=10, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=10, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)

default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
work_dir = 'work_dirs/dlv3p_r18w16_tree'
'''


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def run(cmd, **kw):
    print('$', ' '.join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def rel(path):
    return os.path.relpath(path, ROOT)


def find_aerialseg(explicit):
    if explicit:
        return explicit
    if os.environ.get('AERIALSEG'):
        return os.environ['AERIALSEG']
    for kind in ('release', 'debug'):
        path = os.path.join(ROOT, '.build', kind, 'aerialseg')
        if os.path.exists(path):
            return path
    sys.exit('make_fixture.py: no aerialseg binary (swift build first, or pass --aerialseg)')


def pickle_globals(checkpoint):
    """The (module, name) globals the checkpoint's pickle references, with counts, in first-use order."""
    with zipfile.ZipFile(checkpoint) as z:
        name = next(n for n in z.namelist() if n.endswith('/data.pkl'))
        data = z.read(name)
    text = io.StringIO()
    pickletools.dis(data, out=text)
    lines = [l for l in text.getvalue().splitlines() if 'GLOBAL' in l]
    counts = collections.OrderedDict()
    strings = []  # for STACK_GLOBAL (protocol >= 4): the two strings pushed before it
    for op, arg, _ in pickletools.genops(data):
        if op.name == 'GLOBAL':
            module, attr = arg.split(' ', 1)
            key = f'{module}.{attr}'
        elif op.name == 'STACK_GLOBAL':
            key = f'{strings[-2]}.{strings[-1]}'
        else:
            if isinstance(arg, str):
                strings.append(arg)
            continue
        counts[key] = counts.get(key, 0) + 1
    persistent = sum(1 for op, _, _ in pickletools.genops(data) if op.name == 'BINPERSID')
    return name, lines, counts, persistent


def train(args, work, aerialseg):
    iters = args.iters
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    vrt = os.path.join(work, 'ortho_10cm.vrt')
    crops = os.path.join(work, 'crops')
    vrt_cmd = ['gdal_translate', '-q', '-of', 'VRT', '-a_nodata', '255', ORTHO, vrt]
    run(vrt_cmd)
    tile_cmd = [aerialseg, 'tile', vrt, '--labels', MASK, '--size', '256', '--stride', '256',
                '--skip-empty', '0.05', '--output', crops, '--json']
    tiled = json.loads(run(tile_cmd, capture_output=True, text=True).stdout)
    print(json.dumps(tiled), flush=True)

    config = os.path.join(work, CONFIG_NAME)
    with open(config, 'w') as f:
        f.write(CONFIG.format(iters=iters, lr=args.lr))

    import torch
    torch.set_num_threads(args.threads)
    from mmengine.config import Config
    from mmengine.runner import Runner

    os.chdir(work)  # data_root 'crops' and work_dir 'work_dirs/...' are relative to it
    cfg = Config.fromfile(CONFIG_NAME)
    runner = Runner.from_cfg(cfg)
    start = time.time()
    runner.train()
    seconds = time.time() - start
    os.chdir(ROOT)

    work_dir = os.path.join(work, cfg.work_dir)
    checkpoint = os.path.join(work_dir, f'iter_{iters}.pth')
    losses = []
    for path in glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            losses += [json.loads(line) for line in f if '"loss"' in line]
    losses.sort(key=lambda r: r.get('iter', 0))

    for old in glob.glob(os.path.join(HERE, 'iter_*.pth')):
        os.remove(old)
    fixture_ckpt = os.path.join(HERE, f'iter_{iters}.pth')
    shutil.copyfile(checkpoint, fixture_ckpt)
    shutil.copyfile(config, os.path.join(HERE, CONFIG_NAME))

    ckpt = torch.load(fixture_ckpt, map_location='cpu', weights_only=False)
    with open(os.path.join(HERE, 'pretty_text_cfg.py'), 'w') as f:
        f.write(ckpt['meta']['cfg'])
    pkl_name, lines, counts, persistent = pickle_globals(fixture_ckpt)
    with open(os.path.join(HERE, 'pickle_globals.txt'), 'w') as f:
        f.write(f'# Python globals referenced by {pkl_name} of iter_{iters}.pth (torch.save, pickle protocol '
                f'2), from `python -m pickletools`; count = GLOBAL opcodes (memoized re-uses are BINGETs, not '
                f'counted). Tensor storages are {persistent} BINPERSID persistent ids '
                f"('storage', <torch.*Storage>, key, 'cpu', numel) pointing to archive/data/<key>.\n")
        for key, n in counts.items():
            f.write(f'{key}\t{n}\n')
        f.write('\n# raw pickletools lines\n')
        f.write('\n'.join(lines) + '\n')
    training = dict(
        iterations=iters, batch_size=cfg.train_dataloader.batch_size, crop=list(cfg.crop_size),
        optimizer=f'SGD lr {args.lr} momentum 0.9 wd 5e-4, 10-iteration linear warm-up, poly 0.9',
        threads=args.threads, seed=0, seconds=round(seconds, 1),
        loss_first=losses[0] if losses else None, loss_last=losses[-1] if losses else None,
        loss_log=[dict(iter=r['iter'], loss=r['loss'], lr=r['lr']) for r in losses],
        crops=dict(tiled, outputDirectory='<work>/crops'),
        commands=[' '.join(c).replace(work, '<work>').replace(ROOT + '/', '') for c in (vrt_cmd, tile_cmd)]
        + [f'cd <work> && Runner.from_cfg(Config.fromfile("{CONFIG_NAME}")).train()'],
        top_level_keys=list(ckpt.keys()), meta_keys=list(ckpt['meta'].keys()))
    with open(os.path.join(work, 'training.json'), 'w') as f:
        json.dump(training, f, indent=2)
    return training


def oracle(args, work, training):
    import cv2
    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    import mmcv
    import mmengine
    import mmseg
    from mmengine.logging import HistoryBuffer
    from mmseg.apis import inference_model, init_model

    checkpoints = glob.glob(os.path.join(HERE, 'iter_*.pth'))
    assert len(checkpoints) == 1, checkpoints
    checkpoint = checkpoints[0]
    training_iters = int(os.path.basename(checkpoint)[len('iter_'):-len('.pth')])
    config = os.path.join(HERE, CONFIG_NAME)
    os.makedirs(work, exist_ok=True)
    png = os.path.join(work, 'unseen_window.png')
    win = [str(WINDOW[k]) for k in ('x', 'y', 'width', 'height')]
    cut_cmd = ['gdal_translate', '-q', '-of', 'PNG', '-srcwin', *win, UNSEEN, png]
    run(cut_cmd)

    # torch >= 2.6 loads with weights_only=True by default and mmengine 0.10.7's load_checkpoint does not
    # override it, so a full Runner checkpoint (message_hub: HistoryBuffer, numpy arrays and scalars) is
    # refused; allowlist exactly the globals it needs (what a safe loader must accept) instead of turning the
    # safety off.
    allow = [HistoryBuffer, np._core.multiarray._reconstruct, np.ndarray, np.dtype, np._core.multiarray.scalar,
             np.dtypes.Float64DType, np.dtypes.Int64DType, builtins.getattr]
    with torch.serialization.safe_globals(allow):
        model = init_model(config, checkpoint, device='cpu')
    image = cv2.imread(png)  # BGR, as mmseg's LoadImageFromFile reads it (the preprocessor converts to RGB)
    assert image.shape == (WINDOW['height'], WINDOW['width'], 3), image.shape
    result = inference_model(model, image)
    labels = result.pred_sem_seg.data[0].numpy().astype(np.uint8)
    logits = result.seg_logits.data.float()  # (2, H, W), slide-averaged logits
    probs = torch.softmax(logits, dim=0).numpy()
    top2 = np.sort(probs, axis=0)[-2:]
    margin = top2[1] - top2[0]
    near = (margin < NEAR_TIE).astype(np.uint8)
    assert labels.shape == (WINDOW['height'], WINDOW['width'])
    assert (labels == logits.argmax(0).numpy()).all()
    cv2.imwrite(os.path.join(HERE, 'oracle_labels.png'), labels)
    cv2.imwrite(os.path.join(HERE, 'oracle_near_tie.png'), near)

    hist = {str(c): int((labels == c).sum()) for c in range(2)}
    tree = hist['1'] / labels.size
    constant = not 0.05 <= tree <= 0.95
    logit_diff = (logits[1] - logits[0]).numpy()
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=False)
    summary = dict(
        what='mmseg inference (init_model + inference_model) of the full mmengine Runner checkpoint on an '
             'unseen orthophoto window',
        checkpoint=dict(file=os.path.basename(checkpoint), sha256=sha256(checkpoint),
                        bytes=os.path.getsize(checkpoint), top_level_keys=list(ckpt.keys()),
                        meta_keys=list(ckpt['meta'].keys()), dataset_meta=ckpt['meta'].get('dataset_meta')),
        config=dict(file=CONFIG_NAME, sha256=sha256(config),
                    test_cfg=dict(mode='slide', crop_size=[256, 256], stride=[171, 171])),
        window=dict(WINDOW, source=rel(UNSEEN), source_sha256=sha256(UNSEEN)),
        commands=dict(
            fixture=f'~/.venvs/mmseg/bin/python {rel(__file__)} --iters {training_iters} --lr {args.lr} '
                    f'--threads {args.threads}',
            cut=' '.join(cut_cmd).replace(work, '<work>').replace(ROOT + '/', ''),
            inference=f"model = init_model('{CONFIG_NAME}', '{os.path.basename(checkpoint)}', device='cpu'); "
                      "inference_model(model, cv2.imread('unseen_window.png'))"),
        torch_load=dict(weights_only=True, safe_globals=[f'{g.__module__}.{g.__qualname__}' for g in allow],
                        note='torch.serialization.safe_globals around init_model: torch >= 2.6 refuses the full '
                             'Runner checkpoint otherwise (message_hub holds HistoryBuffer and numpy objects)'),
        versions=dict(python=sys.version.split()[0], mmseg=mmseg.__version__, mmengine=mmengine.__version__,
                      mmcv=mmcv.__version__, torch=torch.__version__, numpy=np.__version__,
                      opencv=cv2.__version__),
        label_histogram=hist,
        tree_fraction=round(tree, 4),
        near_tie=dict(threshold=NEAR_TIE, definition='top-2 softmax probabilities of seg_logits differ by '
                      '< threshold (|logit_tree - logit_background| < 2 atanh(threshold))', count=int(near.sum()),
                      counts_at=dict((f'{t:g}', int((margin < t).sum())) for t in (1e-2, 1e-3, 1e-4, 1e-5)),
                      min_abs_logit_diff=float(np.abs(logit_diff).min())),
        logits=dict(min=float(logits.min()), max=float(logits.max()),
                    mean_abs_diff=float(np.abs(logit_diff).mean())),
    )
    if training is None and os.path.exists(os.path.join(work, 'training.json')):
        with open(os.path.join(work, 'training.json')) as f:
            training = json.load(f)
    if training is None:
        with open(os.path.join(HERE, 'oracle.json')) as f:  # --oracle-only: keep the recorded training
            training = json.load(f).get('training')
    summary['training'] = training
    with open(os.path.join(HERE, 'oracle.json'), 'w') as f:
        json.dump(summary, f, indent=2)
        f.write('\n')
    print(json.dumps(dict(label_histogram=hist, tree_fraction=tree, near_tie=summary['near_tie'],
                          checkpoint=summary['checkpoint']['bytes']), indent=1), flush=True)
    if constant:  # a (nearly) constant oracle proves nothing: train longer or raise the learning rate
        sys.exit(f'make_fixture.py: tree fraction {tree:.3f} outside [0.05, 0.95]: the oracle is (nearly) constant')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--iters', type=int, default=150)
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--work', default='/tmp/mmseg-runner-fixture')
    parser.add_argument('--aerialseg')
    parser.add_argument('--oracle-only', action='store_true')
    args = parser.parse_args()
    training = None
    if not args.oracle_only:
        training = train(args, args.work, find_aerialseg(args.aerialseg))
    oracle(args, args.work, training)


if __name__ == '__main__':
    main()
