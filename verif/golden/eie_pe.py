"""Golden model of one EIE processing element's arithmetic, written from docs/spec.md §1–§3 alone.

Plain Python integers, one activation and one entry at a time; shares no code with the RTL.
"""

from verif.golden.csc import decode_column

ACT_MIN, ACT_MAX = -(1 << 15), (1 << 15) - 1


def output_stage(acc: int, shift: int, relu: bool) -> int:
    """docs/spec.md §1: ``clamp(acc >> shift, -2**15, 2**15 - 1)`` (floor shift), then ReLU."""
    y = min(max(acc >> shift, ACT_MIN), ACT_MAX)
    return max(y, 0) if relu else y


def pe_accumulators(col_ptr, weight_idx, rel_index, codebook, acts, n_cols, local_rows):
    """Accumulators after every ``(col, value)`` of ``acts``; and whether a column was out of range."""
    acc = [0] * local_rows
    error = False
    for col, value in acts:
        if col >= n_cols:
            error = True
            continue
        for row, w, _ in decode_column(col_ptr, weight_idx, rel_index, col):
            acc[row] += int(codebook[w]) * int(value)
    return acc, error


def pe_outputs(col_ptr, weight_idx, rel_index, codebook, acts, n_cols, local_rows, shift, relu):
    acc, error = pe_accumulators(col_ptr, weight_idx, rel_index, codebook, acts, n_cols, local_rows)
    return [output_stage(a, shift, relu) for a in acc], error
