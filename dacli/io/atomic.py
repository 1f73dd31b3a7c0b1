"""Every dacli output file is written here: whole, or not at all.

:func:`check_writable` refuses, before any computing, a target that cannot be written: an
existing file without ``overwrite``, a directory, a FIFO, a device or another non-regular file, a
missing folder, and a folder where the operating system refuses a new file (``/proc``, a
read-only file system, no permission): it creates and removes an empty probe file there, since
``os.access`` says yes to root everywhere. A disk that fills up later is only found when writing.

:func:`write_atomically` writes through a temporary file in the target folder (same file
system, so the rename is atomic), gives it the usual permissions (``0o666`` less the umask;
``mkstemp`` makes ``0o600``), flushes it to disk, and ``os.replace``-s it onto the target. On
any failure, an interrupt included, the temporary file is removed and an existing target is left
as it was. An operating-system failure (an OSError, or an error raised from one: equinox wraps
it in a RuntimeError) becomes an :class:`OutputError` (exit 5) naming the target and the OS's
reason. Writers do not always report the OS's reason: on a full disk netCDF4 raises
``PermissionError(13)`` when it cannot create the file and ``RuntimeError("NetCDF: HDF error")``
when a later write fails (EFBIG at a file size limit likewise), numpy (under equinox) an OSError
"N requested and M written" without an errno. So after any error while writing, 1 MiB more is
appended to the temporary file and synced: if the OS refuses that, its reason (ENOSPC, EFBIG,
EDQUOT, EIO) is the one given, with what the writer said. An error that is not an OS error and
leaves the disk writable is a bug and goes up as it is (exit 70).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from dacli.errors import OutputError

_PROBE_BYTES = 1 << 20  # appended to a failed temporary file to ask the OS why writing fails


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """``path`` if a file can be written there (``overwrite``: replacing an existing one), else an
    OutputError."""
    path = Path(path)
    kind = _kind(path)
    if kind == "directory":
        raise OutputError(f"output path {path} is a directory")
    if kind is not None and kind != "regular file":
        raise OutputError(
            f"output path {path} is a {kind}, not a regular file; dacli writes its outputs through "
            "a temporary file renamed into place, so it cannot write into one: name a regular file"
        )
    if kind is not None and not overwrite:
        raise OutputError(
            f"output file {path} exists; pass --overwrite (or output.overwrite = true) to "
            "replace it"
        )
    folder = _folder(path)
    try:
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: cannot create a file in {folder} ({_reason(exc, folder)})"
        ) from None
    os.close(handle)
    _remove(probe)
    return path


def write_atomically(
    path: str | Path,
    write: Callable[[Path], None] | bytes,
    *,
    overwrite: bool,
    make_folder: bool = False,
) -> Path:
    """Write ``path`` whole or not at all: ``write(temporary)`` (or the bytes ``write``) then a
    rename.

    ``overwrite``: replace an existing file (else an OutputError, before writing anything);
    ``make_folder``: create the missing folders first.
    """
    path = Path(path)
    if make_folder:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot write {path}: cannot create its folder {path.parent} ({_reason(exc)})"
            ) from None
    check_writable(path, overwrite)
    folder = _folder(path)
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: cannot create a file in {folder} ({_reason(exc, folder)})"
        ) from None
    temporary, writing = Path(name), True
    try:
        os.close(handle)
        if isinstance(write, bytes):
            temporary.write_bytes(write)
        else:
            write(temporary)
        writing = False
        os.chmod(temporary, 0o666 & ~_umask())
        _sync(temporary)
        os.replace(temporary, path)
    except BaseException as exc:
        failure = _os_error_in(exc)
        cause = _why_writing_fails(temporary) if writing and isinstance(exc, Exception) else None
        _remove(temporary)
        if cause is not None and (failure is None or failure.errno != cause.errno):
            said = _reason(failure) if failure is not None else f"{type(exc).__name__}: {exc}"
            raise OutputError(
                f'cannot write {path}: {_reason(cause)} (the writer reported "{said}"; a test '
                "write to the same temporary file then failed with this reason)"
            ) from None
        if failure is not None:
            raise OutputError(f"cannot write {path}: {_reason(failure)}") from None
        raise
    _sync_folder(path)
    return path


def replace_file(path: str | Path, content: bytes) -> Path:
    """``content`` to ``path`` whole or not at all, replacing it, its folder made if missing:
    for metrics, snippets and tables whose callers refused an existing file before computing.
    Not for outputs a user may not want replaced: use :func:`write_atomically` with
    ``overwrite`` from the command line."""
    return write_atomically(path, content, overwrite=True, make_folder=True)


def _kind(path: Path) -> str | None:
    """What ``path`` is (following links): None when nothing is there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        # e.g. a part of the path is a file (ENOTDIR), no permission to look (EACCES)
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    kinds = (
        (stat.S_ISREG, "regular file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "FIFO (named pipe)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    )
    for test, kind in kinds:
        if test(mode):
            return kind
    return "special file"


def _folder(path: Path) -> Path:
    """The folder ``path`` is written in; an OutputError if it is missing or not a folder."""
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"output folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"output folder {folder} is not a directory")
    return folder


def _reason(exc: OSError, folder: Path | None = None) -> str:
    """'[Errno 28] No space left on device', without the temporary file's name an OSError may
    carry."""
    if exc.errno is None:
        return str(exc)
    reason = f"[Errno {exc.errno}] {exc.strerror or os.strerror(exc.errno)}"
    if exc.errno == errno.ENOENT and folder is not None and folder.is_dir():
        reason += ": the file system there does not accept new files"  # e.g. /proc
    return reason


def _os_error_in(exc: BaseException) -> OSError | None:
    """``exc`` if an OSError, else the OSError it was raised from (``raise ... from``: equinox wraps
    a full disk's OSError in a RuntimeError naming the leaf); None for an interrupt or an error with
    no OS error behind it."""
    seen = set()
    current: BaseException | None = exc
    while isinstance(current, Exception) and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def _why_writing_fails(temporary: Path) -> OSError | None:
    """The OS error that appending ``_PROBE_BYTES`` to ``temporary`` and syncing it gives now (None:
    it works).

    Asked after a writer failed: a full disk (ENOSPC), a quota (EDQUOT), a file size limit (EFBIG),
    an I/O error (EIO) show up here; a bug in the writer does not.
    """
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        return exc
    try:
        block, written = bytes(1 << 16), 0
        while written < _PROBE_BYTES:
            written += os.write(handle, block)
        os.fsync(handle)
    except OSError as exc:
        return exc
    finally:
        os.close(handle)
    return None


def _sync(path: Path) -> None:
    """Flush ``path``'s data to disk before it is renamed (a delayed write error shows up here, not
    later)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _sync_folder(path: Path) -> None:
    """Best effort: make the rename itself durable (not every file system can sync a folder)."""
    with contextlib.suppress(OSError):
        handle = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _remove(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _umask() -> int:
    """The process umask, read from Linux's /proc/self/status where it can be (os.umask changes it,
    for a moment, for every thread)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current
