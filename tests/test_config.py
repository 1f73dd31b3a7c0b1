"""Configuration: loading, key location, overrides, path resolution and error messages.

No JAX here: every problem a config can have is found before anything is computed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import dacli.config
from dacli.config.loading import apply_overrides, locate_keys
from dacli.errors import USAGE_ERROR, ConfigError

REPO = Path(__file__).resolve().parents[1]

MINIMAL = """\
[model]
name = "lorenz96"
parameters = { n = 40, forcing = 8.0 }
dt = 0.05

[window]
length = 0.2

[observations]
path = "data/obs.nc"

[background]
path = "data/background.nc"

[method]
minimiser = "LBFGS"
max_steps = 50

[output]
path = "out/analysis.nc"
"""


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ln(text: str, fragment: str) -> int:
    """1-based number of the first line of ``text`` that starts with ``fragment``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith(fragment))


def problems_of(path, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as info:
        dacli.config.load(path, overrides)
    error = info.value
    assert error.exit_code == USAGE_ERROR
    # The message lists every problem, each on its own line, under a header that counts them.
    message = str(error)
    count = len(error.problems)
    assert message.splitlines()[0].endswith(f"({count} problem{'s' if count != 1 else ''}):")
    assert all(f"  - {p}" in message for p in error.problems)
    return error.problems


# --- the shipped configs -----------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads_and_its_input_files_exist(path):
    config = dacli.config.load(path)
    inputs = [config.observations.path, config.background.path, config.truth.path if config.truth else None,
              config.train.observations if config.train else None, config.train.truth if config.train else None]
    assert all(Path(p).exists() for p in inputs if p is not None), inputs


@pytest.mark.parametrize("name", ["lorenz96", "lorenz63"])
def test_shipped_configs_are_valid(name, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the result must not depend on the working directory
    config = dacli.config.load(REPO / "configs" / f"{name}.toml")
    assert config.model.name == name
    for path in (config.observations.path, config.background.path, config.truth.path):
        assert Path(path).is_absolute() and Path(path).exists(), path
        assert Path(path).parent == REPO / "sample_data"
    assert config.output.path == f"{name}_analysis.nc"  # relative to the working directory


def test_defaults_and_values(tmp_path):
    config = dacli.config.load(write(tmp_path, MINIMAL))
    assert config.window.effective_shift == 0.2
    assert config.method.max_steps == 50
    assert config.method.forward_adjoint == "RecursiveCheckpointAdjoint"
    assert config.model.parameters == {"n": 40, "forcing": 8.0}
    assert config.run.precision == "float64"
    with pytest.raises(Exception):
        config.method.max_steps = 3  # frozen records


# --- paths --------------------------------------------------------------------------------------

def test_input_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    config_path = write(tmp_path / "project" / "configs", MINIMAL)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = dacli.config.load(config_path)
    assert config.observations.path == str(tmp_path / "project" / "configs" / "data" / "obs.nc")
    assert config.background.path == str(tmp_path / "project" / "configs" / "data" / "background.nc")
    # The output goes where the user (or batch job) runs: relative to the working directory.
    assert config.output.path == "out/analysis.nc"


def test_parent_home_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = MINIMAL.replace('"data/obs.nc"', '"../shared/obs.nc"').replace(
        '"data/background.nc"', '"~/bg.nc"')
    text += f'\n[truth]\npath = "{tmp_path / "abs" / "truth.nc"}"\n'
    config = dacli.config.load(write(tmp_path / "cfg", text))
    assert config.observations.path == str(tmp_path / "shared" / "obs.nc")
    assert config.background.path == str(tmp_path / "home" / "bg.nc")
    assert config.truth.path == str(tmp_path / "abs" / "truth.nc")


def test_set_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    config_path = write(tmp_path / "configs", MINIMAL)
    monkeypatch.chdir(tmp_path)
    config = dacli.config.load(config_path, ["observations.path=other/obs.nc", "output.path=o.nc"])
    assert config.observations.path == str(tmp_path / "other" / "obs.nc")  # typed here, so from here
    assert config.background.path == str(tmp_path / "configs" / "data" / "background.nc")
    assert config.output.path == "o.nc"


# --- locate_keys --------------------------------------------------------------------------------

LOCATE = """\
# a comment with key = 1
title = "x = {y = 1}"   # z = 2
[model]
name = "lorenz96"
parameters = { n = 40, forcing = 8.0, nested = { deep = 1 } }
"quoted.key" = 1
arr = [
  1, 2,  # c = 3
  { q = 1 },
]
after = 2
ml = \"\"\"
fake = 1
\"\"\"
lit = '''
fake2 = 2'''
[ background . covariance ]
kind = "gaussian"
[background]
other.std = 2.0
'x y'.z = 1
esc = "a\\"b = 1"
[[arr_tab]]
k = 1
"""


def test_locate_keys_tables_inline_tables_dotted_and_quoted_keys():
    import tomllib

    tomllib.loads(LOCATE)  # the fixture is valid TOML
    lines = locate_keys(LOCATE)
    assert lines == {
        "title": 2,
        "model": 3,
        "model.name": 4,
        "model.parameters": 5,
        "model.parameters.n": 5,
        "model.parameters.forcing": 5,
        "model.parameters.nested": 5,
        "model.parameters.nested.deep": 5,
        "model.quoted.key": 6,
        "model.arr": 7,
        "model.after": 11,  # after a multi-line array
        "model.ml": 12,
        "model.lit": 15,
        "background.covariance": 17,
        "background.covariance.kind": 18,
        "background": 19,
        "background.other.std": 20,  # dotted key inside a table
        "background.x y.z": 21,
        "background.esc": 22,
        "arr_tab": 23,
        "arr_tab.k": 24,
    }
    # Nothing inside strings, comments or multi-line strings was taken for a key.
    assert not {"key", "y", "z", "c", "fake", "fake2", "model.fake", "model.c", "b"} & set(lines)


def test_locate_keys_on_the_shipped_config():
    text = (REPO / "configs" / "lorenz96.toml").read_text()
    lines = locate_keys(text)
    numbered = text.splitlines()
    for key in ("method.minimiser", "model.parameters.forcing", "background.covariance.length_scale",
                "window.length", "output.path"):
        line = numbered[lines[key] - 1]
        assert re.match(rf"\s*(\w+\s*=\s*\{{.*)?\b{key.split('.')[-1]}\s*=", line), (key, line)


@pytest.mark.parametrize("text", ["[a\nb = {c = \n", 'a = "unterminated\nb = 1\n', "a = [1, 2\nb = 1\n",
                                  "= 1\n[\n", "a = '''never closed\n", "x = {", ""])
def test_locate_keys_never_fails_on_broken_text(text):
    lines = locate_keys(text)
    assert isinstance(lines, dict)
    assert all(isinstance(v, int) and v >= 1 for v in lines.values())


# --- error messages -----------------------------------------------------------------------------

def test_unknown_key_names_file_line_key_and_suggestion(tmp_path):
    path = write(tmp_path, MINIMAL.replace('minimiser = "LBFGS"', 'minimiserr = "LBFGS"'))
    line = MINIMAL.splitlines().index('minimiser = "LBFGS"') + 1
    assert problems_of(path) == [f"{path}:{line}: method.minimiserr: unknown key; did you mean 'minimiser'?"]


def test_unknown_section_and_nested_key(tmp_path):
    text = MINIMAL.replace("[method]", "[methd]") + '\n[background.covariance]\nlenght_scale = 2.0\n'
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert f"{path}:{ln(text, '[methd]')}: methd: unknown key; did you mean 'method'?" in problems
    assert (f"{path}:{ln(text, 'lenght_scale')}: background.covariance.lenght_scale: unknown key; "
            "did you mean 'length_scale'?") in problems


def test_unknown_key_without_a_close_match_lists_the_known_keys(tmp_path):
    text = MINIMAL + "\n[run]\nflavour = 1\n"
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{ln(text, 'flavour')}: run.flavour: unknown key (known keys here: name, seed, precision, device")



def test_removed_key_is_refused_saying_why(cli, tmp_path):
    """A removed key is not a typo: ``dacli validate`` says it was removed and why (exit code 2)."""
    simulate = "\n[simulate]\nduration = 1.0\nobs_interval = 0.05\n"
    text = MINIMAL + simulate + "initial_perturbation = 1.0\n"
    path = write(tmp_path, text)
    why = ("simulate.initial_perturbation: removed key: never used: the truth starts from the "
           "model's default state (seeded by run.seed), spun up for simulate.spinup; delete it")
    result = cli(["validate", path], tmp_path)
    assert result.exit_code == USAGE_ERROR
    assert f"{path}:{ln(text, 'initial_perturbation')}: {why}" in result.stderr
    path = write(tmp_path, MINIMAL + simulate, "set.toml")
    result = cli(["validate", path, "--set", "simulate.initial_perturbation=2.0"], tmp_path)
    assert result.exit_code == USAGE_ERROR
    assert f"--set simulate.initial_perturbation=2.0: {why}" in result.stderr

def test_renamed_key_is_refused_saying_the_new_name(cli, tmp_path):
    """A renamed key (one meaning per word) is refused saying its new name, in the file and with --set."""
    text = MINIMAL.replace("dt = 0.05", 'dt = 0.05\nsolver = "RK4"')
    path = write(tmp_path, text)
    why = "model.solver: renamed: use model.ode_solver (the ODE solver; 'solver' meant three things)"
    result = cli(["validate", path], tmp_path)
    assert result.exit_code == USAGE_ERROR
    assert f"{path}:{ln(text, 'solver')}: {why}" in result.stderr
    path = write(tmp_path, MINIMAL, "set.toml")
    result = cli(["validate", path, "--set", "method.checkpoints=3"], tmp_path)
    assert result.exit_code == USAGE_ERROR
    assert ("--set method.checkpoints=3: method.checkpoints: renamed: use method.adjoint_checkpoints "
            "(RecursiveCheckpointAdjoint's stored steps; 'checkpoint' meant four things)") in result.stderr


def test_wrong_type_says_expected_and_found(tmp_path):
    path = write(tmp_path, MINIMAL.replace("max_steps = 50", 'max_steps = "ten"'))
    assert problems_of(path) == [
        f"{path}:{ln(MINIMAL, 'max_steps')}: method.max_steps: input should be a valid integer, unable to parse string as an "
        "integer, found 'ten'"
    ]


@pytest.mark.parametrize(("line", "key", "found"), [
    ("rtol = nan", "method.rtol", "nan"),
    ("atol = inf", "method.atol", "inf"),
    ("learning_rate = -inf", "method.learning_rate", "-inf"),
])
def test_nan_and_inf_are_rejected(tmp_path, line, key, found):
    path = write(tmp_path, MINIMAL.replace("max_steps = 50", f"max_steps = 50\n{line}"))
    assert problems_of(path) == [f"{path}:{ln(MINIMAL, 'max_steps') + 1}: {key}: expected a finite number, found {found}"]


def test_nan_inside_lists_and_free_form_parameters(tmp_path):
    text = MINIMAL.replace("forcing = 8.0", "forcing = nan").replace(
        "[method]", "[background.covariance]\nstd = [1.0, nan]\n\n[method]")
    text = text.replace("length = 0.2", "length = 0.2\nstart = inf")
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{ln(text, 'parameters')}: model.parameters.forcing: expected a finite number, found nan",
        f"{path}:{ln(text, 'start')}: window.start: expected a finite number, found inf",
        f"{path}:{ln(text, 'std')}: background.covariance.std.1: expected a finite number, found nan",
    ]


def test_union_of_types_reports_the_accepted_types_once(tmp_path):
    path = write(tmp_path, MINIMAL.replace("n = 40", "n = { a = 1 }"))
    assert problems_of(path) == [
        f"{path}:{ln(MINIMAL, 'parameters')}: model.parameters.n: expected one of float, int, str, bool, list[float], found {{'a': 1}}"
    ]


def test_choice_with_suggestion(tmp_path):
    text = MINIMAL.replace('path = "data/obs.nc"', 'path = "data/obs.nc"\nlayout = "grided"')
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{ln(text, 'layout')}: observations.layout: input should be 'gridded', 'scattered' or 'ioda', found 'grided'; "
        "did you mean 'gridded'?"
    ]


def test_missing_required_key_and_section(tmp_path):
    path = write(tmp_path, MINIMAL.replace("length = 0.2", "").replace(
        '[background]\npath = "data/background.nc"\n', ""))
    problems = problems_of(path)
    assert f"{path}:{ln(MINIMAL, '[window]')}: window.length: missing required key" in problems
    assert f"{path}: background: missing required key" in problems


def test_cross_field_rule_points_at_the_table(tmp_path):
    path = write(tmp_path, MINIMAL.replace("length = 0.2", "length = 0.2\nshift = 0.4"))
    assert problems_of(path) == [
        f"{path}:{ln(MINIMAL, '[window]')}: window: window.shift (0.4) must not exceed window.length (0.2): windows may overlap "
        "but not leave gaps"
    ]


@pytest.mark.parametrize(("key", "bad", "good"), [
    ("minimiser", "LBFS", "LBFGS"),
    ("forward_adjoint", "RecursveCheckpointAdjoint", "RecursiveCheckpointAdjoint"),
    ("minimiser_adjoint", "ImplicitAdjiont", "ImplicitAdjoint"),
])
def test_unknown_registry_names_get_a_suggestion(tmp_path, key, bad, good):
    path = write(tmp_path, MINIMAL.replace("max_steps = 50", f'max_steps = 50\n{key} = "{bad}"').replace(
        'minimiser = "LBFGS"\n', "" if key == "minimiser" else 'minimiser = "LBFGS"\n'))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:")
    assert f"method.{key}: unknown {key} '{bad}'; did you mean '{good}'? (choose from: " in problem


def test_unknown_model_and_solver(tmp_path):
    text = MINIMAL.replace('"lorenz96"', '"lorenz69"').replace("dt = 0.05", 'dt = 0.05\node_solver = "Eular"')
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{ln(text, 'name')}: model.name: unknown model 'lorenz69'; did you mean 'lorenz96'? (choose from: lorenz63, "
        "lorenz96, qg, or give 'package.module:factory')",
        f"{path}:{ln(text, 'ode_solver')}: model.ode_solver: unknown ODE solver 'Eular'; did you mean 'Euler'? (choose from: Tsit5, Dopri5, "
        "Dopri8, Bosh3, RK4, Heun, Midpoint, Ralston, Euler)",
    ]


def test_every_problem_is_reported_at_once_in_file_order(tmp_path):
    text = (MINIMAL.replace('minimiser = "LBFGS"', 'minimiser = "LBFS"\nforward_adjoint = "Backsolve"')
            .replace("max_steps = 50", 'max_steps = "ten"\nrtol = nan\nlearning_rat = 0.1')
            .replace("dt = 0.05", "dt = -1"))
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert problems == [
        f"{path}:{ln(text, 'dt')}: model.dt: input should be greater than 0, found -1",
        f"{path}:{ln(text, 'minimiser')}: method.minimiser: unknown minimiser 'LBFS'; did you mean 'LBFGS'? (choose from: auto, LBFGS, BFGS, "
        "NonlinearCG, GradientDescent, GaussNewton, LevenbergMarquardt, CG)",
        f"{path}:{ln(text, 'forward_adjoint')}: method.forward_adjoint: unknown forward_adjoint 'Backsolve'; did you mean 'BacksolveAdjoint'? "
        "(choose from: RecursiveCheckpointAdjoint, BacksolveAdjoint, DirectAdjoint, ForwardMode)",
        f"{path}:{ln(text, 'max_steps')}: method.max_steps: input should be a valid integer, unable to parse string as an integer, "
        "found 'ten'",
        f"{path}:{ln(text, 'rtol')}: method.rtol: expected a finite number, found nan",
        f"{path}:{ln(text, 'learning_rat')}: method.learning_rat: unknown key; did you mean 'learning_rate'?",
    ]


def test_malformed_toml_names_file_and_line(tmp_path):
    path = write(tmp_path, MINIMAL.replace("[window]", "[window"))
    line = ln(MINIMAL, "[window]")
    (problem,) = problems_of(path)
    assert problem == (f"{path}:{line}: not valid TOML: Expected ']' at the end of a table declaration "
                       f"(at line {line}, column 8)")


def test_duplicate_key_is_malformed_toml(tmp_path):
    path = write(tmp_path, MINIMAL.replace("dt = 0.05", "dt = 0.05\ndt = 0.1"))
    line = ln(MINIMAL, "dt") + 1
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line}: not valid TOML: ") and f"(at line {line}" in problem


def test_unreadable_config_files(tmp_path):
    assert problems_of(tmp_path / "nope.toml") == [f"{tmp_path / 'nope.toml'}: no such file"]
    assert problems_of(tmp_path) == [f"{tmp_path}: is a directory, not a TOML file"]
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    (problem,) = problems_of(binary)
    assert problem.startswith(f"{binary}: not a UTF-8 text file")


# --- overrides ----------------------------------------------------------------------------------

def test_apply_overrides_parses_toml_values_and_creates_tables():
    data = {"method": {"max_steps": 10}}
    out = apply_overrides(data, ["method.max_steps=5", "window.count = 3", "run.name=my run",
                                 "model.parameters={ n = 8 }", "output.overwrite=true", "method.rtol=1e-3"])
    assert out == {"method": {"max_steps": 5, "rtol": 1e-3}, "window": {"count": 3}, "run": {"name": "my run"},
                   "model": {"parameters": {"n": 8}}, "output": {"overwrite": True}}
    assert data == {"method": {"max_steps": 10}}  # the input is not modified


def test_apply_overrides_reports_every_bad_override():
    with pytest.raises(ConfigError) as info:
        apply_overrides({"method": {"max_steps": 10}}, ["noequals", "=3", "a..b=1", "method.max_steps.x=1", "ok.key=1"])
    assert info.value.problems == [
        "--set 'noequals': expected KEY.PATH=VALUE, found no '='",
        "--set '=3': expected a dotted key such as method.max_steps",
        "--set 'a..b=1': expected a dotted key such as method.max_steps",
        "--set 'method.max_steps.x=1': 'max_steps' is a value, not a table",
    ]


def test_set_overrides_win_and_errors_name_the_override(tmp_path):
    path = write(tmp_path, MINIMAL)
    config = dacli.config.load(path, ["method.max_steps=5", "window.count=2", 'method.minimiser="BFGS"'],)
    assert (config.method.max_steps, config.window.count, config.method.minimiser) == (5, 2, "BFGS")
    problems = problems_of(path, ["method.max_steps=ten", "window.count=0", "method.minimiser=LBFS", "broken"])
    assert problems[0] == "--set 'broken': expected KEY.PATH=VALUE, found no '='"
    assert ("--set method.max_steps=ten: method.max_steps: input should be a valid integer, unable to parse "
            "string as an integer, found 'ten'") in problems
    assert "--set window.count=0: window.count: input should be greater than 0, found 0" in problems
    assert any(p.startswith("--set method.minimiser=LBFS: method.minimiser: unknown minimiser 'LBFS'; "
                            "did you mean 'LBFGS'?") for p in problems)
    assert len(problems) == 4


def test_set_and_file_errors_together(tmp_path):
    path = write(tmp_path, MINIMAL.replace("dt = 0.05", "dt = nan"))
    problems = problems_of(path, ["method.rtol=nan"])
    assert problems == [f"{path}:{ln(MINIMAL, 'dt')}: model.dt: expected a finite number, found nan",
                        "--set method.rtol=nan: method.rtol: expected a finite number, found nan"]


# --- rules across sections ----------------------------------------------------------------------

def test_window_must_be_whole_model_steps(tmp_path):
    text = MINIMAL.replace("length = 0.2", "length = 0.23\nshift = 0.07")
    path = write(tmp_path, text)
    assert problems_of(path) == [
        f"{path}:{ln(text, 'length')}: window.length: 0.23 is not a whole number of model steps (model.dt = 0.05)",
        f"{path}:{ln(text, 'shift')}: window.shift: 0.07 is not a whole number of model steps (model.dt = 0.05)",
    ]
    assert dacli.config.load(path, ["window.length=0.25", "window.shift=0.1"]).window.length == 0.25


def test_cross_section_rule_is_skipped_when_its_inputs_were_rejected(tmp_path):
    # dt is invalid: checking the window against the default dt would report a value nobody wrote.
    text = MINIMAL.replace("dt = 0.05", "dt = -0.03").replace("length = 0.2", "length = 0.09")
    path = write(tmp_path, text)
    assert problems_of(path) == [f"{path}:{ln(text, 'dt')}: model.dt: input should be greater than 0, found -0.03"]


def test_byte_order_mark_and_home_in_output_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.replace('"out/analysis.nc"', '"~/results/a.nc"').encode())
    config = dacli.config.load(path)
    assert config.output.path == str(tmp_path / "home" / "results" / "a.nc")


