"""Config limits through the command line: out-of-range integers, deep nesting, absurd sizes.

Each fault is a configuration error (exit 2) naming the file (or the ``--set``), the dotted key,
what was expected and what was found — never a RecursionError, an OverflowError or an internal
error (exit 70). Runs happen in this process (typer's CliRunner); nothing is computed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dacli.errors import USAGE_ERROR

CONFIG = "configs/lorenz96.toml"
PARAMETERS = "parameters = { n = 40, forcing = 8.0 }"
DEEP = 2000  # deep enough for tomllib to raise RecursionError


@pytest.fixture(scope="module")
def ws(module_workspace) -> Path:
    return module_workspace


def write_config(ws: Path, name: str, text: str) -> str:
    (ws / "configs" / name).write_text(text)
    return f"configs/{name}"


def base_text(ws: Path) -> str:
    return (ws / CONFIG).read_text()


def line_of(text: str, start: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def problems(cli, ws, args) -> list[str]:
    """Run a command that must fail with a config error; return its problems (one per line)."""
    result = cli(args, ws)
    assert result.exit_code == USAGE_ERROR, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    message = result.stderr[result.stderr.index("dacli: error: invalid configuration"):].rstrip("\n").splitlines()
    assert message[0].endswith(f"({len(message) - 1} problem{'s' if len(message) > 2 else ''}):")
    return [line.removeprefix("  - ") for line in message[1:]]


def nested_array(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def nested_tables(levels: int) -> str:
    return "{ a = " * levels + "1" + " }" * levels


def recursion_error(text: str) -> bool:
    try:
        tomllib.loads(text)
    except RecursionError:
        return True
    return False


# --- integers out of range ---------------------------------------------------------------------

def test_integer_beyond_int64_in_model_parameters(cli, ws):
    text = base_text(ws).replace(PARAMETERS, "parameters = { n = 100000000000000000000, forcing = 8.0 }")
    config = write_config(ws, "int64.toml", text)
    assert problems(cli, ws, ["validate", config]) == [
        f"{config}:{line_of(text, 'parameters')}: model.parameters.n: expected an integer from "
        "-9,223,372,036,854,775,808 to 9,223,372,036,854,775,807 (int64), found 100000000000000000000"]


@pytest.mark.parametrize(("override", "problem"), [
    ("method.max_steps=100000000000000000000",
     "method.max_steps: input should be less than or equal to 1000000, found 100000000000000000000"),
    ("window.count=1000001", "window.count: input should be less than or equal to 1000000, found 1000001"),
    ("run.windows_per_chunk=9223372036854775808",
     "run.windows_per_chunk: input should be less than or equal to 1000000, found 9223372036854775808"),
    ("run.seed=4294967295", "run.seed: input should be less than or equal to 4294967294, found 4294967295"),
    ("run.seed=-1", "run.seed: input should be greater than or equal to 0, found -1"),
    ("observations.accept_preqc=[0, 2147483648]",
     "observations.accept_preqc.1: input should be less than or equal to 2147483647, found 2147483648"),
    ("model.parameters.n=-9223372036854775809",
     "model.parameters.n: expected an integer from -9,223,372,036,854,775,808 to 9,223,372,036,854,775,807 "
     "(int64), found -9223372036854775809"),
])
def test_integers_out_of_range_through_set(cli, ws, override, problem):
    assert problems(cli, ws, ["validate", CONFIG, "--set", override]) == [f"--set {override}: {problem}"]


def test_every_integer_key_of_an_optional_section_is_bounded_too(cli, ws):
    text = base_text(ws) + "\n[train]\nepochs = 10000000000\n[network]\nfile = 'x.eqx'\nhidden = 100000\n"
    config = write_config(ws, "train_limits.toml", text)
    assert problems(cli, ws, ["validate", config]) == [
        f"{config}:{line_of(text, 'epochs')}: train.epochs: input should be less than or equal to 1000000, "
        "found 10000000000",
        f"{config}:{line_of(text, 'hidden')}: network.hidden: input should be less than or equal to 4096, found 100000",
    ]


# --- absurd sizes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("parameters", "problem"), [
    ("n = 1000000000000, forcing = 8.0", "n must be an integer from 4 to 100,000,000 (dacli.models.MAX_STATE_SIZE), "
                                         "found 1000000000000"),
    ("n = 1e20, forcing = 8.0", "n must be an integer from 4 to 100,000,000 (dacli.models.MAX_STATE_SIZE), "
                                "found 100000000000000000000"),
])
def test_state_size_beyond_the_bound_is_refused_before_anything_is_allocated(cli, ws, parameters, problem):
    override = f"model.parameters={{ {parameters} }}"
    assert problems(cli, ws, ["validate", CONFIG, "--set", override]) == [
        f"model.parameters: model 'lorenz96' rejected its parameters: {problem}"]


def test_qg_grid_beyond_the_bound(cli, ws):
    override = "model.parameters={ nx = 20000 }"
    assert problems(cli, ws, ["validate", "configs/qg.toml", "--set", override]) == [
        "model.parameters: model 'qg' rejected its parameters: nx * ny must be at most 100,000,000 grid points "
        "(dacli.models.MAX_STATE_SIZE), found 20000 * 20000 = 400,000,000"]


def test_too_many_steps_per_window_and_simulated(cli, ws):
    overrides = ["window.length=1e300", "window.shift=1e300", "model.dt=1e-10", "simulate.spinup=0"]
    args = ["simulate", CONFIG]
    for item in overrides:
        args += ["--set", item]
    text = base_text(ws)
    assert problems(cli, ws, args) == [
        f"{CONFIG}:{line_of(text, 'duration')}: simulate.duration: expected at most 10,000,000 model steps "
        "simulated, found 10.0 (1e+11 steps of model.dt = 1e-10)",
        "--set window.length=1e300: window.length: expected at most 1,000,000 model steps per window, found 1e+300 "
        "(inf steps of model.dt = 1e-10)",
        "--set window.shift=1e300: window.shift: expected at most 1,000,000 model steps per window, found 1e+300 "
        "(inf steps of model.dt = 1e-10)",
    ]


# --- deep nesting ------------------------------------------------------------------------------

TOO_DEEP = "expected at most 16 (dacli's keys need 5)"


@pytest.mark.parametrize(("value", "levels"), [
    (nested_array(DEEP), DEEP + 2),    # tomllib: RecursionError
    (nested_tables(DEEP), DEEP + 2),   # tomllib: RecursionError
    (nested_array(20), 22),            # parsed: refused before validation
])
def test_deeply_nested_values_in_the_file(cli, ws, value, levels):
    text = base_text(ws).replace(PARAMETERS, f"parameters = {{ n = 40, x = {value} }}")
    assert recursion_error(text) == (levels > 100)  # the RecursionError path is the one exercised
    config = write_config(ws, f"deep_{levels}.toml", text)
    key = "model.parameters.x" + (".a" * 14 if value.startswith("{") else "")
    assert problems(cli, ws, ["validate", config]) == [
        f"{config}:{line_of(text, 'parameters')}: {key}: tables, inline tables and arrays nested {levels} "
        f"levels deep; {TOO_DEEP}"]


def test_deeply_nested_table_header(cli, ws):
    text = base_text(ws) + "\n[" + ".".join(["deep"] * 3000) + "]\nvalue = 1\n"
    config = write_config(ws, "deep_header.toml", text)
    assert problems(cli, ws, ["validate", config]) == [
        f"{config}:{line_of(text, '[deep.')}: {'.'.join(['deep'] * 17)}...: tables, inline tables and arrays "
        f"nested 3000 levels deep; {TOO_DEEP}"]


@pytest.mark.parametrize(("value", "levels"), [(nested_array(DEEP), DEEP + 2), (nested_tables(DEEP), DEEP + 2),
                                               (nested_array(30), 32)])
def test_deeply_nested_set_values(cli, ws, value, levels):
    assert recursion_error(f"v = {value}") == (levels > 100)
    override = f"model.parameters.x={value}"
    shown = override if len(override) <= 80 else f"{override[:55]}...{override[-22:]}"
    (problem,) = problems(cli, ws, ["validate", CONFIG, "--set", override])
    assert problem == (f"--set {shown}: model.parameters.x: tables, inline tables and arrays nested {levels} levels "
                       f"deep; {TOO_DEEP}")


def test_deeply_nested_set_key(cli, ws):
    override = ".".join(["deep"] * 3000) + "=1"
    (problem,) = problems(cli, ws, ["validate", CONFIG, "--set", override])
    assert problem == (f"--set {override[:55]}...{override[-22:]}: {'.'.join(['deep'] * 17)}...: tables, inline "
                       f"tables and arrays nested 2999 levels deep; {TOO_DEEP}")


def test_sixteen_levels_are_accepted_up_to_the_schema(cli, ws):
    """At the bound, nesting is no error: the schema then says what it expected at that key."""
    override = f"model.parameters.x={nested_array(14)}"  # model (1), parameters (2), x (3) ... 16
    (problem,) = problems(cli, ws, ["validate", CONFIG, "--set", override])
    assert problem.startswith(f"--set {override}: model.parameters.x: expected one of float, int, str, bool, "
                              "list[float], found [[[[")
