"""A small LeNet-5-like CNN with BatchNorm, the model for channel pruning and network slimming."""

from collections import OrderedDict

from torch import nn


class SmallCNN(nn.Sequential):
    """``conv1 → bn1 → relu → pool → conv2 → bn2 → relu → pool → flatten → fc1 → relu → fc2 → relu → fc3``.

    Convolutions are bias-free (BatchNorm follows). ``input_shape`` ``(C, H, W)``; ``channels``:
    the two convolutions' widths; ``kernel_size``/``padding`` of both convolutions; ``fc``: the
    hidden fully connected widths. ``config`` records the constructor arguments.
    """

    def __init__(self, input_shape=(1, 28, 28), channels=(16, 32), kernel_size: int = 5, padding: int = 0,
                 fc=(120, 84), classes: int = 10):
        input_shape = tuple(int(s) for s in input_shape)
        channels, fc = tuple(int(c) for c in channels), tuple(int(f) for f in fc)
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
        if len(channels) != 2 or min(channels) < 1 or any(f < 1 for f in fc) or classes < 1:
            raise ValueError(f"widths must be >= 1 (two conv widths), got channels={channels}, fc={fc}")
        side = input_shape[1]
        for _ in range(2):
            side = (side + 2 * padding - kernel_size + 1) // 2
        if side < 1 or input_shape[1] != input_shape[2]:
            raise ValueError(f"input {input_shape} too small (or not square) for kernel_size={kernel_size}, "
                             f"padding={padding} and two 2x2 poolings")
        c_in = input_shape[0]
        layers = OrderedDict()
        for i, c in enumerate(channels, start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, c, kernel_size, padding=padding, bias=False)
            layers[f"bn{i}"] = nn.BatchNorm2d(c)
            layers[f"relu_c{i}"] = nn.ReLU()
            layers[f"pool{i}"] = nn.MaxPool2d(2)
            c_in = c
        layers["flatten"] = nn.Flatten()
        widths = (c_in * side * side, *fc, classes)
        for i in range(len(widths) - 1):
            layers[f"fc{i + 1}"] = nn.Linear(widths[i], widths[i + 1])
            if i < len(widths) - 2:
                layers[f"relu{i + 1}"] = nn.ReLU()
        super().__init__(layers)
        self.input_shape = input_shape
        self.config = {"input_shape": list(input_shape), "channels": list(channels),
                       "kernel_size": int(kernel_size), "padding": int(padding), "fc": list(fc),
                       "classes": int(classes)}


def small_cnn(input_shape=(1, 28, 28), classes: int = 10) -> SmallCNN:
    """The benchmark CNN sized for the input: 5×5 valid convolutions for 28×28, 3×3 same for 8×8."""
    if input_shape[-1] >= 20:
        return SmallCNN(input_shape, kernel_size=5, padding=0, classes=classes)
    return SmallCNN(input_shape, kernel_size=3, padding=1, classes=classes)
