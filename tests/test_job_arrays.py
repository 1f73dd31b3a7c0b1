"""Job arrays: ``--windows A:B`` ranges, chained through their analysis files, merge into the whole run."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

FOUR = ["--set", "window.count=4", "-q"]


def test_window_ranges_chained_and_merged_equal_the_whole_run(workspace, cli):
    def run(*args):
        result = cli(["assimilate", "configs/lorenz96.toml", *FOUR, *args], workspace)
        assert result.exit_code == 0, result.stderr

    run("--set", 'output.path="whole.nc"')
    run("--windows", "0:2", "--set", 'output.path="part0.nc"')
    # The second range starts from the first range's analysis file (its trajectory at window 2's start).
    run("--windows", "2:4", "--set", 'output.path="part1.nc"', "--set", 'background.path="part0.nc"')
    merged = cli(["merge", "-o", "merged.nc", "part1.nc", "part0.nc", "--json"], workspace)
    assert merged.exit_code == 0, merged.stderr
    with xr.open_dataset(workspace / "whole.nc") as whole, xr.open_dataset(workspace / "merged.nc") as parts:
        assert dict(parts.sizes) == dict(whole.sizes)
        for name in whole.data_vars:  # the per-window RMSE too: a range's last window is scored over its shift
            np.testing.assert_array_equal(parts[name].values, whole[name].values, err_msg=name)
        assert parts.attrs["history"].endswith("(2 files: part0.nc, part1.nc)")
        # The whole run's counts and configuration, not a sum of per-range counts nor the first range's select.
        for key in ("dacli_windows", "dacli_converged_windows", "dacli_observations_used",
                    "dacli_observations_rejected", "dacli_observations_outside_windows",
                    "dacli_observations_outside_domain"):
            assert parts.attrs[key] == whole.attrs[key], key
        # One part's time averages count its own first windows as burn-in: not the whole run's.
        assert "dacli_time_average_windows" in whole.attrs
        assert not [key for key in parts.attrs if key.startswith("dacli_time_average_")]
        merged_config, whole_config = json.loads(parts.attrs["dacli_config"]), json.loads(whole.attrs["dacli_config"])
        assert merged_config["window"]["select"] is None and merged_config["output"]["path"] == "merged.nc"
        assert merged_config["background"] == whole_config["background"]
        merged_config["output"]["path"] = whole_config["output"]["path"]
        assert merged_config == whole_config

    again = cli(["merge", "-o", "twice.nc", "part0.nc", "part0.nc"], workspace)
    assert again.exit_code == 3
    assert "its first window starts at 0, the window after the last of part0.nc starts at 0.4: it overlaps" in again.stderr
    assert not (workspace / "twice.nc").exists()
    exists = cli(["merge", "-o", "merged.nc", "part0.nc", "part1.nc"], workspace)
    assert exists.exit_code == 5


def test_merge_never_replaces_a_part(workspace, cli):
    """The parts-first order cdo/nco users type, one part only, the output among the parts: refused (exit 2)
    before anything is read, every file left as it was."""
    for name in ("a.nc", "b.nc"):
        (workspace / name).write_bytes(name.encode())  # never opened: the refusals come first
    for args, message in [
        (["a.nc", "b.nc", "--overwrite"], "merge: give the merged file with -o/--output: dacli merge -o OUT PART "
                                          "PART... (found no -o; the arguments a.nc b.nc are all taken as parts)"),
        (["-o", "out.nc", "a.nc"], "merge: needs at least two analysis files to merge, found 1 (a.nc)"),
        (["-o", "a.nc", "a.nc", "b.nc", "--overwrite"], "merge: the output a.nc is also one of the parts to merge"),
        (["-o", "./b.nc", "a.nc", "b.nc", "--overwrite"], "merge: the output b.nc is also one of the parts"),
    ]:
        result = cli(["merge", *args], workspace)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr, result.stderr
    assert (workspace / "a.nc").read_bytes() == b"a.nc" and (workspace / "b.nc").read_bytes() == b"b.nc"
    assert not (workspace / "out.nc").exists()


def test_a_range_past_the_schedule_and_an_explicit_background_state(workspace, cli):
    beyond = cli(["validate", "configs/lorenz96.toml", *FOUR, "--set", 'window.select="2:9"'], workspace)
    assert beyond.exit_code == 2
    assert "window.select: '2:9' asks for windows up to 8, the schedule has 4 (0 to 3)" in beyond.stderr
    text = (workspace / "configs/lorenz96.toml").read_text()
    explicit = text.replace('path = "../sample_data/lorenz96_background.nc"', "state = " + str([0.0] * 40))
    (workspace / "configs/explicit.toml").write_text(explicit)
    state = cli(["validate", "configs/explicit.toml", *FOUR, "--set", 'window.select="1:3"'], workspace)
    assert state.exit_code == 2
    assert ("window.select: the first selected window starts at 0.2, but background.state is the state at "
            "window.start (0); give background.path") in state.stderr
