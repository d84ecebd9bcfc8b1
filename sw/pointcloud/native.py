"""The sparse convolution's per-offset gather → matmul → scatter-add as one C loop (``sparse_conv3d``).

For each pair ``(i, o)`` of an offset's map, in order, the product ``x[i] @ W_k`` is summed over
``C_in`` in order in registers and added once into ``out[o]``: like the torch gather/GEMM/
``index_add_`` path, one addition per offset into each output, in offset order, but without the
gathered copy, the product matrix or a second pass over it. Single-threaded and deterministic
(the sum over ``C_in`` may round differently from torch's GEMM).

Built on first use with the system C compiler (``$CC`` or ``cc``; ``-O3 -march=native``) into
``$SPARSEHW_CACHE/native`` (``~/.cache/sparsehw/native``), keyed by the source, the flags and the
machine; written under a temporary name and renamed, so concurrent first uses are safe. Without
a compiler :func:`library` returns ``None`` and ``sparse_conv3d`` uses torch.
"""

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = r"""
#include <stdint.h>

/* out[o] += x[i] @ w for each pair (i, o) of pairs[0 .. m-1]: x (n_in, ci), w (ci, co), out
   (n_out, co), all row-major. Blocks of 2 vectors of outputs accumulate in registers (GCC/Clang
   vector extensions: AVX2 with -march=native where the machine has it), then a remainder loop. */
#define ACCUMULATE(NAME, T, LANES)                                                                 \
typedef T NAME##_v __attribute__((vector_size(LANES * sizeof(T)), aligned(sizeof(T))));           \
void NAME(T *restrict out, const T *restrict x, const int64_t *restrict pairs, int64_t m,          \
          const T *restrict w, int64_t ci, int64_t co) {                                         \
    for (int64_t p = 0; p < m; ++p) {                                                              \
        const T *restrict xr = x + pairs[2 * p] * ci;                                              \
        T *restrict orow = out + pairs[2 * p + 1] * co;                                            \
        int64_t c0 = 0;                                                                            \
        for (; c0 + 2 * LANES <= co; c0 += 2 * LANES) {                                            \
            NAME##_v a0 = {0}, a1 = {0};                                                           \
            for (int64_t c = 0; c < ci; ++c) {                                                     \
                const T xv = xr[c];                                                                \
                const NAME##_v *wr = (const NAME##_v *)(w + c * co + c0);                          \
                a0 += xv * wr[0];                                                                  \
                a1 += xv * wr[1];                                                                  \
            }                                                                                      \
            *(NAME##_v *)(orow + c0) += a0;                                                        \
            *(NAME##_v *)(orow + c0 + LANES) += a1;                                                \
        }                                                                                          \
        for (; c0 < co; ++c0) {                                                                    \
            T acc = 0;                                                                             \
            for (int64_t c = 0; c < ci; ++c) acc += xr[c] * w[c * co + c0];                        \
            orow[c0] += acc;                                                                       \
        }                                                                                          \
    }                                                                                              \
}

ACCUMULATE(accumulate_f32, float, 8)
ACCUMULATE(accumulate_f64, double, 4)
"""

FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC", "-std=gnu11")


def _cache() -> Path:
    from sw.models.train import cache_dir

    return cache_dir() / "native"


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def _build(cc: str, path: Path) -> bool:
    """Compile :data:`SOURCE` into ``path`` (under a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        src = Path(tmp) / "sparse_conv.c"
        src.write_text(SOURCE)
        built = Path(tmp) / path.name
        if subprocess.run([cc, *FLAGS, str(src), "-o", str(built)], capture_output=True).returncode:
            return False
        os.replace(built, path)
    return True


@functools.cache
def library():
    """The compiled kernel (``ctypes.CDLL``), built on first use; ``None`` without a C compiler or
    when the build fails (the compiler's error, or a cache directory that cannot be written)."""
    cc = _compiler()
    if cc is None:
        return None
    key = hashlib.sha256("\0".join([SOURCE, *FLAGS, cc, platform.machine(), platform.node()]).encode()).hexdigest()
    path = _cache() / f"sparse_conv-{key[:16]}.so"
    try:
        if not path.exists() and not _build(cc, path):
            return None
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    for name in ("accumulate_f32", "accumulate_f64"):
        fn = getattr(lib, name)
        fn.restype = None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                       ctypes.c_int64, ctypes.c_int64]
    return lib
