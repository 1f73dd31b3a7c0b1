"""The habits of a typer/cdo-style command line (issue 18): -h, -V, completion, -o, option errors,
choices in --help, Python warnings through logging, and the phase display on a terminal.

All in this process with typer's CliRunner; the run functions are replaced where only the command
line is under test, so nothing here compiles a JAX program.
"""

from __future__ import annotations

import io
import re
import typing
import warnings

import pytest
from rich.console import Console

from dacli import __version__
from dacli.cli import logs
from dacli.cli.options import Device, Precision, chosen_output
from dacli.config.schema import RunConfig
from dacli.errors import SUCCESS, USAGE_ERROR

CONFIG = "configs/lorenz96.toml"
RECORD = {"cost_initial": 2.0, "cost_final": 1.0, "iterations": 7, "converged": True,
          "analysis_rmse": float("nan"), "observations_used": 5}


def test_short_help_and_version(cli, tmp_path):
    top = cli(["-h"], tmp_path)
    assert top.exit_code == SUCCESS and top.stdout.lstrip(" \n").startswith("Usage: dacli [OPTIONS] COMMAND")
    summary = " ".join(top.stdout.split())  # the help reflowed to the runner's width
    assert ("strong-constraint, weak-constraint and incremental 4DVar, 3DVar, 3D-FGAT and the learned "
            "4DVarNet") in summary
    assert "--install-completion" in summary and "-V" in summary
    command = cli(["assimilate", "-h"], tmp_path)
    assert command.exit_code == SUCCESS and "Usage: dacli assimilate [OPTIONS]" in command.stdout
    for flag in ("-o, --output", "-h, --help"):  # rich lists them as "--output -o"
        long, short = flag.split(", ")[::-1]
        assert re.search(rf"{long}\s+{short}\s", command.stdout), command.stdout
    # No hard line break inside a paragraph: the docstring's second paragraph is one flowing text.
    assert "stop it at the next chunk of windows with a checkpoint" in " ".join(command.stdout.split())
    assert cli(["-V"], tmp_path).stdout == f"dacli {__version__}\n"


def test_device_and_precision_list_their_choices_and_default(cli, tmp_path):
    text = cli(["assimilate", "-h"], tmp_path).stdout
    assert re.search(r"--device\s+<auto\|cpu\|gpu>\s+Where to compute", text), text
    assert re.search(r"--precision\s+<float32\|float64>", text), text
    assert "[default: (run.device)]" in text and "[default: (run.precision)]" in text
    # The choices are the configuration's (spelled in the CLI so that --help skips pydantic).
    assert typing.get_args(Device) == typing.get_args(RunConfig.model_fields["device"].annotation)
    assert typing.get_args(Precision) == typing.get_args(RunConfig.model_fields["precision"].annotation)


@pytest.mark.parametrize(("args", "message"), [
    (["--device", "bogus"], "Invalid value for '--device': 'bogus' is not one of 'auto', 'cpu', 'gpu'."),
    (["--precision", "float16"], "Invalid value for '--precision': 'float16' is not one of 'float32', 'float64'."),
    (["--windows", "x"], "Invalid value for '--windows': expected 'A:B' (windows A <= k < B, from 0), found 'x'"),
    (["--windows", "5:2"], "Invalid value for '--windows': expected 0 <= A < B in 'A:B', found '5:2'"),
    (["--no-such-option"], "No such option: --no-such-option"),
])
def test_option_errors_are_option_errors(cli, workspace, args, message):
    result = cli(["assimilate", CONFIG, *args], workspace)
    assert result.exit_code == USAGE_ERROR
    assert result.stderr == f"dacli: error: {message} (see 'dacli assimilate -h')\n"


def test_usage_errors_are_one_line(cli, tmp_path):
    assert cli(["frobnicate"], tmp_path).stderr == "dacli: error: No such command 'frobnicate'. (see 'dacli -h')\n"
    missing = cli(["assimilate"], tmp_path)
    assert missing.exit_code == USAGE_ERROR
    assert missing.stderr == "dacli: error: Missing argument 'config'. (see 'dacli assimilate -h')\n"


def test_shell_completion(cli, tmp_path, monkeypatch):
    """typer's --show-completion is a flag that detects the shell from the process's ancestors
    (shellingham); a run with no shell above it (a detached job, a container's init) finds none,
    so the detection is fixed to bash here and the script is what is checked."""
    import typer.completion

    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    result = cli(["--show-completion"], tmp_path)
    assert result.exit_code == SUCCESS, (result.stdout, result.stderr)
    assert "complete -o default -F _dacli_completion dacli" in result.stdout
    assert "_DACLI_COMPLETE=complete_bash" in result.stdout


