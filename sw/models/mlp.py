"""The LeNet-300-100 multilayer perceptron (784→300→100→10) and its family.

Bias-free by default: EIE's output stage (docs/spec.md §1) is ``clamp(acc >> shift)`` then ReLU with no
bias term, so a bias-free MLP exports to the hardware exactly.
"""

from collections import OrderedDict

from torch import nn


class MLP(nn.Sequential):
    """``flatten → fc1 → relu1 → … → fc{k+1}``: fully connected layers with ReLU between them.

    ``input_shape``: one sample's shape (flattened to its product); ``hidden``: hidden widths;
    ``classes``: outputs. ``config`` records the constructor arguments (the saved architecture).
    """

    def __init__(self, input_shape=(1, 28, 28), hidden=(300, 100), classes: int = 10, bias: bool = False):
        input_shape, hidden = tuple(int(s) for s in input_shape), tuple(int(h) for h in hidden)
        if not input_shape or min(input_shape) < 1:
            raise ValueError(f"input_shape must be positive sizes, got {input_shape}")
        if any(h < 1 for h in hidden) or classes < 1:
            raise ValueError(f"layer widths must be >= 1, got hidden={hidden}, classes={classes}")
        in_features = 1
        for s in input_shape:
            in_features *= s
        layers = OrderedDict(flatten=nn.Flatten())
        widths = (in_features, *hidden, classes)
        for i in range(len(widths) - 1):
            layers[f"fc{i + 1}"] = nn.Linear(widths[i], widths[i + 1], bias=bias)
            if i < len(widths) - 2:
                layers[f"relu{i + 1}"] = nn.ReLU()
        super().__init__(layers)
        self.input_shape = input_shape
        self.config = {"input_shape": list(input_shape), "hidden": list(hidden), "classes": int(classes),
                       "bias": bool(bias)}


def lenet_300_100(input_shape=(1, 28, 28), classes: int = 10) -> MLP:
    """LeNet-300-100 (LeCun et al. 1998; the MLP of Deep Compression and EIE)."""
    return MLP(input_shape, (300, 100), classes)