# --- limits ----------------------------------------------------------------------------------

def _records(model, seen=None):
    """Every pydantic record reachable from ``model`` (the schema's sections)."""
    from pydantic import BaseModel

    from dacli.config.loading import _members

    seen = {} if seen is None else seen
    seen[model.__name__] = model
    for field in model.model_fields.values():
        for member in _members(field.annotation):
            if isinstance(member, type) and issubclass(member, BaseModel) and member.__name__ not in seen:
                _records(member, seen)
    return seen


def test_every_integer_key_has_a_finite_bound_stated_in_its_description():
    import annotated_types

    from dacli.config.loading import _members
    from dacli.config.schema import Config

    unbounded = []
    for record in _records(Config).values():
        for name, field in record.model_fields.items():
            if int not in _members(field.annotation):
                continue
            upper = [m.le for m in field.metadata if isinstance(m, annotated_types.Le)]
            lower = [getattr(m, "ge", getattr(m, "gt", None)) for m in field.metadata
                     if isinstance(m, (annotated_types.Ge, annotated_types.Gt))]
            if not upper or not lower or f"{upper[0]:,}" not in (field.description or ""):
                unbounded.append(f"{record.__name__}.{name}")
    assert unbounded == []


def test_locate_keys_does_not_recurse_into_deep_values():
    import sys

    depth = sys.getrecursionlimit() * 2
    text = f"a = {'[' * depth}1{']' * depth}\nb = {'{ c = ' * depth}1{' }' * depth}\n[t]\nd = 2\n"
    # keys of inline tables are recorded down to the nesting bound (16 levels), then skipped
    assert locate_keys(text) == {"a": 1, "b": 2, **{"b" + ".c" * k: 2 for k in range(1, 17)}, "t": 3, "t.d": 4}
