"""Which layers a model has to prune, and which modules depend on a layer's output channels.

:func:`prunable_layers` lists the ``nn.Linear``/``nn.Conv2d`` modules by qualified name.
:func:`channel_groups` traces the model with ``torch.fx`` and, for every such layer, follows its
output through BatchNorms, element-wise ops, pooling and flattening to the layers that consume
it: removing output channel ``c`` of the layer removes channel ``c`` of its BatchNorms and
input features ``c*k .. c*k+k-1`` of each consumer (``k`` = 1, or H×W after a flatten). A layer
whose output reaches the model output, or meets an op that mixes channels (``add``, ``cat``, …),
gets a ``blocked`` reason instead.
"""

from dataclasses import dataclass, field
from math import prod

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

PRUNABLE = (nn.Linear, nn.Conv2d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Dropout,
                 nn.Identity, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_PASS_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.gelu, F.silu, torch.sigmoid, torch.tanh, F.dropout,
                   F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d}
_PASS_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}


@dataclass
class ChannelGroup:
    """A layer's output channels and everything sized by them."""

    layer: str
    producer: nn.Module
    followers: list = field(default_factory=list)   # [(name, BatchNorm)]
    consumers: list = field(default_factory=list)   # [(name, Linear|Conv2d, features per channel)]
    blocked: str | None = None

    @property
    def channels(self) -> int:
        return self.producer.weight.shape[0]


def prunable_layers(model: nn.Module) -> dict:
    """``{qualified name: module}`` of the model's Linear and Conv2d layers, in definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def example_input(model: nn.Module, example=None) -> torch.Tensor:
    """``example`` if given, else a zero batch of one built from ``model.input_shape``."""
    if example is not None:
        return example
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError(f"{type(model).__name__} has no input_shape; pass an example input")
    return torch.zeros(1, *shape)


def _is_flatten(node, modules):
    if node.op == "call_module" and isinstance(modules[node.target], nn.Flatten):
        return modules[node.target].start_dim == 1 and modules[node.target].end_dim == -1
    if node.op == "call_function" and node.target is torch.flatten:
        return (node.args[1:2] or [node.kwargs.get("start_dim", 0)])[0] == 1
    if node.op == "call_method" and node.target in ("view", "reshape", "flatten"):
        src, out = node.args[0].meta.get("tensor_meta"), node.meta.get("tensor_meta")
        return (src is not None and out is not None and len(out.shape) == 2
                and out.shape[0] == src.shape[0] and out.shape[1] == prod(src.shape[1:]))
    return False


def _is_passthrough(node, modules):
    if node.op == "call_module":
        return isinstance(modules[node.target], _PASS_MODULES)
    if node.op == "call_function":
        return node.target in _PASS_FUNCTIONS
    if node.op == "call_method":
        return node.target in _PASS_METHODS
    return False


def channel_groups(model: nn.Module, example=None) -> dict:
    """``{layer name: ChannelGroup}`` for every Linear/Conv2d the trace reaches."""
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - any tracing failure means the same thing here
        raise ValueError(f"channel pruning needs a torch.fx-traceable model; tracing "
                         f"{type(model).__name__} failed: {e}") from e
    was_training = model.training
    model.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(example_input(model, example))
    model.train(was_training)
    modules = dict(model.named_modules())
    groups = {}
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], PRUNABLE):
            if node.target in groups:
                groups[node.target].blocked = "the layer is called more than once"
                continue
            group = ChannelGroup(node.target, modules[node.target])
            _follow(node, 1, group, modules)
            groups[node.target] = group
    return groups


def _follow(node, factor, group, modules):
    for user in node.users:
        if group.blocked:
            return
        if user.op == "output":
            group.blocked = "its output is the model output"
        elif user.op == "call_module" and isinstance(modules[user.target], _BN):
            if not modules[user.target].affine:
                group.blocked = f"BatchNorm {user.target} has no affine scale and shift to zero"
                return
            group.followers.append((user.target, modules[user.target]))
            _follow(user, factor, group, modules)
        elif _is_passthrough(user, modules):
            _follow(user, factor, group, modules)
        elif _is_flatten(user, modules):
            _follow(user, factor * prod(node.meta["tensor_meta"].shape[2:]), group, modules)
        elif user.op == "call_module" and isinstance(modules[user.target], PRUNABLE) and user.args[0] is node:
            m = modules[user.target]
            if isinstance(m, nn.Conv2d) and (m.groups != 1 or factor != 1):
                group.blocked = f"its output feeds {user.target}, a grouped or reshaped convolution"
            else:
                group.consumers.append((user.target, m, factor))
        else:
            group.blocked = f"its output feeds {user.name} ({user.op} {user.target}), which mixes channels"
