"""What every ``sparsehw`` command shares (docs/spec.md §6.2): errors reported as one line with exit
status 2, checked loading of the user's files, and outputs that appear complete or not at all and
never replace a user's file without ``--force``.

A command checks its arguments and output paths first (:func:`check_output_file`,
:func:`check_output_files`, :func:`check_output_dir`), loads its inputs (:func:`load_array`,
:func:`load_arrays`), does its work, and writes through :func:`atomic_write`, :func:`new_dir` or
:func:`new_files`. Library writers (``write_eie_images``, ``save_model``, ...) use the same
checks, so ``force=True`` means what ``--force`` means.
"""

import argparse
import os
import secrets
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"


class CLIError(ValueError):
    """A bad argument, input file or output path. The message names the option or file;
    ``sparsehw`` prints it as ``sparsehw <command>: error: <message>`` and exits with status 2."""


class OutputExists(CLIError, FileExistsError):
    """An output that exists and is replaced only with ``--force`` (``force=True``)."""


class Parser(argparse.ArgumentParser):
    """``argparse`` whose own errors are one line too (no usage block): exit status 2."""

    def error(self, message):
        self.exit(2, error_line(self.prog, message))


def error_line(prog: str, message) -> str:
    return f"{prog}: error: {' '.join(str(message).splitlines())}\n"


