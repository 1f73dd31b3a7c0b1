"""Output faults end in exit 5 (issue 16, item 6): a full disk, a file size limit, a read-only or
unwritable folder, a target under /proc, a target that is a directory, a FIFO or a device.

Each fault must exit 5 with a message naming the target and the operating system's reason, leave
no temporary file (``.<name>.*.tmp``) beside it, and leave an existing file at the target
byte-identical (``--overwrite`` onto a full disk included). A full disk is a small tmpfs mounted
for the test (root only: skipped with the reason otherwise); the portable stand-in is a file size
limit (``RLIMIT_FSIZE``) on a child process, where writes fail with EFBIG. The command-line cases
use ``dacli simulate`` (the fastest command that writes files; refusals come before any
computing) and one ``dacli assimilate``; the checkpoint and PNG writers are tested as functions.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dacli.errors import OUTPUT_ERROR, OutputError

CONFIG = "configs/lorenz96.toml"
SIMULATE = ["--set", "simulate.duration=1"]  # a short twin: the refusals and write faults need no more
ASSIMILATE = ["--set", "window.count=3", "--set", "method.max_steps=80"]  # the program test_bad_input compiles
PRECIOUS = b"last week's results\n" * 50


# --- helpers -----------------------------------------------------------------------------------

def leftovers(folder: Path) -> list[str]:
    """Temporary files a write would leave (``.<name>.*.tmp``)."""
    return sorted(p.name for p in folder.glob(".*.tmp"))


def simulate_args(folder: Path, observations) -> list:
    """``dacli simulate`` writing its observations to ``observations`` and the rest into ``folder``."""
    return ["simulate", CONFIG, *SIMULATE, "--overwrite", "--set", f"observations.path={observations}",
            "--set", f"background.path={folder / 'b.nc'}", "--set", f"truth.path={folder / 't.nc'}"]


def assert_output_error(result, path, *reasons):
    """Exit 5, one error line naming ``path`` and each of ``reasons``; no traceback, no internal error."""
    stderr = result.stderr
    assert result.exit_code == OUTPUT_ERROR, stderr
    assert "dacli: error: " in stderr and "internal error" not in stderr and "Traceback" not in stderr, stderr
    assert str(path) in stderr, stderr
    for reason in reasons:
        assert reason in stderr, stderr


def _mount_tmpfs(folder: Path, options: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def mounts():
    """``mount(folder, options)``: a tmpfs at ``folder``; every one is unmounted at teardown."""
    mounted = []

    def mount(folder: Path, options: str) -> Path:
        _mount_tmpfs(folder, options)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)


def fill(folder: Path) -> None:
    """Fill ``folder``'s file system until the OS says ENOSPC."""
    block = b"\0" * 4096
    with open(folder / "filler", "wb", buffering=0) as stream:
        with contextlib.suppress(OSError):
            while True:
                stream.write(block)
    with pytest.raises(OSError) as info:  # really full: not even one more block
        with open(folder / "filler", "ab", buffering=0) as stream:
            stream.write(block)
    assert info.value.errno == errno.ENOSPC


@pytest.fixture
def full_disk(tmp_path, mounts) -> Path:
    """A full 256 KiB tmpfs holding one precious file, ``old.nc``."""
    folder = mounts(tmp_path / "full", "size=256k")
    (folder / "old.nc").write_bytes(PRECIOUS)
    fill(folder)
    return folder


def limited(size: int, *command) -> list:
    """``command`` run by a Python that first limits its files to ``size`` bytes (writes past it fail with
    EFBIG; Python ignores SIGXFSZ, so the process is not killed). The limit is set in the child, which then
    execs: no fork of this (JAX-threaded) process with a Python pre-exec function."""
    launcher = ("import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2); "
                "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])")
    return [sys.executable, "-c", launcher, str(size), *map(str, command)]


def child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    env["DACLI_COMPILATION_CACHE"] = "off"  # its files would hit the size limit too
    return env


# --- full disk and file size limit --------------------------------------------------------------

def test_full_disk_overwrite_keeps_the_old_file(cli, workspace, full_disk):
    target = full_disk / "old.nc"
    result = cli(simulate_args(workspace, target), workspace)
    assert_output_error(result, target, "No space left on device")
    assert target.read_bytes() == PRECIOUS
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.nc"]
    assert not (workspace / "b.nc").exists() and not (workspace / "t.nc").exists()  # written after it: never


def test_full_disk_new_file(cli, workspace, full_disk):
    target = full_disk / "new.nc"
    result = cli(simulate_args(workspace, target), workspace)
    assert_output_error(result, target, "[Errno 28] No space left on device")
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.nc"]


