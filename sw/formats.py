"""The numeric formats and constants of docs/spec.md, defined once.

Everything that packs, decodes, generates or checks EIE data (``sw.pack``, ``pyhdl``, the golden
models, the CLI) imports these names instead of repeating the numbers.
"""

# docs/spec.md §1: numbers.
ACT_WIDTH = 16          # signed activations
WEIGHT_WIDTH = 16       # signed codebook values
INDEX_WIDTH = 4         # weight index into the codebook
CODEBOOK_SIZE = 1 << INDEX_WIDTH
PRODUCT_WIDTH = ACT_WIDTH + WEIGHT_WIDTH
OUT_MIN = -(1 << (ACT_WIDTH - 1))
OUT_MAX = (1 << (ACT_WIDTH - 1)) - 1

# docs/spec.md §2: one stored sparse-matrix entry is 8 bits, weight_idx in bits 7..4, rel_index in 3..0.
REL_INDEX_WIDTH = 4
ENTRY_WIDTH = INDEX_WIDTH + REL_INDEX_WIDTH
MAX_REL_INDEX = (1 << REL_INDEX_WIDTH) - 1   # 15: a longer zero run needs a padding entry
PADDING_WEIGHT_IDX = 0                       # padding entries decode to codebook entry 0 == 0

# docs/spec.md §3: defaults for the PE.
QUEUE_DEPTH = 8


def entry_word(weight_idx, rel_index):
    """The 8-bit sparse-matrix word of one entry (works on ints and on integer numpy arrays)."""
    return (weight_idx << REL_INDEX_WIDTH) | rel_index


# docs/spec.md §4: 2:4 structured sparsity. Groups of GROUP_24 consecutive weights along K keep KEPT_24;
# each group's metadata field is i0 | i1 << META_INDEX_WIDTH with i0 < i1 the kept positions.
GROUP_24 = 4
KEPT_24 = 2
META_INDEX_WIDTH = 2
META_WIDTH = KEPT_24 * META_INDEX_WIDTH
# The kept positions PyTorch's and CUTLASS's conversion names for a group with fewer than two
# nonzeros, keyed by the nonzero positions (docs/spec.md §4: 0000→(2,3), 1000→(0,2), 0100→(1,2), ...).
META_FILL_24 = {(): (2, 3), (0,): (0, 2), (1,): (1, 2), (2,): (2, 3), (3,): (2, 3)}
# The 2:4 hardware path: int8 weights and activations, int32 accumulation.
INT8_WIDTH = 8
INT8_MIN = -(1 << (INT8_WIDTH - 1))
INT8_MAX = (1 << (INT8_WIDTH - 1)) - 1
ACC24_WIDTH = 32


def meta_field(i0, i1):
    """The 4-bit metadata of one group (ints or integer numpy arrays)."""
    return i0 | (i1 << META_INDEX_WIDTH)


def split_meta_field(meta):
    """Inverse of :func:`meta_field`: ``(i0, i1)``."""
    mask = (1 << META_INDEX_WIDTH) - 1
    return meta & mask, (meta >> META_INDEX_WIDTH) & mask
# Groups the 2:4 sparse MAC consumes per cycle by default (and so per memory-image word).
MAC24_GROUPS = 4
