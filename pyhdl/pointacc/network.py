"""Bitonic compare-exchange networks, as lists of layers of ``(lo, hi)`` lane pairs.

Every comparator puts the smaller element on lane ``lo`` (``lo < hi``): the variant of Batcher's
network whose first layer of each merge compares mirrored lanes (``i`` with ``i ^ (k - 1)``),
so no comparator sorts descending. ``sort_layers(n)`` has ``log2(n) (log2(n) + 1) / 2`` layers;
``merge_layers(n)`` sorts a *bitonic* sequence of ``n`` in ``log2(n)`` layers.
"""


def _check_pow2(n):
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n & (n - 1):
        raise ValueError(f"a bitonic network needs a power-of-two lane count, got {n!r}")


def sort_layers(n: int) -> list:
    """Layers sorting any ``n`` elements ascending."""
    _check_pow2(n)
    layers = []
    k = 2
    while k <= n:
        # Mirror the two halves of each block of k: lane i of the lower half meets lane k-1-i.
        layers.append([(i, i ^ (k - 1)) for i in range(n) if not i & (k // 2)])
        layers += merge_layers(k, n)[1:]
        k *= 2
    return layers


def merge_layers(n: int, lanes: int | None = None) -> list:
    """Layers sorting a bitonic sequence of ``n`` elements ascending (half-cleaners), applied to
    every block of ``n`` among ``lanes`` (default ``n``)."""
    _check_pow2(n)
    layers = []
    j = n // 2
    while j >= 1:
        layers.append([(i, i + j) for i in range(lanes or n) if not i & j])
        j //= 2
    return layers


def apply(layers, values, cas):
    """Run ``values`` (a list) through ``layers``; ``cas(a, b)`` returns ``(min, max)``."""
    v = list(values)
    for layer in layers:
        for lo, hi in layer:
            v[lo], v[hi] = cas(v[lo], v[hi])
    return v
