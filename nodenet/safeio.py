"""Reading untrusted files safely: a memory budget, NPZ without pickles, paths kept at home.

Three guards every reader of a project, a dataset or a weights file goes through:

:func:`memory_budget` and :func:`check_size`
    A size read from a file (an NPZ member's or an IDX header's shape, a
    project's Input shape, a layer's weights) is checked against the budget
    *before* anything is allocated. The budget is ``min(4 GiB, half the RAM)``
    unless the environment variable ``NODENET_MEMORY_BUDGET`` sets it (bytes,
    or a number with ``K``, ``M``, ``G`` or ``T``: ``512M``, ``8G``).
:func:`read_npz`
    Every array of an ``.npz`` archive, opened member by member: no pickle,
    no raw (non-``.npy``) member, each header checked against the budget and
    against the member's stored size.
:func:`inside_folder`
    A data path must resolve (``..``, absolute paths and symlinks followed)
    inside the project's folder unless the caller allows otherwise; the error
    (:class:`nodenet.errors.OutsideDataError`) names the field and the path.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from nodenet.errors import DataError, NodenetError, OutsideDataError, brief, shorten

BUDGET_VARIABLE = "NODENET_MEMORY_BUDGET"
DEFAULT_BUDGET_CAP = 4 * 2**30
MAX_NPY_HEADER = 10_000  # bytes; numpy's own limit for untrusted headers
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; longer paths make Path.resolve crawl
MAX_NAME_CHARS = 255  # NAME_MAX: one component of a path
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
# what goes wrong while parsing a damaged or hostile archive
_PARSE_ERRORS = (
    ValueError,
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    SyntaxError,
    tokenize.TokenError,  # a damaged .npy header, parsed by numpy with tokenize
    TypeError,
    OverflowError,
    MemoryError,
)


# -- the memory budget ---------------------------------------------------------------


def memory_budget() -> int:
    """The largest allocation, in bytes, a file may ask for.

    ``NODENET_MEMORY_BUDGET`` if set (``"512M"``, ``"8G"``, ``"1000000"``),
    else ``min(4 GiB, half the physical memory)``.
    """
    text = os.environ.get(BUDGET_VARIABLE, "").strip()
    if text:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text, re.IGNORECASE)
        if not match or float(match[1]) <= 0:
            raise NodenetError(f"{BUDGET_VARIABLE} must be a size like 512M or 8G (got {text!r})")
        return int(float(match[1]) * _UNITS[match[2].upper()])
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GiB
        ram = 8 * 2**30
    return min(DEFAULT_BUDGET_CAP, max(ram // 2, 2**28))


def fmt_bytes(size: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; ``10**10`` -> ``"9.3 GiB"``; sizes past float range
    (an int of 400 digits) -> ``"more than 1e300 bytes"``."""
    try:
        size = float(size)
    except OverflowError:
        return "more than 1e300 bytes"
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover


def size_of(shape: tuple, itemsize: int = 4) -> int:
    """Bytes of an array of ``shape`` (None counts as 1) with ``itemsize``-byte items."""
    return math.prod(1 if d is None else int(d) for d in shape) * int(itemsize)


def over_budget(size: int, budget: int | None = None) -> str | None:
    """``None`` if ``size`` bytes fit the budget, else the end of a sentence saying why not.

    ``budget`` is :func:`memory_budget` unless given (a caller checking many sizes reads
    it once).
    """
    if budget is None:
        budget = memory_budget()
    if size <= budget:
        return None
    return (
        f"{fmt_bytes(size)}, more than the memory budget of {fmt_bytes(budget)} "
        f"(set {BUDGET_VARIABLE} to change it)"
    )


def check_size(what: str, shape: tuple, itemsize: int, error: type = DataError) -> None:
    """Raise ``error`` naming ``what`` when an array of ``shape`` would exceed the budget."""
    reason = over_budget(size_of(shape, itemsize))
    if reason is not None:
        raise error(f"{what}: an array of shape {tuple(shape)} would take {reason}")


# -- NPZ ----------------------------------------------------------------------------------


