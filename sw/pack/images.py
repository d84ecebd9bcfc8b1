"""Memory images of a packed EIE layer (docs/spec.md §2): one ``.npz`` plus ``$readmemh`` files per PE.

Directory layout written by :func:`write_eie_images` (``sparsehw pack eie``):

- ``eie.npz``: ``rows``, ``cols``, ``n_pe``, ``codebook`` (16 values), ``shift``, ``relu`` and per
  PE ``pe{k}_weight_idx``, ``pe{k}_rel_index``, ``pe{k}_col_ptr``;
- ``spmat_pe{k}.hex``: one 8-bit entry a line (``weight_idx << 4 | rel_index``, 2 hex digits);
- ``colptr_pe{k}.hex``: one pointer a line (``cols + 1`` lines, the sentinel last);
- ``codebook.hex``: 16 lines of 16-bit two's complement, written when the codebook is integral
  and fits int16 (a real-valued codebook must be quantised before it can run in hardware).
"""

from pathlib import Path

import numpy as np

from sw.formats import ACT_WIDTH, WEIGHT_WIDTH, entry_word
from sw.pack.eie import EIEPacked, PEImage, check_codebook, validate_pe

NPZ = "eie.npz"


def write_memh(path, values, width_bits: int) -> None:
    """Write non-negative ints one per line as fixed-width hex (``$readmemh`` format)."""
    digits = max(1, -(-width_bits // 4))
    v = np.asarray(values, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() >= 1 << width_bits):
        raise ValueError(f"{path}: values do not fit {width_bits} bits")
    Path(path).write_text("".join(f"{int(x):0{digits}x}\n" for x in v))


def read_memh(path) -> np.ndarray:
    """Read a ``$readmemh`` file of one value per line (``//`` comments and blank lines allowed)."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("//", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            raise ValueError(f"{path}:{n}: address records (@) are not used in these images")
        try:
            out.append(int(line, 16))
        except ValueError:
            raise ValueError(f"{path}:{n}: not a hex value: {line!r}") from None
    return np.asarray(out, dtype=np.int64)


def codebook_is_integral(codebook) -> bool:
    cb = np.asarray(codebook)
    lo, hi = -(1 << (WEIGHT_WIDTH - 1)), (1 << (WEIGHT_WIDTH - 1)) - 1
    return bool(np.all(np.round(cb) == cb) and cb.min() >= lo and cb.max() <= hi)


def write_eie_images(packed: EIEPacked, out_dir, *, shift: int = 0, relu: bool = True,
                     force: bool = False) -> list:
    """Write the images of ``packed`` into ``out_dir``; returns the paths written.

    Refuses to overwrite existing image files unless ``force``.
    """
    if not 0 <= int(shift) < ACT_WIDTH:
        raise ValueError(f"shift must be in 0..{ACT_WIDTH - 1}, got {shift}")
    out = Path(out_dir)
    names = [NPZ] + [f"{kind}_pe{k}.hex" for k in range(packed.n_pe) for kind in ("spmat", "colptr")]
    integral = codebook_is_integral(packed.codebook)
    if integral:
        names.append("codebook.hex")
    existing = [n for n in names if (out / n).exists()]
    if existing and not force:
        raise FileExistsError(f"{out} already holds {', '.join(existing[:3])}"
                              f"{' ...' if len(existing) > 3 else ''}; pass force=True (--force) to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    arrays = dict(rows=packed.rows, cols=packed.cols, n_pe=packed.n_pe, codebook=packed.codebook,
                  shift=int(shift), relu=bool(relu))
    for k, pe in enumerate(packed.pe):
        arrays[f"pe{k}_weight_idx"] = pe.weight_idx
        arrays[f"pe{k}_rel_index"] = pe.rel_index
        arrays[f"pe{k}_col_ptr"] = pe.col_ptr
    np.savez(out / NPZ, **arrays)
    ptr_bits = max(1, int(max(int(pe.col_ptr[-1]) for pe in packed.pe)).bit_length())
    for k, pe in enumerate(packed.pe):
        write_memh(out / f"spmat_pe{k}.hex",
                   entry_word(pe.weight_idx.astype(np.int64), pe.rel_index.astype(np.int64)), 8)
        write_memh(out / f"colptr_pe{k}.hex", pe.col_ptr, ptr_bits)
    if integral:
        cb = np.asarray(packed.codebook, dtype=np.int64) & ((1 << WEIGHT_WIDTH) - 1)
        write_memh(out / "codebook.hex", cb, WEIGHT_WIDTH)
    return [out / n for n in names]


def read_eie_images(directory):
    """Load and validate images written by :func:`write_eie_images`.

    Returns ``(packed, shift, relu)``. Raises ``ValueError`` naming the file and the problem for
    a malformed image (missing arrays, a non-monotonic ``col_ptr``, a sentinel that disagrees
    with the entry count, hex files that disagree with the ``.npz``).
    """
    d = Path(directory)
    path = d / NPZ
    if not path.exists():
        raise ValueError(f"{d}: no {NPZ} (write images with `sparsehw pack eie`)")
    with np.load(path) as z:
        try:
            rows, cols, n_pe = int(z["rows"]), int(z["cols"]), int(z["n_pe"])
            codebook = check_codebook(z["codebook"])
            shift, relu = int(z["shift"]), bool(z["relu"])
            pes = tuple(PEImage(z[f"pe{k}_weight_idx"], z[f"pe{k}_rel_index"], z[f"pe{k}_col_ptr"])
                        for k in range(n_pe))
        except KeyError as e:
            raise ValueError(f"{path}: missing array {e}") from None
    if rows < 1 or cols < 1 or n_pe < 1:
        raise ValueError(f"{path}: bad shape rows={rows} cols={cols} n_pe={n_pe}")
    packed = EIEPacked(rows=rows, cols=cols, n_pe=n_pe, codebook=codebook, pe=pes)
    for k, pe in enumerate(pes):
        validate_pe(pe, cols, packed.local_rows, where=f"{path} PE {k}")
        for kind, want in (("spmat", entry_word(pe.weight_idx.astype(np.int64), pe.rel_index.astype(np.int64))),
                           ("colptr", pe.col_ptr)):
            hex_path = d / f"{kind}_pe{k}.hex"
            if hex_path.exists() and not np.array_equal(read_memh(hex_path), want):
                raise ValueError(f"{hex_path} disagrees with {path}")
    return packed, shift, relu