def test_out_is_the_old_spelling_of_output(cli, workspace, caplog):
    from pathlib import Path

    assert chosen_output(None, Path("a.nc")) == Path("a.nc")
    assert chosen_output(Path("b.nc"), None) == Path("b.nc")
    result = cli(["forecast", CONFIG, "--lead-time", "1", "-o", "a.nc", "--out", "b.nc"], workspace)
    assert result.exit_code == USAGE_ERROR
    assert result.stderr == ("dacli: error: Invalid value for '--out': give -o/--output only (--out is its old "
                             "spelling) (see 'dacli forecast -h')\n")
    assert not re.search(r"--out\b(?!put)", cli(["forecast", "-h"], workspace).stdout)  # hidden


def _fake_assimilate(calls):
    """A run function that reports phases and windows, warns twice, and writes nothing."""

    def run(config, *, on_window=None, on_phase=None, **_):
        from dacli.run.assimilate import AssimilationResult
        from tests.test_cli import _fake_summary

        calls.append(str(config.output.path))
        for phase in ("reading", "tracing", "compiling"):
            on_phase(phase)
        for _ in range(2):
            warnings.warn("variable 'x' has multiple fill values", RuntimeWarning, stacklevel=1)
        on_window(0, 2, RECORD)
        on_window(1, 2, RECORD)
        summary = _fake_summary({"output": str(config.output.path), "windows": 2, "converged_windows": 2})
        return AssimilationResult(output=str(config.output.path), summary=summary, windows={})

    return run


def test_batch_log_lines_and_warnings_logged_once(cli, workspace, monkeypatch):
    calls = []
    monkeypatch.setattr("dacli.run.assimilate.assimilate", _fake_assimilate(calls))
    result = cli(["assimilate", CONFIG, "-o", "fake.nc"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    assert calls == ["fake.nc"]  # -o sets output.path
    lines = [re.sub(r"^\S+ ", "", line) for line in result.stderr.splitlines()]  # without the time
    assert re.fullmatch(r"WARNING RuntimeWarning: variable 'x' has multiple fill values "
                        r"\(test_cli_habits.py:\d+\)", lines[0]), lines  # once, one line, no source
    assert lines[1:3] == [f"INFO window {k}/2: J 2 -> 1, 7 it, 5 obs" for k in (1, 2)]  # as before
    assert len(lines) == 4 and lines[3].startswith("INFO wrote fake.nc: 2 window(s), 2/2 converged")
    assert "reading" not in result.stderr  # no phases in batch logs


def test_terminal_shows_the_phases_in_order_through_one_console(cli, workspace, monkeypatch):
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr(logs, "is_terminal", lambda: True)
    monkeypatch.setattr(logs, "terminal_console", lambda: console)
    monkeypatch.setattr("dacli.run.assimilate.assimilate", _fake_assimilate([]))
    result = cli(["assimilate", CONFIG, "-o", "fake.nc"], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    shown = screen.getvalue()
    order = [shown.index(word) for word in ("reading", "tracing", "compiling", "window 1/2", "window 2/2")]
    assert order == sorted(order), shown
    # The log lines go through the same console, above the live display.
    assert shown.index("RuntimeWarning") < shown.rindex("window 2/2") < shown.index("wrote fake.nc")
    assert result.stderr == ""  # nothing around the console

    screen.truncate(0)
    quiet = cli(["assimilate", CONFIG, "-o", "fake.nc", "-q"], workspace)
    assert quiet.exit_code == SUCCESS and "reading" not in screen.getvalue()  # -q: no display


def test_display_goes_away_on_an_error(monkeypatch):
    screen = io.StringIO()
    with pytest.raises(ValueError), logs.command_display(Console(file=screen, force_terminal=True)) as shown:
        shown.phase("tracing")
        raise ValueError
    assert "tracing" in screen.getvalue(), screen.getvalue()
    assert screen.getvalue().endswith("\r\x1b[1A\x1b[2K")  # erased: the error message stands alone


def test_xarray_serialization_warning_is_one_log_line(cli, workspace):
    import netCDF4

    with netCDF4.Dataset(workspace / "sample_data" / "lorenz96_obs.nc", "a") as data:
        data["x"].setncattr("missing_value", -8888.0)  # besides _FillValue -9999: xarray warns
    result = cli(["validate", CONFIG], workspace)
    assert result.exit_code == SUCCESS, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[1].split(" ", 1)[1].startswith("INFO configs/lorenz96.toml is valid: ")
    assert re.fullmatch(r"\S+ WARNING SerializationWarning: variable 'x' has multiple fill values \{.*\} defined, "
                        r"decoding all values to NaN\. \(conventions\.py:\d+\)", lines[0]), lines


@pytest.mark.parametrize(("args", "message"), [
    (["sweep", CONFIG, "--values", "foo"], "dacli: error: --values: expected KEY=v1,v2,... with KEY one of "
                                           "background.covariance.std, method.model_error.covariance.std, found 'foo'\n"),
    (["forecast", CONFIG, "--lead-time", "1", "--interval", "0.3"],
     "dacli: error: --lead-time: 1.0 is not a whole number of --interval (0.3)\n"),
])
def test_option_problems_found_by_the_run_are_option_errors(cli, workspace, args, message):
    result = cli(args, workspace)
    assert result.exit_code == USAGE_ERROR and result.stderr == message
