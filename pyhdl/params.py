"""Parameter validation and naming shared by every block.

A block's constructor parameters are checked here with precise errors, and the same names
make up its Verilog module name (``csc_decoder_max_cols256_max_entries4096_max_local_rows64``).
"""


def check_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def bits_for(n: int) -> int:
    """Bits of an unsigned signal that holds 0..n."""
    return max(1, int(n).bit_length())


def module_name(base: str, **params) -> str:
    return "_".join([base] + [f"{k}{v}" for k, v in params.items()])
