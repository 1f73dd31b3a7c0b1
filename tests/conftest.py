"""Test-session setup: float64 JAX, and fixtures for the command-line tests.

JAX's x64 mode is switched on here, once, before any test module imports JAX: the closed-form
tests compare against dense float64 linear algebra. A command run in float32 switches it off for
its process; the autouse fixture below switches it back after that test.

The command-line fixtures give a scratch copy of configs/ and sample_data/: the configs refer to
``../sample_data`` and write their output in the working directory, so a copy of both folders
side by side behaves like the repository without touching it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dacli.__main__ import set_process_environment

set_process_environment()  # what the CLI's entry point sets (EQX_ON_ERROR=nan ...), before equinox loads

import jax  # noqa: E402
import pytest  # noqa: E402

from dacli.run.runtime import configure  # noqa: E402

jax.config.update("jax_enable_x64", True)

REPO = Path(__file__).resolve().parents[1]


def copy_workspace(root: Path) -> Path:
    shutil.copytree(REPO / "configs", root / "configs")
    shutil.copytree(REPO / "sample_data", root / "sample_data")
    return root


def pytest_configure(config):
    """One persistent JAX compilation cache for the whole test session (never the user's own).

    Made in the controlling process before xdist starts its workers, so the workers and every
    ``dacli`` subprocess share it, and switched on in every test process from its start (not only
    once a test has run a dacli command there): a program compiled by one test is loaded, not
    recompiled, by the next that builds the same one, in this worker or another (e.g. a
    module-scoped problem whose tests xdist hands to both workers).
    """
    if not hasattr(config, "workerinput") and "DACLI_COMPILATION_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="dacli-test-jax-cache-")
        os.environ["DACLI_COMPILATION_CACHE"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    configure("float64", "auto", os.environ["DACLI_COMPILATION_CACHE"])


def pytest_collection_modifyitems(config, items):
    """The Slurm tests first: they spend most of their 5 minutes waiting on the scheduler (the
    requeue test 133 s, on slurmctld's 30-s time-limit checks), so started first they overlap
    the other workers' compiling instead of running last with the cores idle. Then the modules
    that hold a ``slow`` test (over 60 s), whole, so their module fixtures are made once: the
    longest tests start early rather than finish last on one core while the others idle. The
    order within each group is kept."""
    heavy = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(
        key=lambda item: (item.get_closest_marker("slurm") is None, item.module.__name__ not in heavy)
    )


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A fresh copy of configs/ and sample_data/; the test runs inside it."""
    copy_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory) -> Path:
    """One copy shared by a module's tests (pass it as ``cwd``; nothing changes directory)."""
    return copy_workspace(tmp_path_factory.mktemp("workspace"))


@pytest.fixture(scope="session")
def cli():
    """``cli(args, cwd)``: run the dacli app in this process (typer's CliRunner).

    Returns the typer Result (``exit_code``, ``stdout``, ``stderr`` kept apart). The "dacli"
    logger is restored afterwards so no handler is left writing to the runner's closed stream.
    """
    from typer.testing import CliRunner

    from dacli.cli.app import app

    def invoke(args, cwd):
        logger = logging.getLogger("dacli")
        saved = (list(logger.handlers), logger.level, logger.propagate)
        try:
            with contextlib.chdir(cwd):
                return CliRunner().invoke(app, [str(a) for a in args])
        finally:
            logger.handlers[:] = saved[0]
            logger.setLevel(saved[1])
            logger.propagate = saved[2]

    return invoke


PLUGINS = REPO / "tests" / "plugins"


@pytest.fixture(scope="module")
def plugins_on_path():
    """tests/plugins importable for a module's in-process CLI runs (as PYTHONPATH would make
    it for a dacli process): the plug-in models named in configs as ``module:factory``."""
    sys.path.insert(0, str(PLUGINS))
    yield PLUGINS
    sys.path.remove(str(PLUGINS))


@pytest.fixture(scope="session")
def dacli_process():
    """``dacli_process(args, cwd)``: run ``python -m dacli`` as a separate process (no terminal)."""

    def run(args, cwd, timeout=300):
        env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
        return subprocess.run([sys.executable, "-m", "dacli", *map(str, args)], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    return run


@pytest.fixture(autouse=True)
def _restore_jax_precision():
    """A command run in float32 switches JAX's x64 mode off for the whole process; restore it so the
    float64 tests that follow in the same worker keep their precision."""
    before = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", before)
