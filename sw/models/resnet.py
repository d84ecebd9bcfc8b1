"""A small ResNet (He et al. 2016) of basic blocks: residual adds couple channels across blocks."""

from torch import nn


class BasicBlock(nn.Module):
    """``conv1 (3×3, stride) → bn1 → relu → conv2 (3×3) → bn2``, plus the shortcut, then ReLU.

    The shortcut is the identity when shape is kept, else ``downsample``: a 1×1 convolution with
    the stride and a BatchNorm."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + shortcut)


class SmallResNet(nn.Module):
    """``conv1 → bn1 → relu → stages of BasicBlocks → global average pool → flatten → fc``.

    ``widths``: channels per stage (each stage after the first halves the resolution, so its first
    block has a 1×1 downsampling shortcut); ``blocks``: basic blocks per stage. ``config`` records
    the constructor arguments.
    """

    def __init__(self, input_shape=(1, 28, 28), widths=(16, 32), blocks=(1, 1), classes: int = 10):
        input_shape = tuple(int(s) for s in input_shape)
        widths, blocks = tuple(int(w) for w in widths), tuple(int(b) for b in blocks)
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
        if not widths or len(widths) != len(blocks) or min(widths) < 1 or min(blocks) < 1 or classes < 1:
            raise ValueError(f"need one width and block count >= 1 per stage, got widths={widths}, "
                             f"blocks={blocks}, classes={classes}")
        super().__init__()
        self.conv1 = nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages, c_in = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            stage = [BasicBlock(c_in, w, 1 if i == 0 else 2)] + [BasicBlock(w, w) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            c_in = w
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in, classes)
        self.input_shape = input_shape
        self.config = {"input_shape": list(input_shape), "widths": list(widths), "blocks": list(blocks),
                       "classes": int(classes)}

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.layers(self.relu(self.bn1(self.conv1(x)))))))


def small_resnet(input_shape=(1, 28, 28), classes: int = 10) -> SmallResNet:
    """The benchmark ResNet: two stages of one basic block, 16 and 32 channels."""
    return SmallResNet(input_shape, classes=classes)
