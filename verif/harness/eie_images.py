"""Turning packed EIE PE images (``sw.pack``) into the words the hardware's load ports take.

Every image is checked before it reaches the hardware: a ``col_ptr`` that is not
non-decreasing, a sentinel that disagrees with the entry count, rows beyond the PE's row space
or an image larger than the configured memories raise ``ValueError``.
"""

import numpy as np

from sw.formats import entry_word
from sw.pack import validate_pe


def decoder_words(pe, cols: int, local_rows: int, *, max_cols: int, max_entries: int,
                  max_local_rows: int, where: str = "PE"):
    """``(col_ptr words, entry words)`` for one PE image, after validating it for the hardware."""
    validate_pe(pe, cols, local_rows, where=where)
    if cols > max_cols:
        raise ValueError(f"{where}: the layer has {cols} columns; the hardware holds max_cols = {max_cols}")
    if local_rows > max_local_rows:
        raise ValueError(f"{where}: the layer needs {local_rows} local rows; the hardware holds "
                         f"max_local_rows = {max_local_rows}")
    if pe.n_entries > max_entries:
        raise ValueError(f"{where}: {pe.n_entries} entries do not fit max_entries = {max_entries}")
    words = entry_word(np.asarray(pe.weight_idx, dtype=np.int64), np.asarray(pe.rel_index, dtype=np.int64))
    return np.asarray(pe.col_ptr, dtype=np.int64), words
