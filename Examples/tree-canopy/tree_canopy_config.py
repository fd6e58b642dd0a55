# mmsegmentation 1.2.2 config: DeepLabV3+ on a half-width ResNetV1c-18 (D8), 2 classes (background, tree),
# trained from scratch on the CPU on crops of the training blocks of Examples/tree-canopy/data/ortho_10cm.tif
# (data/train_blocks.vrt: the 512 x 512 blocks with (x//512 + y//512) % 3 != 0; see make_split.py).
# Same architecture and key names as configs/deeplabv3plus/deeplabv3plus_r18-d8_4xb4-80k_potsdam-512x512.py,
# with stem/base channels 32 instead of 64 (4x fewer FLOPs, so it trains on 2 CPU cores in about an hour).
# The augmentation is that of mmseg's aerial configs (configs/_base_/datasets/potsdam.py, isaid.py:
# RandomResize 0.5-2.0, RandomCrop with cat_max_ratio 0.75, RandomFlip, PhotoMetricDistortion) plus
# RandomRot90, a 90-degree rotation that train.py registers (mmseg has none; aerial images have no "up").
# Used by train.py; the crops come from `aerialseg tile` (see README.md).
crops = 'work/crops'  # train.py sets the absolute path
max_iters = 1600  # the documented schedule; train.py can shorten it (TREE_CANOPY_ITERS, TREE_CANOPY_DEADLINE)
crop_size = (256, 256)

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
        stem_channels=32,
        base_channels=32,
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
        in_channels=256,
        in_index=3,
        channels=64,
        dilations=(1, 12, 24, 36),
        c1_in_channels=32,
        c1_channels=12,
        dropout_ratio=0.1,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))

dataset_type = 'BaseSegDataset'
metainfo = dict(classes=('background', 'tree'), palette=[[0, 0, 0], [0, 160, 0]])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(512, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomRot90'),  # k * 90 degrees, k uniform in 0..3 (train.py); with the flip: all 8 orientations
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
# What mmseg's inference API (mmseg_agreement.py) runs: the image as it is (no resize), like `aerialseg run`.
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=metainfo,
        data_root=crops,
        data_prefix=dict(img_path='img_dir', seg_map_path='ann_dir'),
        img_suffix='.png',
        seg_map_suffix='.png',
        ann_file='train.txt',
        reduce_zero_label=False,
        pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=50, by_epoch=False),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None

default_scope = 'mmseg'
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=20),  # for model selection
    sampler_seed=dict(type='DistSamplerSeedHook'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
