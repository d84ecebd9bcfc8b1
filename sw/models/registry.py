"""Model names (for the CLI and the cache) and architecture classes (for saved models)."""

from sw.models.cnn import SmallCNN, small_cnn
from sw.models.mlp import MLP, lenet_300_100
from sw.models.mobilenet import SmallMobileNet, small_mobilenet
from sw.models.resnet import SmallResNet, small_resnet

MODELS = {"lenet300": lenet_300_100, "cnn": small_cnn, "resnet": small_resnet, "mobilenet": small_mobilenet}
ARCHITECTURES = {"MLP": MLP, "SmallCNN": SmallCNN, "SmallResNet": SmallResNet, "SmallMobileNet": SmallMobileNet}


def build(name: str, input_shape, classes: int, seed: int | None = None):
    """A fresh (untrained) model by name for data of ``input_shape`` with ``classes`` classes;
    its initial weights are drawn after ``torch.manual_seed(seed)`` when ``seed`` is given."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    return MODELS[name](tuple(input_shape), classes)


def from_config(cls_name: str, config: dict):
    """Rebuild a model from its recorded class name and ``config``."""
    if cls_name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {cls_name!r}; expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[cls_name](**config)
