"""Golden model of a whole EIE layer and network (docs/spec.md §1, §3): ``y = relu(clamp(W @ x >> shift))``.

Written from the spec with exact Python integers; it never looks at the packed format.
"""

from verif.golden.eie_pe import output_stage


def layer(weights, x, shift: int = 0, relu: bool = True):
    """``weights``: ``rows`` lists of ``cols`` integer weights; ``x``: ``cols`` integers."""
    out = []
    for row in weights:
        acc = sum(int(w) * int(a) for w, a in zip(row, x, strict=True) if w and a)
        out.append(output_stage(acc, shift, relu))
    return out


def network(layers, x):
    """``layers``: ``(weights, shift, relu)`` in order; each output feeds the next layer."""
    for weights, shift, relu in layers:
        x = layer(weights, x, shift, relu)
    return x
