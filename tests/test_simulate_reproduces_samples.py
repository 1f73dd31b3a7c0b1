"""``dacli simulate <config>`` remakes the shipped sample files (issue 18, item 4).

Each shipped config that ``dacli simulate`` writes sample files for is simulated into a fresh
folder and compared with ``sample_data/`` variable by variable (every variable of the shipped
file, coordinates included: values, NaN = NaN, dtypes and shapes; IODA group by group).
Attributes are not compared (``date_created`` and the history differ by design).

Floating-point values are equal to within 1e-12 of the variable's largest magnitude, not bit for
bit: XLA compiles for the CPU it runs on, and on a CPU without AVX2 (a session's machine, 2026-12-08)
the Lorenz-96 background came out 1.6e-14 from the file made on another, its truth and
observations bit for bit. A changed seed, model or error model moves values by far more.

History: ``lorenz96_background.nc`` and the QG files were remade with ``dacli simulate`` in
issue 18. Before, the Lorenz-96 background error was a white draw (dacli simulate has correlated
it like B since a5d02e0), and the QG tracks wrapped around the regional box (they have stayed
inside it since 482661e, issue 15: 5840 observations, 130 beyond the grid, became 3962, all
inside); the pinned RMSE of tests/test_shipped_configs.py were re-measured then.

Cost: one simulate per config, in this process (lorenz96 about 8 s on 2 idle cores, mostly
compiling; lorenz63 about 13 s, QG about 15 s): all but lorenz96 are marked slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dacli.errors import SUCCESS

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_data"

# config -> the sample file it writes, per kind (the config's observations/background/truth paths)
WRITES = {
    "lorenz96": ("lorenz96_obs.nc", "lorenz96_background.nc", "lorenz96_truth.nc"),
    "lorenz63": ("lorenz63_obs.nc", "lorenz63_background.nc", "lorenz63_truth.nc"),
    "lorenz63_4dvarnet": (
        "lorenz63_4dvarnet_obs.nc",
        "lorenz63_4dvarnet_background.nc",
        "lorenz63_4dvarnet_truth.nc",
    ),
    "qg": ("qg_obs.nc", "qg_background.nc", "qg_truth.nc"),
    "qg_ioda": ("qg_ioda.nc", "qg_background.nc", "qg_truth.nc"),
}
KINDS = ("observations", "background", "truth")
# The fast loop remakes the file the README names; the others (8 to 30 s each, mostly compiling)
# run with the slow tests.
SLOW = set(WRITES) - {"lorenz96"}


def variables(path: Path) -> dict[str, xr.DataArray]:
    """Every variable of a file (coordinates included), IODA groups as ``group/name``."""
    with xr.open_datatree(path, decode_times=False, mask_and_scale=False) as tree:
        return {
            f"{node.path.strip('/')}/{name}".lstrip("/"): node.ds[name].load()
            for node in tree.subtree
            for name in node.ds.variables
        }


# Floating-point values may differ by this much relative to the variable's largest magnitude.
RELATIVE = 1e-12


def differences(shipped: Path, made: Path) -> list[str]:
    """What differs between the shipped file's variables and the same variables of a new file
    (empty: the same; floats to within RELATIVE). Variables only in the new file (metadata a
    later dacli adds, such as a point file's cf_role variable) are not differences of values and
    are not compared."""
    old, new = variables(shipped), variables(made)
    found = [f"{name}: not written any more" for name in sorted(set(old) - set(new))]
    for name in sorted(set(old) & set(new)):
        a, b = old[name].values, new[name].values
        if a.dtype != b.dtype or a.shape != b.shape:
            found.append(f"{name}: {a.dtype}{a.shape} != {b.dtype}{b.shape}")
        elif a.dtype.kind == "f":
            scale = np.nanmax(np.abs(a), initial=0.0)
            if not np.allclose(a, b, rtol=0.0, atol=RELATIVE * scale, equal_nan=True):
                found.append(f"{name}: max difference {np.nanmax(np.abs(a - b)):.3g} (scale {scale:.3g})")
        elif not np.array_equal(a, b):
            found.append(f"{name}: values differ")
    return found


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in WRITES]
)
def test_simulate_remakes_the_shipped_sample_files(cli, tmp_path, name):
    made = {kind: tmp_path / f"{kind}.nc" for kind in KINDS}  # KINDS are the configs' sections
    overrides = [item for kind in KINDS for item in ("--set", f"{kind}.path={made[kind]}")]
    result = cli(["simulate", REPO / "configs" / f"{name}.toml", "-q", *overrides], tmp_path)
    assert result.exit_code == SUCCESS, result.stderr
    for kind, sample in zip(KINDS, WRITES[name], strict=True):
        assert differences(SAMPLES / sample, made[kind]) == [], sample


def test_the_shipped_qg_tracks_lie_inside_the_box():
    """The shipped QG observations: 3962 along tracks, none beyond the regional box's grid (the
    reader would drop it with a warning)."""
    with (
        xr.open_dataset(SAMPLES / "qg_obs.nc") as obs,
        xr.open_dataset(SAMPLES / "qg_truth.nc") as truth,
    ):
        lat, lon = obs["lat"].values, obs["lon"].values
        grid_lat, grid_lon = truth["lat"].values, truth["lon"].values
    outside = (lat > grid_lat.max()) | (lat < grid_lat.min()) | (lon > grid_lon.max())
    outside |= lon < grid_lon.min()
    assert (lat.size, int(outside.sum())) == (3962, 0)
