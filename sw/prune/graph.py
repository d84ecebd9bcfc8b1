"""Which layers a model has to prune, and which modules depend on a layer's output channels.

:func:`prunable_layers` lists the ``nn.Linear``/``nn.Conv2d`` modules by qualified name.
:func:`channel_groups` traces the model with ``torch.fx`` and ties every tensor's channels
(axis 1; a flattened tensor's features) to the channels they came from:

* element-wise ops, activations, pooling, dropout and spatial means keep channel ``c`` as ``c``;
  a BatchNorm keeps it and follows it (its entries go with the channel);
* a flatten turns channel ``c`` into features ``c*k .. c*k+k-1`` (``k`` = H×W);
* ``add`` of two tensors of one shape *couples* their channels: channel ``c`` of both inputs and
  of the sum can only be removed together;
* ``cat`` along the channels gives each input a slice of the output's channels;
* a grouped convolution (``groups`` > 1, depthwise included) couples all input and output
  channels of each of its groups, so groups are removed whole and ``groups`` shrinks; a
  depthwise convolution's channel ``c`` thus follows its producer's channel ``c``;
* a Linear or ungrouped Conv2d *produces* fresh channels and *consumes* its input's.

A *unit* is a set of channels that can only be removed together (its producers' filters, the
BatchNorm and grouped-convolution channels after them, the consumers' input columns). Units whose
producers are linked (a producer's channels, or channels coupled by ``add``) form one
:class:`ChannelGroup`, named after its first producer in definition order; a pruning ratio counts
units of a group. A group is *blocked*, with the reason, when one of its units reaches the model
output, the model input, a layer called twice, a non-affine BatchNorm, or an op this graph does
not understand (named with its node and op) — it is then never pruned.
"""

import operator
from collections import Counter
from dataclasses import dataclass, field
from math import prod

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

PRUNABLE = (nn.Linear, nn.Conv2d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_PASS_MODULES = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Dropout,
                 nn.Identity, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
_PASS_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.gelu, F.silu, torch.sigmoid, torch.tanh, F.dropout,
                   F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d}
_PASS_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
_CAT_FUNCTIONS = {torch.cat, torch.concat}
_SHAPE_METHODS = {"size", "dim"}


@dataclass
class Member:
    """A module sized by a group's channels. ``index``: per channel along the module's axis (output
    for producers and followers, input for consumers) the group's unit, or -1 for another group's.
    ``node``: the traced node whose output those channels are. ``bn_after``: for a consumer whose
    only user is a BatchNorm, ``(name, BatchNorm)`` (a folded constant can go into its running mean)."""

    name: str
    module: nn.Module
    index: torch.Tensor
    node: torch.fx.Node = field(repr=False)
    bn_after: tuple | None = field(default=None, repr=False)


@dataclass
class ChannelGroup:
    """Channels that are pruned together: ``units`` units, each a set of coupled channels.

    ``producers``: Linear/Conv2d layers whose output channels these are; ``followers``: the
    BatchNorms and grouped convolutions whose channels go with them; ``consumers``: Linear/Conv2d
    layers reading them. ``blocked``: why the group cannot be pruned, or ``None``.
    """

    layer: str
    units: int = 0
    producers: list = field(default_factory=list)
    followers: list = field(default_factory=list)
    consumers: list = field(default_factory=list)
    blocked: str | None = None
    graph: object = field(default=None, repr=False)     # the traced GraphModule (for folding constants)

    @property
    def producer(self) -> nn.Module:
        """The layer the group is named after."""
        return next(p.module for p in self.producers if p.name == self.layer)

    @property
    def channels(self) -> int:
        return self.units

    @property
    def members(self) -> list:
        return self.producers + self.followers + self.consumers


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


