# Small seed reaching the reader's corners: comprehensions, dict(), f-less strings, tuples, unary ops,
# implicit string concatenation, {{_base_.x}} substitution is for files with bases (not here).
norm_cfg = dict(type='SyncBN', requires_grad=True)
crop_size = (512, 512)
scales = [0.5, 0.75, 1.0, 1.25]
tta = [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in scales]
model = dict(
    type='EncoderDecoder', data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                                                  bgr_to_rgb=True, size=crop_size),
    backbone=dict(depth=18, dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg),
    decode_head=dict(num_classes=6, loss_decode=dict(loss_weight=-1.0 * -1, avg_non_ignore=not False)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
name = 'a' 'b' "c"
nested = {'k': [None, True, {'x': (1,)}], 2: 3e-4}
