"""The shipped configs' RMSE on the shipped sample data, pinned (DAPPER's table test).

One row per config in configs/ that ``dacli assimilate`` runs on the sample data: the run (its
``--set`` overrides; () = every window), the analysis and background RMSE it gives (float64 on
CPU, 4 significant digits; re-measured in issue 18 when the Lorenz-96 and QG sample files were
remade with ``dacli simulate``, unchanged by issue 17's redesign before that) and the test that
runs it.
A changed number means the method, the data handling or the diagnostics changed: re-measure only
when that was the point of the change. The tolerance is relative, 0.5 %: ten times the rounding
of the table, far above what a solver reaching the same minimum differs by (its rtol, 1e-6),
far below what a wrong gradient, covariance or window costs. Every row also asserts that the
analysis reduced the background's error.

A run another test already makes is pinned there (it calls :func:`check_pinned_rmse`), so no
program is compiled twice for this table; the others run here.

Not for: the outputs' variables and attributes (tests/test_output_cf.py) or bit-for-bit identity
across a refactoring (benchmarks/output_identity.sh). Reference: DAPPER's tests/test_example_2.py
(the expected rmse_a of every method, one table).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from dacli.errors import SUCCESS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TOLERANCE = 0.005  # relative
HERE = "test_shipped_configs.py::test_shipped_config_gives_its_pinned_rmse"


@dataclass(frozen=True)
class Pinned:
    """One row: how the config is run, the RMSE it must give, and the test that runs it."""

    overrides: tuple[str, ...]
    analysis_rmse: float
    background_rmse: float
    run_by: str = HERE


TWIN = "test_twin_experiments.py::test_cycled_4dvar_beats_background_and_observations"
INCREMENTAL = ("test_methods_cli.py::"
               "test_incremental_run_reports_outer_loops_and_writes_observation_diagnostics")
IMPERFECT = "test_methods_cli.py::test_imperfect_model_twin_weak_constraint_beats_strong"
QG = "test_qg_twin.py::test_analysis_beats_the_background_in_every_window"

SHIPPED = {
    "lorenz63": Pinned((), 0.3318, 0.8665, TWIN),
    "lorenz96": Pinned((), 0.3867, 0.5093, TWIN),
    "lorenz96_incremental": Pinned((), 0.3867, 0.5092, INCREMENTAL),
    "lorenz96_imperfect": Pinned(("window.count=5",), 0.2358, 1.345, IMPERFECT),
    "lorenz96_weak": Pinned(("window.count=5",), 0.2152, 1.405, IMPERFECT),
    "lorenz96_3dvar": Pinned((), 1.424, 1.457),
    "lorenz96_3dfgat": Pinned((), 0.6565, 0.7044),
    "qg": Pinned(("window.count=2",), 0.03216, 0.04253, QG),
    "qg_ioda": Pinned(("window.count=1",), 0.03775, 0.04818),
    "qg_nonlinear": Pinned(("window.count=1",), 0.03774, 0.04818),
}
NOT_ASSIMILATED_ON_THE_SAMPLE = {
    "lorenz63_4dvarnet": "4DVarNet: assimilates with the network dacli train makes first",
    "qg_4dvarnet": "4DVarNet: assimilates with the network dacli train makes first",
    "lorenz96_tune": "dacli tune's starting point: its B is wrong on purpose (tests/test_tuning.py "
                     "tunes a smaller twin)",
}
# Measured alone (-n 0, 2 cores): 3dvar 10 s, 3dfgat 8 s, qg_nonlinear 13 s, qg_ioda 39 s (its
# weak-constraint 64 x 64 QG program). qg_ioda stays out of the fast loop, which keeps this
# file's share of it under 35 s.
SLOW = {"qg_ioda"}


def check_pinned_rmse(name: str, analysis_rmse: float, background_rmse: float) -> None:
    """The run of row ``name`` gave its pinned RMSE; the analysis reduced the background's error."""
    row = SHIPPED[name]
    assert analysis_rmse == pytest.approx(row.analysis_rmse, rel=TOLERANCE), (name, analysis_rmse)
    assert background_rmse == pytest.approx(row.background_rmse, rel=TOLERANCE), (
        name, background_rmse)
    assert analysis_rmse < background_rmse, name


def test_every_shipped_config_is_pinned_or_says_why_not():
    """A new config in configs/ gets a row (or a reason); a row run elsewhere names a test that
    exists, runs that config with the row's overrides and checks it against the row."""
    shipped = {path.stem for path in CONFIGS.glob("*.toml")}
    assert set(SHIPPED) | set(NOT_ASSIMILATED_ON_THE_SAMPLE) == shipped
    assert not set(SHIPPED) & set(NOT_ASSIMILATED_ON_THE_SAMPLE)
    tests = Path(__file__).parent
    for name, row in SHIPPED.items():
        if row.run_by == HERE:
            continue
        path, test = row.run_by.split("::")
        source = (tests / path).read_text()
        assert f"def {test}(" in source, row.run_by
        assert f'"{name}"' in source and "check_pinned_rmse(" in source, row.run_by
        assert all(override in source for override in row.overrides), (row.run_by, row.overrides)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
    for name, row in SHIPPED.items() if row.run_by == HERE])
def test_shipped_config_gives_its_pinned_rmse(cli, module_workspace, name):
    row = SHIPPED[name]
    options = [option for override in row.overrides for option in ("--set", override)]
    result = cli(["assimilate", f"configs/{name}.toml", "--json", "-q", *options], module_workspace)
    assert result.exit_code == SUCCESS, result.stderr
    summary = json.loads(result.stdout)
    assert summary["converged_windows"] == summary["windows"], summary
    check_pinned_rmse(name, summary["analysis_rmse"], summary["background_rmse"])