def read_npz(path: str | os.PathLike, error: type = DataError) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, keyed by name, never unpickling anything.

    Raises ``error`` (a :class:`NodenetError` class taking a message) naming the
    file and the array for anything that is not a plain archive of ``.npy``
    arrays of numbers or text, or that claims more memory than the budget.
    """
    path = Path(path)
    name = path.name
    try:
        with open_regular(path, error) as f:
            return _read_archive(name, f, error)
    except OSError as err:
        raise error(f"{name}: cannot be read: {err.strerror or err}") from None


def _read_archive(name: str, f, error: type) -> dict[str, np.ndarray]:
    start = f.read(6)
    f.seek(0)
    if start.startswith(b"\x93NUMPY"):
        raise error(f"{name}: holds a single .npy array; save named arrays with np.savez")
    if not start.startswith(b"PK"):
        pickled = start[:1] == b"\x80"
        hint = " (it may hold pickled data, which nodenet never loads)" if pickled else ""
        raise error(f"{name}: not an .npz archive{hint}")
    try:
        with zipfile.ZipFile(f) as archive:
            return _read_members(name, archive, error)
    except NodenetError:
        raise
    except _PARSE_ERRORS as err:
        raise error(f"{name}: not a readable .npz file ({_reason(err)})") from None


def _read_members(name: str, archive: zipfile.ZipFile, error: type) -> dict[str, np.ndarray]:
    members = [info for info in archive.infolist() if not info.is_dir()]
    headers = {}
    for info in members:
        if not info.filename.endswith(".npy"):
            raise error(f"{name}: member {info.filename!r} is not an .npy array")
        key = info.filename[: -len(".npy")]
        if key in headers:
            raise error(f"{name}: holds two arrays named {key!r}")
        headers[key] = (info, *_member_header(name, key, archive, info, error))
    total = sum(size_of(shape, dtype.itemsize) for _, shape, dtype in headers.values())
    reason = over_budget(total)
    if reason is not None:
        raise error(f"{name}: its arrays would take {reason}")
    arrays = {}
    for key, (info, _, _) in headers.items():
        try:
            with archive.open(info) as member:
                arrays[key] = np.lib.format.read_array(
                    member, allow_pickle=False, max_header_size=MAX_NPY_HEADER
                )
        except _PARSE_ERRORS as err:
            raise error(f"{name}: array {key!r} cannot be read ({_reason(err)})") from None
    return arrays


def _member_header(
    name: str, key: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, error: type
) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an ``.npy`` member claims, checked before reading its data."""
    fmt = np.lib.format
    try:
        with archive.open(info) as member:
            version = fmt.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise error(f"{name}: array {key!r} uses .npy version {version}, not supported")
            read_header = (
                fmt.read_array_header_1_0 if version == (1, 0) else (fmt.read_array_header_2_0)
            )
            shape, _, dtype = read_header(member, max_header_size=MAX_NPY_HEADER)
            header_bytes = member.tell()
    except NodenetError:
        raise
    except _PARSE_ERRORS as err:
        raise error(f"{name}: array {key!r} has a damaged header ({_reason(err)})") from None
    if dtype.hasobject:
        raise error(
            f"{name}: array {key!r} holds Python objects; nodenet never unpickles data "
            "(save numbers or text)"
        )
    claimed = size_of(shape, dtype.itemsize)
    reason = over_budget(claimed)
    if reason is not None:
        raise error(f"{name}: array {key!r} of shape {tuple(shape)} would take {reason}")
    held = info.file_size - header_bytes
    if claimed > held:
        raise error(
            f"{name}: array {key!r} claims shape {tuple(shape)} ({claimed} bytes) but the "
            f"file holds only {max(held, 0)} bytes of it"
        )
    return tuple(shape), dtype


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text[:200] or type(err).__name__


# -- paths ---------------------------------------------------------------------------------


def inside_folder(
    field: str, given: str, full: Path, folder: Path | None, allow: bool = False
) -> Path:
    """``full`` if it resolves inside ``folder`` (or ``allow``), else OutsideDataError.

    ``folder`` ``None`` means the current directory (a project not saved yet).
    Symlinks are followed, so a link inside the folder to a file outside it is
    refused too. The data of nodenet's bundled samples is always allowed, so a
    copy of a sample opened in the GUI reads it from wherever it is saved.
    """
    check_path_length(field, str(full))
    if allow:
        return full
    root = Path(folder if folder is not None else Path.cwd()).resolve()
    resolved = full.resolve()
    for allowed in (root, *bundled_samples()):
        if resolved == allowed or resolved.is_relative_to(allowed):
            return full
    raise OutsideDataError(field, given, resolved, root)


def bundled_samples() -> list[Path]:
    """The folders of nodenet's bundled sample projects (in the package or beside it)."""
    package = Path(__file__).resolve().parent
    candidates = (package / "sample_projects", package.parent / "sample_projects")
    return [c.resolve() for c in candidates if c.is_dir()]


def check_path_length(field: str, path: str) -> None:
    """Refuse, before it is resolved, a path longer than the system could open.

    ``Path.resolve`` on a megabyte path takes a minute; no file system accepts
    more than :data:`MAX_PATH_CHARS` characters, or :data:`MAX_NAME_CHARS` in
    one component, so such a path names no file anyway.
    """
    if len(path) > MAX_PATH_CHARS:
        raise DataError(
            f"{field}: the path {brief(path)} is longer than {MAX_PATH_CHARS:,} characters"
        )
    longest = max(re.split(r"[\\/]", path), key=len)
    if len(longest) > MAX_NAME_CHARS:
        raise DataError(
            f"{field}: the path {brief(path)} has a name longer than {MAX_NAME_CHARS} characters"
        )


# -- regular files only -------------------------------------------------------------------

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def kind_of(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words (``"a named pipe (FIFO)"``)."""
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike, error: type = DataError):
    """``path`` opened for binary reading, if it is a regular file; else ``error``.

    Pipes, devices and sockets are refused before they are opened (a FIFO would
    block the reader forever; ``/dev/zero`` never ends and its ``st_size`` says
    0), and again on the opened descriptor, which is opened without blocking,
    so a file swapped for a pipe in between cannot hang the reader either.
    """
    path = Path(path)
    before = os.stat(path).st_mode
    if not stat.S_ISREG(before):
        raise error(_not_regular(path, before))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(_not_regular(path, mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def check_regular(where: str, path: Path) -> None:
    """Refuse, naming ``where``, a path that is neither a regular file nor a folder."""
    mode = os.stat(path).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataError(f"{where}: {_not_regular(path, mode)}")


def _not_regular(path: Path, mode: int) -> str:
    name = shorten(path.name)
    return f"{name} is {kind_of(mode)}, not a regular file; nodenet reads only regular files"