def trace(model: nn.Module, example=None) -> torch.fx.GraphModule:
    """``model`` traced by ``torch.fx`` with every node's output shape recorded (eval mode)."""
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:  # noqa: BLE001 - any tracing failure means the same thing here
        raise ValueError(f"channel pruning needs a torch.fx-traceable model; tracing "
                         f"{type(model).__name__} failed: {e}") from e
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(example_input(model, example))
    finally:
        model.train(was_training)
    return gm


def _is_flatten(node, modules):
    if node.op == "call_module" and isinstance(modules[node.target], nn.Flatten):
        return modules[node.target].start_dim == 1 and modules[node.target].end_dim == -1
    if node.op == "call_function" and node.target is torch.flatten:
        return ((node.args[1:2] or [node.kwargs.get("start_dim", 0)])[0] == 1
                and (node.args[2:3] or [node.kwargs.get("end_dim", -1)])[0] == -1)
    if node.op == "call_method" and node.target in ("view", "reshape", "flatten"):
        src, out = node.args[0].meta.get("tensor_meta"), node.meta.get("tensor_meta")
        return (isinstance(src, TensorMetadata) and isinstance(out, TensorMetadata) and len(out.shape) == 2
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


def _is_spatial_mean(node):
    """``x.mean((2, 3))`` and the like: a mean over axes after the channels."""
    if not ((node.op == "call_method" and node.target == "mean")
            or (node.op == "call_function" and node.target is torch.mean)):
        return False
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    src = node.args[0].meta.get("tensor_meta") if isinstance(node.args[0], torch.fx.Node) else None
    if not isinstance(src, TensorMetadata):
        return False
    ndim = len(src.shape)
    dims = [dims] if isinstance(dims, int) else dims
    return bool(dims) and all(isinstance(d, int) and d % ndim >= 2 for d in dims)


def _describe(node, modules):
    target = node.target
    if node.op == "call_module":
        target = f"{node.target}: {type(modules[node.target]).__name__}"
    elif callable(target):
        target = f"{getattr(target, '__module__', '') or ''}.{getattr(target, '__name__', target)}".lstrip(".")
    return f"{node.name} ({node.op} {target})"


class _Slots:
    """Union-find over channel slots; a class may be pinned (never removable) with a reason."""

    def __init__(self):
        self.parent, self.pinned = [], {}

    def new(self, n: int, reason=None) -> list:
        ids = list(range(len(self.parent), len(self.parent) + n))
        self.parent += ids
        if reason:
            self.pin(ids, reason)
        return ids

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            if rb in self.pinned:
                self.pinned.setdefault(ra, self.pinned.pop(rb))

    def pin(self, ids, reason: str) -> None:
        for i in ids:
            self.pinned.setdefault(self.find(i), reason)


class _Tracer:
    """One pass over the traced graph: each node's channel slots, and the modules that use them."""

    def __init__(self, model, gm):
        self.modules = dict(model.named_modules())
        self.calls = Counter(n.target for n in gm.graph.nodes if n.op == "call_module")
        self.slots = _Slots()
        self.feats = {}        # node -> slot id per channel (feature) along axis 1
        self.uses = []         # (role, name, module, node whose channels they are)
        self.refused = {}      # prunable layer -> why it is in no group
        for node in gm.graph.nodes:
            self.visit(node)

    def unknown(self, node, reason):
        for a in node.all_input_nodes:
            if a in self.feats:
                self.slots.pin(self.feats[a], reason)
        meta = node.meta.get("tensor_meta")
        if isinstance(meta, TensorMetadata) and len(meta.shape) >= 2:
            self.feats[node] = self.slots.new(meta.shape[1], reason)
        if node.op == "call_module" and isinstance(self.modules[node.target], PRUNABLE):
            self.refused.setdefault(node.target, reason)

    def not_understood(self, node):
        self.unknown(node, f"its channels reach {_describe(node, self.modules)}, which the channel "
                           "dependency graph does not understand")

    def visit(self, node):
        meta = node.meta.get("tensor_meta")
        ins = [a for a in node.all_input_nodes if a in self.feats]
        if node.op == "placeholder":
            if isinstance(meta, TensorMetadata) and len(meta.shape) >= 2:
                self.feats[node] = self.slots.new(meta.shape[1], f"its channels are tied to the model input "
                                                                 f"{node.name}")
            return
        if node.op == "output":
            for a in ins:
                self.slots.pin(self.feats[a], "its output is the model output")
            return
        if not isinstance(meta, TensorMetadata):
            if not ((node.op == "call_method" and node.target in _SHAPE_METHODS)
                    or (node.op == "call_function" and node.target is getattr)):
                self.not_understood(node)      # tuples of tensors (split, chunk) and the like
            return
        untracked = [a for a in node.all_input_nodes          # sizes from x.size(0) and the like are fine
                     if a not in self.feats and not (a.op == "call_method" and a.target in _SHAPE_METHODS)
                     and not (a.op == "call_function" and a.target in (getattr, operator.getitem)
                              and not isinstance(a.meta.get("tensor_meta"), TensorMetadata))]
        if len(meta.shape) < 2 or untracked:
            self.not_understood(node)
            return
        if node.op == "call_module":
            self.visit_module(node, self.modules[node.target], ins)
        elif _is_spatial_mean(node) or (_is_passthrough(node, self.modules) and ins == [node.args[0]]):
            self.feats[node] = self.feats[ins[0]]
        elif _is_flatten(node, self.modules) and ins == [node.args[0]]:
            self.flatten(node, ins[0])
        elif (node.op == "call_function" and node.target in _ADD_FUNCTIONS) or (
                node.op == "call_method" and node.target == "add"):
            self.add(node, ins)
        elif node.op == "call_function" and node.target in _CAT_FUNCTIONS:
            self.cat(node, ins)
        else:
            self.not_understood(node)

    def flatten(self, node, src):
        k = prod(src.meta["tensor_meta"].shape[2:])
        self.feats[node] = [s for s in self.feats[src] for _ in range(k)]

    def add(self, node, ins):
        shapes = {tuple(a.meta["tensor_meta"].shape) for a in ins}
        others = [a for a in node.args if not isinstance(a, torch.fx.Node)]
        if len(ins) == 2 and len(shapes) == 1 and len(node.args) == 2:
            for a, b in zip(self.feats[ins[0]], self.feats[ins[1]], strict=True):
                self.slots.union(a, b)
            self.feats[node] = self.feats[ins[0]]
        elif len(ins) == 1 and all(isinstance(a, (int, float)) for a in others):
            self.feats[node] = self.feats[ins[0]]
        else:
            self.unknown(node, f"its channels reach {_describe(node, self.modules)}, an add of tensors of "
                               "different shapes (broadcasting), which the channel dependency graph does "
                               "not understand")

    def cat(self, node, ins):
        tensors = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        ndim = len(node.meta["tensor_meta"].shape)
        if isinstance(tensors, (list, tuple)) and all(t in self.feats for t in tensors) and dim % ndim == 1:
            self.feats[node] = [s for t in tensors for s in self.feats[t]]
        else:
            self.unknown(node, f"its channels reach {_describe(node, self.modules)}, a concatenation along "
                               f"axis {dim} (only the channel axis 1 is understood)")

    def visit_module(self, node, m, ins):
        name = node.target
        if isinstance(m, PRUNABLE) and self.calls[name] > 1:
            self.unknown(node, f"the layer {name} is called more than once")
        elif isinstance(m, nn.Linear) and len(node.args[0].meta["tensor_meta"].shape) == 2:
            self.uses.append(("consumer", name, m, ins[0]))
            self.feats[node] = self.slots.new(m.out_features)
            self.uses.append(("producer", name, m, node))
        elif isinstance(m, nn.Conv2d) and m.groups == 1:
            self.uses.append(("consumer", name, m, ins[0]))
            self.feats[node] = self.slots.new(m.out_channels)
            self.uses.append(("producer", name, m, node))
        elif isinstance(m, nn.Conv2d):
            src, out = self.feats[ins[0]], self.slots.new(m.out_channels)
            ipg, opg = m.in_channels // m.groups, m.out_channels // m.groups
            for g in range(m.groups):
                tied = src[g * ipg:(g + 1) * ipg] + out[g * opg:(g + 1) * opg]
                for s in tied[1:]:
                    self.slots.union(tied[0], s)
            self.feats[node] = out
            self.uses.append(("follower", name, m, node))
        elif isinstance(m, _BN):
            self.feats[node] = self.feats[ins[0]]
            if not m.affine:
                self.slots.pin(self.feats[node], f"BatchNorm {name} has no affine scale to zero")
            else:
                self.uses.append(("follower", name, m, node))
        elif isinstance(m, _PASS_MODULES):
            self.feats[node] = self.feats[ins[0]]
        elif _is_flatten(node, self.modules):
            self.flatten(node, ins[0])
        else:
            self.not_understood(node)


def channel_groups(model: nn.Module, example=None) -> dict:
    """``{layer name: ChannelGroup}`` for every Linear/Conv2d of ``model``. Layers coupled into one
    group (e.g. by a residual ``add``, or a depthwise convolution after its producer) share the
    group object; a layer the trace cannot place gets a group of its own with ``blocked`` set."""
    gm = trace(model, example)
    t = _Tracer(model, gm)
    find = t.slots.find
    order = {name: i for i, name in enumerate(dict(model.named_modules()))}
    producers = sorted((u for u in t.uses if u[0] == "producer"), key=lambda u: order[u[1]])
    link = _Slots()                             # units linked through a shared producer
    unit_id = {}                                # slot class root -> position in `link`
    for _, _, _, node in producers:
        roots = [find(s) for s in t.feats[node]]
        for r in roots:
            if r not in unit_id:
                unit_id[r] = link.new(1)[0]
        for r in roots[1:]:
            link.union(unit_id[roots[0]], unit_id[r])
    groups, local = {}, {}                      # link root -> group; slot class root -> unit index
    for _, name, _, node in producers:
        for s in t.feats[node]:
            r = find(s)
            g = link.find(unit_id[r])
            if g not in groups:
                groups[g] = ChannelGroup(name, graph=gm)
            if r not in local:
                local[r] = groups[g].units
                groups[g].units += 1
                if r in t.slots.pinned and groups[g].blocked is None:
                    groups[g].blocked = t.slots.pinned[r]
    for role, name, m, node in t.uses:
        roots = [find(s) for s in t.feats[node]]
        for g, group in groups.items():
            index = torch.tensor([local[r] if r in unit_id and link.find(unit_id[r]) == g else -1 for r in roots],
                                 dtype=torch.long)
            if (index >= 0).any():
                bn_after = None
                if role == "consumer":
                    (call,) = [u for u in node.users if u.op == "call_module" and u.target == name]
                    users = list(call.users)
                    if len(users) == 1 and users[0].op == "call_module" and isinstance(
                            t.modules[users[0].target], _BN):
                        bn_after = (users[0].target, t.modules[users[0].target])
                getattr(group, role + "s").append(Member(name, m, index, node, bn_after))
    out = {}
    for name in prunable_layers(model):
        owner = [g for g in groups.values() for p in g.producers + g.followers if p.name == name]
        if owner:
            out[name] = owner[0]
        else:
            out[name] = ChannelGroup(name, blocked=t.refused.get(name, "the traced forward never calls it"))
    return out


def unique_groups(groups: dict) -> list:
    """The distinct groups of a :func:`channel_groups` result, in order of their names."""
    seen = {}
    for g in groups.values():
        seen.setdefault(id(g), g)
    return list(seen.values())
