"""A small MobileNet (Howard et al. 2017): depthwise-separable blocks, whose depthwise channels
follow the pointwise channels before them."""

from collections import OrderedDict

from torch import nn


class SeparableBlock(nn.Sequential):
    """``dw (3×3 depthwise, stride) → bn → relu → pw (1×1) → bn → relu``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(OrderedDict(
            dw=nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False), dw_bn=nn.BatchNorm2d(c_in),
            dw_relu=nn.ReLU(),
            pw=nn.Conv2d(c_in, c_out, 1, bias=False), pw_bn=nn.BatchNorm2d(c_out), pw_relu=nn.ReLU()))


class SmallMobileNet(nn.Sequential):
    """``stem (3×3 conv) → bn → relu → separable blocks → global average pool → flatten → fc``.

    ``stem``: the first convolution's width; ``blocks``: ``(width, stride)`` per separable block.
    ``config`` records the constructor arguments.
    """

    def __init__(self, input_shape=(1, 28, 28), stem: int = 8, blocks=((16, 1), (32, 2), (32, 1)),
                 classes: int = 10):
        input_shape = tuple(int(s) for s in input_shape)
        blocks = tuple((int(w), int(s)) for w, s in blocks)
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
        if stem < 1 or not blocks or min(w for w, _ in blocks) < 1 or min(s for _, s in blocks) < 1 or classes < 1:
            raise ValueError(f"widths and strides must be >= 1, got stem={stem}, blocks={blocks}, classes={classes}")
        layers = OrderedDict(stem=nn.Conv2d(input_shape[0], stem, 3, 1, 1, bias=False), stem_bn=nn.BatchNorm2d(stem),
                             stem_relu=nn.ReLU())
        c_in = stem
        for i, (w, s) in enumerate(blocks, start=1):
            layers[f"block{i}"] = SeparableBlock(c_in, w, s)
            c_in = w
        layers["pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(c_in, classes)
        super().__init__(layers)
        self.input_shape = input_shape
        self.config = {"input_shape": list(input_shape), "stem": int(stem), "blocks": [list(b) for b in blocks],
                       "classes": int(classes)}


def small_mobilenet(input_shape=(1, 28, 28), classes: int = 10) -> SmallMobileNet:
    """The benchmark MobileNet: a 8-wide stem and three separable blocks (16, 32/2, 32)."""
    return SmallMobileNet(input_shape, classes=classes)
