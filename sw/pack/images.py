"""Memory images of a packed EIE layer (docs/spec.md §2): one ``.npz`` plus ``$readmemh`` files per PE.

Directory layout written by :func:`write_eie_images` (``sparsehw pack eie``):

- ``eie.npz``: ``rows``, ``cols``, ``n_pe``, ``codebook`` (16 values), ``shift``, ``relu``, per
  PE ``pe{k}_weight_idx``, ``pe{k}_rel_index``, ``pe{k}_col_ptr``, and ``row_order`` when the rows
  are stored in another order than the original (``pack_eie(..., balance=True)``; absent = identity);
- ``spmat_pe{k}.hex``: one 8-bit entry a line (``weight_idx << 4 | rel_index``, 2 hex digits);
- ``colptr_pe{k}.hex``: one pointer a line (``cols + 1`` lines, the sentinel last);
- ``codebook.hex``: 16 lines of 16-bit two's complement, written when the codebook is integral
  and fits int16 (a real-valued codebook must be quantised before it can run in hardware).

A network directory (:func:`write_eie_network`, ``sparsehw pack eie --export``) holds one such
directory per layer, named so that name order is layer order (``sparsehw sim eie --net``).
Directories are replaced as a whole, never mixed with an earlier run's files.
"""

import re
from pathlib import Path

import numpy as np

from sw.cli_io import check_output_dir, load_arrays, new_dir, npz_array, npz_item, read_text
from sw.formats import ACT_WIDTH, WEIGHT_WIDTH, entry_word
from sw.pack.eie import EIEPacked, PEImage, check_codebook, check_row_order, validate_pe

NPZ = "eie.npz"
CODEBOOK_HEX = "codebook.hex"
_PE_HEX = re.compile(r"(spmat|colptr)_pe(\d+)\.hex")
_LAYER_DIR = re.compile(r"[^A-Za-z0-9_.-]")