def command_prog(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The ``prog`` of the innermost subcommand ``args`` selected (``sparsehw sim eie``)."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, sub.dest, None) if sub is not None else None
        if name is None:
            return parser.prog
        parser = sub.choices[name]


def run(parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse ``argv`` and call the chosen command's ``args.func(args)``; a :class:`CLIError`
    becomes one line on stderr and exit status 2."""
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CLIError as e:
        sys.stderr.write(error_line(command_prog(parser, args), e))
        return 2


def _named(path, option) -> str:
    return f"{option} {path}" if option else str(path)


@contextmanager
def bad_input(what: str = "", sep: str = ": "):
    """Turn a library ``ValueError`` raised in the block into a :class:`CLIError` prefixed with
    ``what`` (the option, and the file unless the message starts with it: ``sep=" "``)."""
    try:
        yield
    except CLIError as e:
        if sep == " " and what:
            raise CLIError(f"{what} {e}") from None
        raise
    except ValueError as e:
        raise CLIError(f"{what}{sep}{e}" if what else str(e)) from None


def in_range(option: str, value, lo=None, hi=None, interval: str = "[]"):
    """``value`` after checking it lies in the ``interval`` (``"[]"``, ``"[)"``, ``"(]"``, ``"()"``)
    from ``lo`` to ``hi`` (``None``: unbounded); NaN never does."""
    above = lo is None or (value >= lo if interval[0] == "[" else value > lo)
    below = hi is None or (value <= hi if interval[1] == "]" else value < hi)
    if value == value and above and below:
        return value
    if lo is None or hi is None:
        bound = (f"{'>' if interval[0] == '(' else '>='} {lo}" if hi is None
                 else f"{'<' if interval[1] == ')' else '<='} {hi}")
        raise CLIError(f"{option} {value} must be {bound}")
    if interval == "[]" and isinstance(lo, int) and isinstance(hi, int):
        raise CLIError(f"{option} {value} is out of range {lo}..{hi}")
    raise CLIError(f"{option} {value} is outside {interval[0]}{lo}, {hi}{interval[1]}")


def either(first: str, first_given, second: str, second_given, *, only_first: dict, why: str) -> bool:
    """Two ways to name an input (``first``/``second``, usage strings such as ``"--weights W.npy"``):
    exactly one must be given, and the options of ``only_first`` (option -> given) belong to the
    first. Returns whether the first was given."""
    if bool(first_given) == bool(second_given):
        a, b = first.split()[0], second.split()[0]
        raise CLIError(f"give either {first} or {second}" if not first_given else f"give either {a} or {b}, not both")
    if second_given:
        for option, given in only_first.items():
            if given:
                raise CLIError(f"{option} applies to {first.split()[0]} only; {why}")
    return bool(first_given)


# ---------------------------------------------------------------- inputs

def input_file(path, option: str | None = None) -> Path:
    """``path`` after checking it is a readable file (not missing, not a directory)."""
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{_named(p, option)}: no such file")
    if p.is_dir():
        raise CLIError(f"{_named(p, option)} is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise CLIError(f"{_named(p, option)}: not readable (permission denied)")
    return p


def _head(p: Path, option) -> bytes:
    if p.stat().st_size == 0:
        raise CLIError(f"{_named(p, option)}: empty file (0 bytes)")
    with open(p, "rb") as f:
        return f.read(len(NPY_MAGIC))


def load_array(path, option: str | None = None) -> np.ndarray:
    """The array in a ``.npy`` file; :class:`CLIError` naming ``option`` and the file when it is
    missing, empty, truncated, pickled (object arrays), an ``.npz`` archive or not ``.npy`` at all."""
    p = input_file(path, option)
    head = _head(p, option)
    if head.startswith(ZIP_MAGIC):
        raise CLIError(f"{_named(p, option)}: an .npz archive; expected one array in a .npy file")
    if not head.startswith(NPY_MAGIC):
        raise CLIError(f"{_named(p, option)}: not a .npy file")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - arbitrary bytes fail np.load in many ways (ValueError, EOFError, ...)
        raise CLIError(f"{_named(p, option)}: not a readable .npy array ({e})") from None


def load_arrays(path, option: str | None = None) -> dict:
    """Every array of an ``.npz`` file, read completely; :class:`CLIError` naming ``option`` and
    the file when it is missing, empty, truncated, pickled or not an ``.npz`` archive."""
    p = input_file(path, option)
    if not _head(p, option).startswith(ZIP_MAGIC):
        raise CLIError(f"{_named(p, option)}: not an .npz archive")
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - a damaged archive fails in many ways (BadZipFile, EOFError, zlib, ...)
        raise CLIError(f"{_named(p, option)}: not a readable .npz archive ({e})") from None


def npz_array(arrays: dict, key: str, path, what: str | None = None) -> np.ndarray:
    """``arrays[key]`` of the ``.npz`` at ``path`` (read by :func:`load_arrays`); ``ValueError``
    naming the file and the key when it is missing (``what``: the kind of file expected)."""
    if key not in arrays:
        raise ValueError(f"{path}: not {what} (no array {key!r})" if what else f"{path}: missing array {key!r}")
    return arrays[key]


def npz_item(arrays: dict, key: str, path, kind=None, what: str | None = None):
    """The single value ``arrays[key]`` as a Python scalar: of numpy ``kind`` (``np.integer``,
    ``np.bool_``), or with ``kind=None`` any number ``int()`` takes, as an ``int``; ``ValueError``
    naming the file and the key otherwise."""
    v = npz_array(arrays, key, path, what)
    if v.size == 1 and (kind is None or np.issubdtype(v.dtype, kind)):
        try:
            return v.item() if kind is not None else int(v.item())
        except (TypeError, ValueError):
            pass
    raise ValueError(f"{path}: {key!r} must be a single {'bool' if kind is np.bool_ else 'integer'}, "
                     f"got {v.dtype} of shape {v.shape}")


def read_text(path, option: str | None = None) -> str:
    """The ASCII text of a file (``$readmemh`` images); :class:`CLIError` naming the file otherwise."""
    p = input_file(path, option)
    try:
        return p.read_bytes().decode("ascii")
    except UnicodeDecodeError as e:
        raise CLIError(f"{_named(p, option)}: not a text file (byte {e.object[e.start]:#04x} at offset "
                       f"{e.start})") from None


# ---------------------------------------------------------------- output checks (before any work)

def _writable(path: Path, directory: Path, option) -> None:
    """``path`` is written in ``directory``: its nearest existing ancestor must be a directory we may
    write in (missing directories below it are created when the output is written)."""
    d = directory
    while not d.exists():
        d = d.parent
    if not d.is_dir():
        raise CLIError(f"{_named(path, option)}: {d} is a file, not a directory")
    if not os.access(d, os.W_OK | os.X_OK):
        raise CLIError(f"{_named(path, option)}: cannot write in {d} (permission denied)")


def _refuse(existing: list, force: bool, what: str) -> None:
    if existing and not force:
        shown = ", ".join(str(p) for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise OutputExists(f"{what}refusing to overwrite {shown}; pass --force to replace")


def check_output_file(path, *, force: bool, option: str | None = "--out", suffix: str | None = None) -> Path:
    """Check an output file before any work: it ends in ``suffix``, is not a directory, can be
    written, and does not exist unless ``force``. Returns it as a ``Path``."""
    p = Path(path)
    if suffix and p.suffix != suffix:
        raise CLIError(f"{_named(p, option)}: the file name must end in {suffix}")
    if p.is_dir():
        raise CLIError(f"{_named(p, option)} is a directory; name the file to write")
    _writable(p, p.parent, option)
    _refuse([p] if p.exists() else [], force, f"{option}: " if option else "")
    return p


def check_output_files(directory, names, *, force: bool, option: str | None = "--out") -> list:
    """Check the files ``names`` a command writes into ``directory`` (other files there are left
    alone): the directory can be written and none of them exists unless ``force``."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise CLIError(f"{_named(d, option)} is a file, not a directory")
    _writable(d, d, option)
    paths = [d / n for n in names]
    for p in paths:
        if p.is_dir():
            raise CLIError(f"{_named(d, option)}: {p} is a directory")
    _refuse([p for p in paths if p.exists()], force, f"{_named(d, option)}: " if option else "")
    return paths


def check_output_dir(path, *, force: bool, owned, kind: str, option: str | None = "--out") -> Path:
    """Check a directory that is replaced as a whole (memory images): it holds nothing but what
    ``owned(entry)`` accepts (``kind`` names that in messages), holds nothing at all unless
    ``force``, and its parent can be written."""
    d = Path(path)
    if d.exists() and not d.is_dir():
        raise CLIError(f"{_named(d, option)} is a file, not a directory")
    _writable(d, d.parent, option)
    entries = sorted(d.iterdir()) if d.exists() else []
    foreign = [e.name for e in entries if not owned(e)]
    if foreign:
        raise CLIError(f"{_named(d, option)} holds {foreign[0]}, which is not one of the {kind}; refusing to "
                       "replace the directory")
    _refuse(entries, force, f"{_named(d, option)} holds {kind}: " if option else "")
    return d


# ---------------------------------------------------------------- writing

def _fresh(directory: Path, name: str, kind: str) -> Path:
    return directory / f".{name}.{kind}-{secrets.token_hex(4)}"


def _make_dirs(d: Path) -> list:
    """Create ``d`` and its missing parents; return the directories created, outermost first."""
    created = []
    while not d.exists():
        created.append(d)
        d = d.parent
    for c in reversed(created):
        c.mkdir()
    return created[::-1]


def _remove_dirs(created: list) -> None:
    for c in reversed(created):
        try:
            c.rmdir()
        except OSError:
            pass


def _reraise_write_error(path, e: BaseException):
    """Re-raise ``e`` from a failed write of ``path``; an OS error (other than the ``--force``
    refusal) becomes a :class:`CLIError` naming ``path``."""
    if isinstance(e, OSError) and not isinstance(e, CLIError):
        raise CLIError(f"{path}: cannot write ({e.strerror or e})") from None
    raise e


def atomic_write(path, write) -> Path:
    """Write a file by ``write(binary_file)`` under a temporary name beside ``path``, then rename it
    into place; on any failure ``path`` is untouched and nothing is left behind."""
    p = Path(path)
    created = []
    tmp = None
    try:
        created = _make_dirs(p.parent)
        tmp = _fresh(p.parent, p.name, "tmp")
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, p)
    except BaseException as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        _remove_dirs(created)
        _reraise_write_error(p, e)
    return p


@contextmanager
def new_dir(path):
    """Build a directory complete, then put it in place of ``path`` as a whole: yields an empty
    directory beside ``path`` to write into; when the block succeeds it replaces ``path`` (the old
    one, if any, is removed), otherwise it is removed and ``path`` is untouched."""
    p = Path(path)
    created, tmp = [], None
    try:
        created = _make_dirs(p.parent)
        tmp = _fresh(p.parent, p.name, "new")
        tmp.mkdir()
        yield tmp
        if p.exists():
            old = _fresh(p.parent, p.name, "old")
            os.rename(p, old)
            try:
                os.rename(tmp, p)
            except BaseException:
                os.rename(old, p)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, p)
    except BaseException as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_dirs(created)
        _reraise_write_error(p, e)


@contextmanager
def new_files(directory):
    """Stage files for ``directory``: yields an empty directory to write them in; when the block
    succeeds each is renamed into ``directory`` (created if missing; other files there are left
    alone), otherwise nothing reaches ``directory``."""
    d = Path(directory)
    if not d.exists():
        with new_dir(d) as stage:
            yield stage
        return
    stage = None
    try:
        stage = _fresh(d, "sparsehw", "stage")
        stage.mkdir()
        yield stage
        for f in sorted(stage.iterdir()):
            os.replace(f, d / f.name)
        stage.rmdir()
    except BaseException as e:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        _reraise_write_error(d, e)

