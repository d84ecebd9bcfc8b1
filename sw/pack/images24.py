"""Memory images of a 2:4-packed int8 layer for the sparse MAC (``sparsehw pack 24``).

``write_24_images(values, meta, out_dir, groups=4)`` writes, after checking the layer:

- ``sparse24.npz``: ``values`` (int8, ``(rows, K // 2)``), ``meta`` (uint8, ``(rows, K // 4)``),
  ``rows``, ``k`` and ``groups``;
- ``sparse24_values.hex``: one ``$readmemh`` word a MAC beat, ``16·groups`` bits: the beat's
  ``2·groups`` kept weights, weight ``j`` (two's complement) in bits ``8j+7..8j``;
- ``sparse24_meta.hex``: one word a beat, ``4·groups`` bits: group ``g``'s field ``i0 | i1 << 2`` in
  bits ``4g+3..4g``.

A beat is ``groups`` consecutive groups of one row (``4·groups`` columns of ``W``); beats run row by
row, ``K / (4·groups)`` a row, in the order the MAC consumes them (the bit positions are those of the
MAC's ``values``/``meta`` payload fields). :func:`read_24_images` reads a directory back and checks
that the hex files agree with the ``.npz``.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np

from sw.cli_io import check_output_dir, load_arrays, new_dir, npz_array, npz_item, read_text
from sw.formats import GROUP_24, KEPT_24, MAC24_GROUPS, META_WIDTH
from sw.pack.sparse24 import check_int8, unpack_24

NPZ_NAME = "sparse24.npz"
VALUES_HEX = "sparse24_values.hex"
META_HEX = "sparse24_meta.hex"
_HEX = np.array(list("0123456789abcdef"))
_VALUE_BITS = 8


class Images24(NamedTuple):
    values: np.ndarray
    meta: np.ndarray
    groups: int


def image_paths(out_dir) -> list:
    out = Path(out_dir)
    return [out / NPZ_NAME, out / VALUES_HEX, out / META_HEX]


def is_24_image(path) -> bool:
    """Whether ``path`` is a file :func:`write_24_images` writes (by its name)."""
    return Path(path).is_file() and Path(path).name in (NPZ_NAME, VALUES_HEX, META_HEX)


def check_groups(groups, k: int) -> int:
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    if k % (GROUP_24 * groups):
        raise ValueError(f"K = {k} is not a multiple of 4·groups = {GROUP_24 * groups}: a MAC beat takes "
                         f"{groups} whole groups; choose groups dividing K / 4 = {k // GROUP_24}")
    return int(groups)


def _nibbles_to_hex(nibbles: np.ndarray) -> str:
    """Rows of nibbles (most significant first) → ``$readmemh`` lines."""
    n, width = nibbles.shape
    if n == 0:
        return ""
    lines = np.ascontiguousarray(_HEX[nibbles]).view(f"<U{width}").reshape(n)
    return "\n".join(lines.tolist()) + "\n"


def beat_words_hex(values: np.ndarray, meta: np.ndarray, groups: int) -> tuple:
    """``(values_hex, meta_hex)`` text of the beat words (validated int8 values, 4-bit meta)."""
    rows, k2 = values.shape
    n_beats = rows * k2 // (KEPT_24 * groups)
    vb = values.astype(np.uint8).reshape(n_beats, KEPT_24 * groups)[:, ::-1]   # weight 0 lowest
    v_nib = np.stack([vb >> 4, vb & 0xF], axis=-1).reshape(n_beats, -1)
    m_nib = meta.astype(np.uint8).reshape(n_beats, groups)[:, ::-1]           # group 0 lowest
    return _nibbles_to_hex(v_nib), _nibbles_to_hex(m_nib)


def write_24_images(values, meta, out_dir, *, groups: int = MAC24_GROUPS, force: bool = False) -> list:
    """Write the ``.npz`` and ``$readmemh`` images of a packed int8 layer as the directory
    ``out_dir``; return their paths.

    ``values`` must be integers in -128..127 and ``meta`` valid (4-bit, ``i0 < i1``), ``K`` a multiple
    of ``4·groups``. The directory is built complete and replaces ``out_dir`` as a whole; existing
    images are replaced only with ``force=True`` (``OutputExists``, a ``FileExistsError``, names
    them), a directory holding other files never is; nothing is written if any check fails.
    """
    v = check_int8(values, "values")
    mt = np.asarray(meta)
    unpack_24(v, mt)                                    # shapes and metadata fields checked here
    rows, k = v.shape[0], v.shape[1] * GROUP_24 // KEPT_24
    groups = check_groups(groups, k)
    out = check_output_dir(out_dir, force=force, owned=is_24_image, kind="2:4 images", option=None)
    values_hex, meta_hex = beat_words_hex(v, mt, groups)
    with new_dir(out) as tmp:
        paths = image_paths(tmp)
        np.savez(paths[0], values=v, meta=mt.astype(np.uint8), rows=rows, k=k, groups=groups)
        paths[1].write_text(values_hex)
        paths[2].write_text(meta_hex)
    return image_paths(out)


_NIBBLE = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate("0123456789abcdef"):
    _NIBBLE[ord(_c)] = _NIBBLE[ord(_c.upper())] = _i


def read_hex_words(path, n_words: int, n_nibbles: int) -> np.ndarray:
    """The ``(n_words, n_nibbles)`` nibbles (most significant first) of a ``$readmemh`` file with one
    fixed-width word a line; ``ValueError`` naming the line on anything else."""
    lines = read_text(path).split()
    if len(lines) != n_words:
        raise ValueError(f"{path}: {len(lines)} words, expected {n_words}")
    for i, line in enumerate(lines):
        if len(line) != n_nibbles:
            raise ValueError(f"{path}: line {i + 1} has {len(line)} hex digits, expected {n_nibbles}")
    if n_words == 0:
        return np.zeros((0, n_nibbles), dtype=np.int64)
    nib = _NIBBLE[np.frombuffer("".join(lines).encode("ascii", "replace"), dtype=np.uint8)]
    nib = nib.reshape(n_words, n_nibbles)
    if (nib < 0).any():
        raise ValueError(f"{path}: line {int(np.argwhere(nib < 0)[0, 0]) + 1} is not hexadecimal")
    return nib


def read_24_images(out_dir) -> Images24:
    """Read what :func:`write_24_images` wrote; ``ValueError`` if the hex images disagree with the
    ``.npz`` or the layer is not valid."""
    npz, vpath, mpath = image_paths(out_dir)
    z = load_arrays(npz)
    values, meta = npz_array(z, "values", npz), npz_array(z, "meta", npz)
    rows, k, groups = (npz_item(z, key, npz) for key in ("rows", "k", "groups"))
    unpack_24(check_int8(values, "values"), meta)
    if values.shape != (rows, k // 2):
        raise ValueError(f"{npz}: values shape {values.shape} disagrees with rows={rows}, k={k}")
    groups = check_groups(groups, k)
    n_beats = rows * k // (GROUP_24 * groups)
    v_nib = read_hex_words(vpath, n_beats, KEPT_24 * groups * _VALUE_BITS // 4)
    vb = (v_nib[:, 0::2] << 4 | v_nib[:, 1::2])[:, ::-1].astype(np.uint8).view(np.int8)
    m_nib = read_hex_words(mpath, n_beats, groups * META_WIDTH // 4)[:, ::-1]
    if not np.array_equal(vb.reshape(values.shape), values):
        raise ValueError(f"{vpath} disagrees with the values in {npz}")
    if not np.array_equal(m_nib.reshape(meta.shape), meta):
        raise ValueError(f"{mpath} disagrees with the metadata in {npz}")
    return Images24(values, meta, groups)