def write_memh(path, values, width_bits: int) -> None:
    """Write non-negative ints one per line as fixed-width hex (``$readmemh`` format); words wider
    than 62 bits are Python ints."""
    digits = max(1, -(-width_bits // 4))
    v = np.asarray(values, dtype=np.int64 if width_bits <= 62 else object)
    if v.size and (v.min() < 0 or v.max() >= 1 << width_bits):
        raise ValueError(f"{path}: values do not fit {width_bits} bits")
    Path(path).write_text("".join(f"{int(x):0{digits}x}\n" for x in v))


def read_memh(path) -> np.ndarray:
    """Read a ``$readmemh`` file of one value per line (``//`` comments and blank lines allowed)."""
    out = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
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


def is_eie_image(path) -> bool:
    """Whether ``path`` is a file :func:`write_eie_images` writes (by its name)."""
    name = Path(path).name
    return Path(path).is_file() and (name in (NPZ, CODEBOOK_HEX) or bool(_PE_HEX.fullmatch(name)))


def is_eie_layer_dir(path) -> bool:
    """Whether ``path`` is a directory holding only EIE images (a layer of a network directory)."""
    p = Path(path)
    return p.is_dir() and all(is_eie_image(e) for e in p.iterdir())


def _check_shift(shift) -> int:
    if not 0 <= int(shift) < ACT_WIDTH:
        raise ValueError(f"shift must be in 0..{ACT_WIDTH - 1}, got {shift}")
    return int(shift)


def _write_layer(packed: EIEPacked, out: Path, shift: int, relu: bool) -> list:
    names = [NPZ] + [f"{kind}_pe{k}.hex" for k in range(packed.n_pe) for kind in ("spmat", "colptr")]
    arrays = dict(rows=packed.rows, cols=packed.cols, n_pe=packed.n_pe, codebook=packed.codebook,
                  shift=int(shift), relu=bool(relu))
    for k, pe in enumerate(packed.pe):
        arrays[f"pe{k}_weight_idx"] = pe.weight_idx
        arrays[f"pe{k}_rel_index"] = pe.rel_index
        arrays[f"pe{k}_col_ptr"] = pe.col_ptr
    if packed.reordered:
        arrays["row_order"] = check_row_order(packed.row_order, packed.rows)
    np.savez(out / NPZ, **arrays)
    ptr_bits = max(1, int(max(int(pe.col_ptr[-1]) for pe in packed.pe)).bit_length())
    for k, pe in enumerate(packed.pe):
        write_memh(out / f"spmat_pe{k}.hex",
                   entry_word(pe.weight_idx.astype(np.int64), pe.rel_index.astype(np.int64)), 8)
        write_memh(out / f"colptr_pe{k}.hex", pe.col_ptr, ptr_bits)
    if codebook_is_integral(packed.codebook):
        cb = np.asarray(packed.codebook, dtype=np.int64) & ((1 << WEIGHT_WIDTH) - 1)
        write_memh(out / CODEBOOK_HEX, cb, WEIGHT_WIDTH)
        names.append(CODEBOOK_HEX)
    return names


def write_eie_images(packed: EIEPacked, out_dir, *, shift: int = 0, relu: bool = True,
                     force: bool = False) -> list:
    """Write the images of ``packed`` as the directory ``out_dir``; returns the paths written.

    The directory is built complete beside ``out_dir`` and then replaces it as a whole, so no
    file of an earlier layer survives. An existing image directory is replaced only with
    ``force``; a directory holding anything but EIE images never is (``CLIError``).
    """
    shift = _check_shift(shift)
    out = check_output_dir(out_dir, force=force, owned=is_eie_image, kind="EIE images", option=None)
    with new_dir(out) as tmp:
        names = _write_layer(packed, tmp, shift, relu)
    return [out / n for n in names]


def layer_dir_names(names) -> list:
    """The directory of each layer in a network directory: its position, then its name, so that
    name order is layer order (``00_fc1``, ``01_fc2``, ...)."""
    width = max(2, len(str(len(names) - 1)))
    return [f"{i:0{width}d}_{_LAYER_DIR.sub('_', str(n))}" for i, n in enumerate(names)]


def write_eie_network(layers, out_dir, *, force: bool = False) -> list:
    """Write a network directory: ``layers`` is ``[(name, packed, shift, relu)]`` in order, each
    written by :func:`write_eie_images` into the subdirectory :func:`layer_dir_names` gives it.
    ``out_dir`` is replaced as a whole, as in :func:`write_eie_images`. Returns the layer
    directories."""
    if not layers:
        raise ValueError("a network needs at least one layer")
    layers = [(name, packed, _check_shift(shift), relu) for name, packed, shift, relu in layers]
    out = check_output_dir(out_dir, force=force, owned=is_eie_layer_dir, kind="EIE layer directories",
                           option=None)
    dirs = layer_dir_names([name for name, *_ in layers])
    with new_dir(out) as tmp:
        for d, (_, packed, shift, relu) in zip(dirs, layers, strict=True):
            (tmp / d).mkdir()
            _write_layer(packed, tmp / d, shift, relu)
    return [out / d for d in dirs]


def network_dirs(directory) -> list:
    """The layer directories of a network directory: subdirectories holding ``eie.npz``, in name order."""
    d = Path(directory)
    if not d.is_dir():
        raise ValueError(f"{d}: no such directory")
    layers = sorted(p for p in d.iterdir() if (p / NPZ).is_file())
    if not layers:
        raise ValueError(f"{d}: no layer directories (subdirectories with {NPZ}) found")
    return layers


def read_eie_images(directory):
    """Load and validate images written by :func:`write_eie_images`.

    Returns ``(packed, shift, relu)``. Raises ``ValueError`` naming the file and the problem for
    a malformed image: an unreadable or truncated ``eie.npz``, missing arrays, a ``row_order``
    that is not a permutation of ``range(rows)``, a PE that fails ``validate_pe``, a missing hex
    file (``codebook.hex`` is required exactly when the codebook is integral int16), a hex file
    that disagrees with the ``.npz``, or a PE file beyond ``n_pe``.
    """
    d = Path(directory)
    path = d / NPZ
    if not path.exists():
        raise ValueError(f"{d}: no {NPZ} (write images with `sparsehw pack eie`)")
    z = load_arrays(path)
    rows, cols, n_pe = (npz_item(z, k, path) for k in ("rows", "cols", "n_pe"))
    shift, relu = npz_item(z, "shift", path), bool(npz_item(z, "relu", path))
    if rows < 1 or cols < 1 or n_pe < 1:
        raise ValueError(f"{path}: bad shape rows={rows} cols={cols} n_pe={n_pe}")
    try:
        shift = _check_shift(shift)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    try:
        codebook = check_codebook(npz_array(z, "codebook", path))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    pes = tuple(PEImage(*(npz_array(z, f"pe{k}_{a}", path) for a in ("weight_idx", "rel_index", "col_ptr")))
                for k in range(n_pe))
    row_order = None
    if "row_order" in z:
        try:
            row_order = check_row_order(z["row_order"], rows)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    packed = EIEPacked(rows=rows, cols=cols, n_pe=n_pe, codebook=codebook, pe=pes, row_order=row_order)
    for k, pe in enumerate(pes):
        validate_pe(pe, cols, packed.local_rows, where=f"{path} PE {k}")
        for kind, want in (("spmat", entry_word(pe.weight_idx.astype(np.int64), pe.rel_index.astype(np.int64))),
                           ("colptr", pe.col_ptr)):
            _check_hex(d / f"{kind}_pe{k}.hex", want, path)
    cb_hex = d / CODEBOOK_HEX
    if codebook_is_integral(codebook):
        _check_hex(cb_hex, np.asarray(codebook, dtype=np.int64) & ((1 << WEIGHT_WIDTH) - 1), path)
    elif cb_hex.exists():
        raise ValueError(f"{cb_hex} is stale: the codebook in {path} is not integral int{WEIGHT_WIDTH}")
    for f in sorted(d.iterdir()):
        m = _PE_HEX.fullmatch(f.name)
        if m and int(m.group(2)) >= n_pe:
            raise ValueError(f"{f} is stale: {path} has {n_pe} PEs")
    return packed, shift, relu


def _check_hex(hex_path: Path, want, npz_path) -> None:
    if not hex_path.exists():
        raise ValueError(f"{hex_path} is missing (written with {npz_path.name} by `sparsehw pack eie`)")
    if not np.array_equal(read_memh(hex_path), want):
        raise ValueError(f"{hex_path} disagrees with {npz_path}")
