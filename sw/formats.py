"""The numeric formats and constants of SPEC.md, defined once.

Everything that packs, decodes, generates or checks EIE data (``sw.pack``, ``pyhdl``, the golden
models, the CLI) imports these names instead of repeating the numbers.
"""

# SPEC §1: numbers.
ACT_WIDTH = 16          # signed activations
WEIGHT_WIDTH = 16       # signed codebook values
INDEX_WIDTH = 4         # weight index into the codebook
CODEBOOK_SIZE = 1 << INDEX_WIDTH
PRODUCT_WIDTH = ACT_WIDTH + WEIGHT_WIDTH
OUT_MIN = -(1 << (ACT_WIDTH - 1))
OUT_MAX = (1 << (ACT_WIDTH - 1)) - 1

# SPEC §2: one stored sparse-matrix entry is 8 bits, weight_idx in bits 7..4, rel_index in 3..0.
REL_INDEX_WIDTH = 4
ENTRY_WIDTH = INDEX_WIDTH + REL_INDEX_WIDTH
MAX_REL_INDEX = (1 << REL_INDEX_WIDTH) - 1   # 15: a longer zero run needs a padding entry
PADDING_WEIGHT_IDX = 0                       # padding entries decode to codebook entry 0 == 0

# SPEC §3: defaults for the PE.
QUEUE_DEPTH = 8


def entry_word(weight_idx, rel_index):
    """The 8-bit sparse-matrix word of one entry (works on ints and on integer numpy arrays)."""
    return (weight_idx << REL_INDEX_WIDTH) | rel_index


def split_entry_word(word):
    """Inverse of :func:`entry_word`: ``(weight_idx, rel_index)``."""
    return word >> REL_INDEX_WIDTH, word & MAX_REL_INDEX