def test_full_disk_assimilate(cli, workspace, full_disk):
    target = full_disk / "old.nc"
    result = cli(["assimilate", CONFIG, *ASSIMILATE, "--overwrite", "--set", f"output.path={target}"], workspace)
    assert_output_error(result, target, "No space left on device")
    assert target.read_bytes() == PRECIOUS
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.nc"]  # no checkpoint, no temporary


def test_file_size_limit_is_an_output_error(workspace):
    """The portable stand-in for a full disk: a real process that cannot write more than 8 KiB per file."""
    target = workspace / "old.nc"
    target.write_bytes(PRECIOUS)
    args = simulate_args(workspace, target)
    done = subprocess.run(limited(8192, "-m", "dacli", *args), cwd=workspace, env=child_env(), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    done.exit_code = done.returncode
    assert_output_error(done, target, "[Errno 27] File too large", "NetCDF: HDF error")
    assert target.read_bytes() == PRECIOUS
    assert leftovers(workspace) == []


# --- targets that are not regular files, folders that take no file -------------------------------

def _special(kind: str, path: Path) -> None:
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO (named pipe)":
        os.mkfifo(path)
    elif kind == "character device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    elif kind == "socket":
        import socket

        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()


@pytest.mark.parametrize("kind", ["directory", "FIFO (named pipe)", "character device", "socket"])
def test_target_that_is_not_a_regular_file(cli, workspace, kind):
    folder = workspace / "out"
    folder.mkdir()
    target = folder / "obs.nc"
    _special(kind, target)
    before = os.stat(target)
    result = cli(simulate_args(workspace, target), workspace)
    assert_output_error(result, target, f"is a {kind}")
    after = os.stat(target)  # the same node, untouched (not replaced by a regular file)
    assert (after.st_ino, stat.S_IFMT(after.st_mode)) == (before.st_ino, stat.S_IFMT(before.st_mode))
    assert sorted(p.name for p in folder.iterdir()) == ["obs.nc"]
    assert not (workspace / "b.nc").exists()  # refused before computing anything


def test_symlink_to_a_directory_is_a_directory(cli, workspace):
    (workspace / "real").mkdir()
    link = workspace / "obs.nc"
    link.symlink_to(workspace / "real")
    result = cli(simulate_args(workspace, link), workspace)
    assert_output_error(result, link, "is a directory")
    assert link.is_symlink() and list((workspace / "real").iterdir()) == []


@pytest.mark.parametrize("name", ["dacli-output.nc", "version"])
def test_under_proc(cli, workspace, name):
    """A new file under /proc, and an existing one (/proc/version, with --overwrite)."""
    target = Path("/proc") / name
    if not Path("/proc/version").is_file():
        pytest.skip("no /proc here")
    before = target.read_bytes() if target.exists() else None
    result = cli(simulate_args(workspace, target), workspace)
    assert_output_error(result, target, "cannot create a file in /proc", "[Errno ")
    assert (target.read_bytes() if target.exists() else None) == before
    assert not (workspace / "b.nc").exists()


def test_read_only_folder(cli, workspace, tmp_path, mounts):
    """A read-only file system as root (root may write anywhere else); a mode 0o555 folder otherwise."""
    if os.geteuid() == 0:
        folder = mounts(tmp_path / "ro", "size=64k")
        (folder / "old.nc").write_bytes(PRECIOUS)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        reason = "[Errno 30] Read-only file system"
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        (folder / "old.nc").write_bytes(PRECIOUS)
        folder.chmod(0o555)
        reason = "[Errno 13] Permission denied"
    try:
        target = folder / "old.nc"
        result = cli(simulate_args(workspace, target), workspace)
        assert_output_error(result, target, f"cannot create a file in {folder}", reason)
        assert target.read_bytes() == PRECIOUS
        assert sorted(p.name for p in folder.iterdir()) == ["old.nc"]
        assert not (workspace / "b.nc").exists()
    finally:
        if os.geteuid() != 0:
            folder.chmod(0o755)


def test_a_file_where_a_folder_should_be(cli, workspace):
    (workspace / "a.nc").write_bytes(PRECIOUS)
    target = workspace / "a.nc" / "obs.nc"
    result = cli(simulate_args(workspace, target), workspace)
    assert_output_error(result, target, "[Errno 20] Not a directory")
    assert (workspace / "a.nc").read_bytes() == PRECIOUS


# --- the writers as functions --------------------------------------------------------------------

def _checkpoint(path: Path) -> Path:
    import jax.numpy as jnp

    from dacli.io.saved_trees import save_tree

    return save_tree(path, {"note": "test"}, {"x": jnp.zeros(100_000)})


def _figure(path: Path) -> Path:
    from dacli.io.figures import _figure as pyplot
    from dacli.io.figures import save_figure

    plt = pyplot()
    figure = plt.figure(figsize=(20, 20))
    plt.imshow(np.random.default_rng(0).random((600, 600)))
    return save_figure(figure, path, overwrite=True)


def _table(path: Path) -> Path:
    from dacli.io.atomic import replace_file  # sweep's CSV, tune's snippet, train's metrics

    return replace_file(path, b"x" * 300_000)


def _netcdf(path: Path) -> Path:
    import xarray as xr

    from dacli.io.netcdf import write_netcdf_atomically

    data = xr.Dataset({"a": (("t", "x"), np.random.default_rng(0).random((200, 400)))})
    return write_netcdf_atomically(data, path, overwrite=True)


WRITERS = {"checkpoint": _checkpoint, "figure": _figure, "table": _table, "netcdf": _netcdf}


@pytest.mark.parametrize("writer", WRITERS)
def test_writers_on_a_full_disk(full_disk, writer):
    target = full_disk / "old.nc"
    with pytest.raises(OutputError) as info:
        WRITERS[writer](target)
    assert str(info.value).startswith(f"cannot write {target}: [Errno 28] No space left on device")
    assert info.value.exit_code == OUTPUT_ERROR
    assert target.read_bytes() == PRECIOUS
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler", "old.nc"]


def test_writers_at_a_file_size_limit(tmp_path):
    """Each writer in a child process limited to 64 KiB files: EFBIG, the old file kept, nothing left."""
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_output_faults import WRITERS
        from dacli.errors import OutputError
        results = {{}}
        for name, writer in WRITERS.items():
            target = Path({str(tmp_path)!r}) / f"{{name}}.old"
            target.write_bytes(b"old")
            try:
                writer(target)
                results[name] = "written"
            except OutputError as exc:
                results[name] = str(exc)
        print(json.dumps(results))
    """)
    done = subprocess.run(limited(65536, "-c", script), env=child_env(), capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.splitlines()[-1])
    for name, message in results.items():
        target = tmp_path / f"{name}.old"
        assert message.startswith(f"cannot write {target}: [Errno 27] File too large"), (name, message)
        assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.old" for name in WRITERS)


def test_a_library_bug_is_not_called_an_output_error(tmp_path):
    """A RuntimeError with nothing wrong on the disk goes up as it is (exit 70), its temporary file removed."""
    from dacli.io.atomic import write_atomically

    def broken(temporary: Path) -> None:
        temporary.write_bytes(b"partial")
        raise RuntimeError("NetCDF: HDF error")

    with pytest.raises(RuntimeError, match="NetCDF: HDF error"):
        write_atomically(tmp_path / "out.nc", broken, overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_flush_is_an_output_error(tmp_path, monkeypatch):
    """A delayed write error (NFS, a failing disk) reported by fsync: exit 5, the old file kept."""
    from dacli.io import atomic

    target = tmp_path / "out.nc"
    target.write_bytes(PRECIOUS)

    def failing(handle):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(atomic.os, "fsync", failing)
    with pytest.raises(OutputError) as info:
        atomic.write_atomically(target, b"new", overwrite=True)
    assert str(info.value) == f"cannot write {target}: [Errno 5] Input/output error"
    assert target.read_bytes() == PRECIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


def test_an_interrupted_checkpoint_leaves_the_old_one(tmp_path, monkeypatch):
    import equinox as eqx

    target = tmp_path / "run.checkpoint"
    target.write_bytes(PRECIOUS)

    def interrupted(stream, tree):
        stream.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(eqx, "tree_serialise_leaves", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _checkpoint(target)
    assert target.read_bytes() == PRECIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.checkpoint"]


def test_a_checkpoint_folder_that_cannot_be_made(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    target = tmp_path / "file" / "training" / "last.eqx"
    with pytest.raises(OutputError, match=f"cannot write {target}: cannot create its folder .*Not a directory"):
        _checkpoint(target)


@pytest.mark.parametrize("writer", WRITERS)
def test_every_writer_gives_the_usual_permissions(tmp_path, writer):
    """0o666 less the umask for every output (checkpoints used to be 0o600, figures 0o644)."""
    from dacli.io.atomic import _umask

    old = os.umask(0o027)
    try:
        path = WRITERS[writer](tmp_path / "file")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert _umask() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
