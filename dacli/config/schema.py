"""The configuration schema: one frozen pydantic record per TOML section.

This is the single source of truth for every key, its type and its default. Names that pick
an implementation (model, ODE solver, minimiser, adjoints) are plain strings here and are
resolved — with "did you mean" suggestions — by :mod:`dacli.config.registry`, so this module
needs no JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveFloat,
    field_validator,
    model_serializer,
    model_validator,
)

from dacli.covariances.shapes import SHAPES

# --- bounds --------------------------------------------------------------------------------------
# Every integer key has a finite bound, stated in its description: a value beyond it is a typo or a
# unit mistake (1e20 written as an integer, seconds read as steps) that would overflow JAX's int64
# or exhaust memory, and is refused here naming the key instead of failing later.

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # integers that reach JAX (model.parameters)
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # IODA's integer flags
MAX_SEED = (
    2**32 - 2
)  # JAX's PRNGKey keeps 32 bits without x64; run.seed + 1 seeds the training twin
MAX_WINDOWS = (
    1_000_000  # assimilation windows in one run (as dacli.observations.windows.MAX_WINDOWS)
)
MAX_ITERATIONS = 1_000_000  # minimiser, CG, optimiser steps; epochs
MAX_STEPS_PER_WINDOW = 1_000_000  # window.length / model.dt: the window's trajectory is stored
MAX_SIMULATED_STEPS = (
    10_000_000  # simulate.spinup or simulate.duration / model.dt: every step is stored
)
MAX_CHANNELS = 4096  # network channels
MAX_KERNEL = 255  # network convolution width
MAX_NETWORK_ITERATIONS = 10_000  # 4DVarNet iterations per window (unrolled through by training)
MAX_OBSERVATIONS_PER_TIME = 10_000_000  # simulated observation locations per time
MAX_TRACKS_PER_TIME = 10_000  # simulated satellite passes per observation time


def _count(maximum: int, description: str = "", default=..., minimum: int = 1, **kwargs):
    """A bounded integer field: ``minimum <= value <= maximum``, the bound stated in the
    description."""
    bound = f"{minimum:,} to {maximum:,}"
    lower: dict[str, Any] = (
        {"gt": 0} if minimum == 1 else {"ge": minimum}
    )  # 'greater than 0' reads better than '>= 1'
    return Field(
        default,
        le=maximum,
        description=f"{description} ({bound})" if description else bound,
        **lower,
        **kwargs,
    )


def _fits_int64(value):
    """Refuse a TOML integer outside int64 (JAX's widest): it would be read as a float or
    overflow later."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not INT64_MIN <= value <= INT64_MAX
    ):
        raise ValueError(
            f"expected an integer from {INT64_MIN:,} to {INT64_MAX:,} (int64), found {value}"
        )
    return value


def signal_number(name: str) -> int:
    """'USR1', 'SIGUSR1' or '10' -> the signal number; ValueError naming the choices otherwise."""
    import signal

    text = name.strip().upper()
    if text.isdigit() and int(text) in {int(s) for s in signal.Signals}:
        return int(text)
    text = text if text.startswith("SIG") else f"SIG{text}"
    if text in {"SIGKILL", "SIGSTOP"} or not hasattr(signal.Signals, text):
        raise ValueError(
            f"unknown or uncatchable signal {name!r} (e.g. USR1, USR2, TERM, or a number)"
        )
    return int(getattr(signal.Signals, text))


def window_range(text: str) -> tuple[int, int | None]:
    """'A:B', 'A:' or ':B' -> (A, B or None), 0 <= A < B; ValueError saying the form otherwise."""
    first, colon, last = text.partition(":")
    try:
        if not colon:
            raise ValueError
        start = int(first) if first.strip() else 0
        stop = int(last) if last.strip() else None
    except ValueError:
        raise ValueError(f"expected 'A:B' (windows A <= k < B, from 0), found {text!r}") from None
    if start < 0 or (stop is not None and stop <= start):
        raise ValueError(f"expected 0 <= A < B in 'A:B', found {text!r}")
    return start, stop


def _accepted_by(parse: Callable[[str], Any]) -> Callable[[str], str]:
    """A validator of the strings ``parse`` accepts (its ValueError is the validation message)."""

    def check(value: str) -> str:
        parse(value)
        return value

    return check


# Spelled out (not built by a function) so that type checkers read them as types.
SignalName = Annotated[str, AfterValidator(_accepted_by(signal_number))]
WindowRange = Annotated[str, AfterValidator(_accepted_by(window_range))]


class Section(BaseModel):
    """Base record: immutable, unknown keys rejected, nan/inf rejected for every float."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RunConfig(Section):
    name: str = Field(
        default="dacli-run",
        description=(
            "a label for the run: the title of the files written when output.title is unset; shown "
            "by dacli validate and on the training loss plot"
        ),
    )
    seed: int = _count(MAX_SEED, "random seed; 32 bits", default=0, minimum=0)
    precision: Literal["float32", "float64"] = Field(
        default="float64",
        description=(
            "floating-point precision of the computation: float64, or float32 (faster on GPUs, "
            "half the memory); --precision overrides it"
        ),
    )
    device: Literal["auto", "cpu", "gpu"] = Field(
        default="auto",
        description=(
            "auto: JAX's default backend (a GPU when one is visible, else the CPU); cpu; gpu "
            "(refused when no GPU is visible); --device overrides it"
        ),
    )
    compilation_cache: str = Field(
        default="auto",
        description=(
            "persistent JAX compilation cache: 'auto' ($DACLI_COMPILATION_CACHE, else the user "
            "cache folder $XDG_CACHE_HOME/dacli/jax or ~/.cache/dacli/jax), 'off', or a folder"
        ),
    )
    stop_signal: SignalName | None = Field(
        default=None,
        description=(
            "a signal that, like SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 (always), stops the run "
            "cleanly at the next safe point (dacli.stop_signals), e.g. 'HUP'; Slurm's "
            "--signal=USR1@300 needs no setting"
        ),
    )
    windows_per_chunk: int | None = _count(
        MAX_WINDOWS,
        default=None,
        description=(
            "windows per compiled chunk (default: up to 32, at least four chunks): a stop is "
            "honoured and progress reported at chunk boundaries"
        ),
    )
    minimiser_steps_per_chunk: int | None = _count(
        MAX_ITERATIONS,
        default=None,
        description=(
            "long windows: run each window's minimiser this many iterations per compiled call, so "
            "a stop is honoured within a window (nonlinear formulation; one window per chunk)"
        ),
    )


ModelParameter = Annotated[float | int | str | bool | list[float], BeforeValidator(_fits_int64)]


class ModelConfig(Section):
    name: str = Field(
        description=(
            "built-in model name, entry point name, or 'package.module:attribute' naming a "
            "dacli.models.Dynamics subclass or a factory marked with @dacli.models.model_factory "
            "(the one place a config loads code)"
        )
    )
    parameters: dict[str, ModelParameter] = Field(
        default_factory=dict,
        description=(
            "passed to the model's factory; integers within int64; the model bounds its own sizes "
            "(dacli.models.MAX_STATE_SIZE state elements at most)"
        ),
    )
    ode_solver: str = Field(
        default="Tsit5",
        description=(
            "explicit Runge-Kutta scheme stepping the model at the constant step model.dt: Tsit5, "
            "Dopri5, Dopri8, Bosh3, RK4, Heun, Midpoint, Ralston or Euler"
        ),
    )
    dt: PositiveFloat = Field(
        default=0.05,
        description=(
            "model time step (the ODE solver's constant step); observation times are matched to "
            "the nearest step; window.length, window.shift and the [simulate] times are whole "
            "numbers of it"
        ),
    )
    adjoint: Literal["auto", "autodiff"] = Field(
        default="auto",
        description=(
            "how the model is differentiated in reverse mode: 'auto' runs the model's hand-written "
            "adjoint (Lorenz-63 and Lorenz-96 have one; fewer kernels per step) where nothing "
            "linearises the model forward (dacli assimilate and sweep, not with the incremental "
            "formulation, ForwardMode, observation diagnostics or a KStep/OneStep minimiser "
            "adjoint) and JAX's autodiff elsewhere; 'autodiff' always differentiates the vector "
            "field with JAX"
        ),
    )


class WindowConfig(Section):
    start: float = Field(
        default=0.0,
        description=(
            "model time at which the first window starts (and dacli simulate's truth run)"
        ),
    )
    length: PositiveFloat = Field(
        description=(
            f"model time per window: a whole number of model.dt steps, at most "
            f"{MAX_STEPS_PER_WINDOW:,}"
        )
    )
    shift: PositiveFloat | None = Field(
        default=None,
        description=(
            f"defaults to length; a whole number of model.dt steps, at most "
            f"{MAX_STEPS_PER_WINDOW:,}"
        ),
    )
    count: int | None = _count(
        MAX_WINDOWS, default=None, description=("defaults to as many as the observations cover")
    )
    assimilate: Literal["newest", "all"] = Field(
        default="newest",
        description=(
            "overlapping windows (shift < length): 'newest' assimilates each observation once, in "
            "the window where it is newest (the window's last shift); 'all' in every window that "
            "covers it"
        ),
    )
    select: WindowRange | None = Field(
        default=None,
        description=(
            "'A:B': run only windows A <= k < B of the schedule, counted from 0 (a job-array "
            "task's share); the first selected window's background is background.path's state at "
            "its start"
        ),
    )

    @model_validator(mode="after")
    def _shift_not_longer_than_length(self) -> WindowConfig:
        if self.shift is not None and self.shift > self.length:
            raise ValueError(
                f"window.shift ({self.shift}) must not exceed window.length ({self.length}): "
                "windows may overlap but not leave gaps"
            )
        return self

    @property
    def effective_shift(self) -> float:
        return self.length if self.shift is None else self.shift


_DEFAULT_TIME_UNITS = "days since 2000-01-01 00:00:00"  # [time] units when not set


class TimeConfig(Section):
    """The model's time axis: model times (window.start, model.dt, ...) are numbers of ``units``
    in ``calendar``.

    Lorenz models have a dimensionless time: it is written with these units too (one model
    time unit as one day by default), which keeps their files CF time that every tool decodes;
    ``long_name`` then says so (without ``units`` in the config, the time is taken as
    dimensionless: :func:`dacli.io.times.dimensionless_label`).
    """

    units: str = Field(
        default=_DEFAULT_TIME_UNITS,
        description=(
            "CF time units '<unit> since <epoch>' of model time; also the units of every time "
            "written"
        ),
    )
    calendar: str = Field(
        default="standard",
        description=(
            "CF calendar of model time: standard, proleptic_gregorian, julian, noleap, all_leap or "
            "360_day"
        ),
    )
    long_name: str | None = Field(
        default=None,
        description=(
            "long_name of the time coordinates written; default 'time' where [time] units is "
            "set, else 'dimensionless model time (one model time unit written as one day since "
            "2000-01-01 00:00:00)', the Lorenz models' case"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _default_long_name(cls, data: Any) -> Any:
        from dacli.io.times import dimensionless_label

        if isinstance(data, dict) and data.get("long_name") is None:
            units = data.get("units")
            label = "time" if units is not None else dimensionless_label(_DEFAULT_TIME_UNITS)
            data = {**data, "long_name": label}
        return data

    @field_validator("calendar")
    @classmethod
    def _cf_calendar(cls, calendar: str) -> str:
        from dacli.io.times import canonical_calendar

        canonical_calendar(calendar)
        return calendar

    @field_validator("units")
    @classmethod
    def _cf_units(cls, units: str) -> str:
        from dacli.io.times import check_time_units

        check_time_units(
            units, "standard"
        )  # the form; the calendar's own rules are checked with it below
        return units

    @model_validator(mode="after")
    def _units_in_calendar(self) -> TimeConfig:
        from dacli.io.times import canonical_calendar, check_time_units

        check_time_units(self.units, canonical_calendar(self.calendar))
        return self

    def axis(self):
        """The :class:`dacli.io.times.TimeAxis` these keys define."""
        from dacli.io.times import TimeAxis

        return TimeAxis(self.units, self.calendar, self.long_name or "time")


ScalarValue = float | int | str


class InputFileConfig(Section):
    """How to read one input file: the keys every input (observations, background, truth) shares."""

    names: dict[str, str] = Field(
        default_factory=dict, description="model variable -> file variable"
    )
    dims: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "dacli dimension or coordinate (time, obs, and the model's grid axes, e.g. lat, lon) "
            "-> the file's name"
        ),
    )
    select: dict[str, ScalarValue] = Field(
        default_factory=dict,
        description=(
            "file dimension -> coordinate value kept (e.g. { level = 500 }): the value must be "
            "present within 1e-6 of its magnitude (nearest otherwise refused); the dimension is "
            "dropped"
        ),
    )
    model_time: bool = Field(
        default=False,
        description=(
            "the file's time numbers are model times already (needed when its time coordinate has "
            "no units)"
        ),
    )


class ObservationsConfig(InputFileConfig):
    path: str = Field(
        description=(
            "the observation file, read as layout says (dacli simulate writes it); relative to the "
            "config file"
        )
    )
    layout: Literal["gridded", "scattered", "ioda"] = Field(
        default="gridded",
        description=(
            "the file's form: gridded (<var>(time, *grid) on the model grid or a larger one), "
            "scattered (a CF point file: time(obs), a location per grid axis and <var>(obs)) or "
            "ioda (IODA v3)"
        ),
    )
    variables: list[str] | None = Field(
        default=None, description="model variables observed; default all"
    )
    duplicates: Literal["first", "independent", "refuse"] = Field(
        default="first",
        description=(
            "observations repeated at the same time, place and variable: 'first' keeps the first "
            "and counts the others as rejected (with a warning), 'independent' assimilates all as "
            "independent observations, 'refuse' stops with an error"
        ),
    )
    error_std: PositiveFloat | None = Field(
        default=None, description="observation error std used where the file has no <var>_error"
    )
    time_tolerance: PositiveFloat | None = Field(
        default=None,
        description="max distance of an observation time from a model time step; default dt/2",
    )
    accept_preqc: list[Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]] = Field(
        default_factory=lambda: [0],
        description=f"ioda: PreQC flag values kept (int32: {INT32_MIN:,} to {INT32_MAX:,})",
    )


CORRELATED_KINDS = SHAPES  # the covariance kinds with a correlation length
CorrelatedKind = Literal["gaussian", "matern32"]  # CORRELATED_KINDS, spelled out for type checkers
assert get_args(CorrelatedKind) == CORRELATED_KINDS, "CorrelatedKind must list covariances.SHAPES"
# Keys only some covariance kinds take, and which: a key of another kind is refused naming them.
_KIND_KEYS = {
    "length_scale": "kind = 'gaussian' or 'matern32'",
    "path": "kind = 'matrix'",
    "variable": "kind = 'matrix'",
}


class _CovarianceBase(Section):
    """What every covariance kind has: B = D C D with D = diag(std)."""

    kind: str = Field(description="the covariance form")  # each kind narrows it (the discriminator)
    std: PositiveFloat | list[PositiveFloat] = Field(
        default=1.0,
        description=(
            "D = diag(std), the error standard deviations in the model's units: one value, one per "
            "variable, or one per state element"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _no_keys_of_other_kinds(cls, data):
        if isinstance(data, dict):
            for key, kinds in _KIND_KEYS.items():
                if key in data and key not in cls.model_fields:
                    raise ValueError(f"{key} only applies to {kinds}")
        return data

    @model_serializer(mode="wrap")
    def _every_key(self, handler):
        """Every kind dumps the same keys in the same order (output files record the
        configuration)."""
        data = handler(self)
        return {
            "kind": data["kind"],
            "std": data["std"],
            "length_scale": data.get("length_scale"),
            "path": data.get("path"),
            "variable": data.get("variable", "B"),
        }


class DiagonalCovariance(_CovarianceBase):
    """C = I: uncorrelated errors."""

    kind: Literal["diagonal"] = Field(
        default="diagonal",
        description=("C = I: uncorrelated errors (the kind taken when kind is left out)"),
    )


class CorrelatedCovariance(_CovarianceBase):
    """C a Gaussian or Matern-3/2 correlation of distance on the model grid."""

    kind: CorrelatedKind = Field(
        description=(
            "C a Gaussian or Matern-3/2 correlation of the distance on the model grid (periodic "
            "distance on periodic grids; a 2-D grid must be doubly periodic)"
        )
    )
    length_scale: PositiveFloat = Field(
        description="correlation length in the grid coordinates' units"
    )


class MatrixCovariance(_CovarianceBase):
    """C a matrix read from a NetCDF file (e.g. a climatological or NMC covariance), scaled by D."""

    kind: Literal["matrix"] = Field(description="C read from a NetCDF file (path, variable)")
    path: str = Field(description="NetCDF file holding an (n, n) covariance")
    variable: str = Field(default="B", description="the variable name in that file")


def _diagonal_by_default(value):
    """A covariance table without ``kind`` is diagonal."""
    return (
        {"kind": "diagonal", **value} if isinstance(value, dict) and "kind" not in value else value
    )


# B or Q: one record per kind, chosen by ``kind`` (diagonal when absent).
CovarianceConfig = Annotated[
    DiagonalCovariance | CorrelatedCovariance | MatrixCovariance,
    BeforeValidator(_diagonal_by_default),
    Field(discriminator="kind"),
]


class BackgroundConfig(InputFileConfig):
    path: str | None = Field(
        default=None,
        description=(
            "a state file (e.g. a previous analysis; dacli simulate writes one): its state at the "
            "first window's start is the background; relative to the config file; or give state"
        ),
    )
    interpolate_time: bool = Field(
        default=False,
        description=(
            "background.path: interpolate linearly in time between the file's states when it holds "
            "no state at the first window's start (within model.dt / 2); otherwise such a file is "
            "refused"
        ),
    )
    state: list[float] | None = Field(default=None, description="explicit background state (flat)")
    covariance: CovarianceConfig = Field(
        default_factory=DiagonalCovariance,
        description=(
            "B = D C D, D = diag(std): the kind of C and its keys; diagonal when kind is left out"
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> BackgroundConfig:
        if (self.path is None) == (self.state is None):
            raise ValueError("give exactly one of background.path or background.state")
        return self


class IncrementalConfig(Section):
    """Incremental formulation: outer loops (nonlinear re-runs) and CG inner loops per outer
    loop."""

    outer_loops: int = _count(
        MAX_ITERATIONS, "outer loops: nonlinear re-runs per window", default=3
    )
    inner_steps: int = _count(MAX_ITERATIONS, "maximum CG iterations per outer loop", default=50)
    gradient_reduction: float = Field(
        default=1e-3,
        gt=0.0,
        lt=1.0,
        description="inner loop stops when |grad| has fallen by this factor",
    )


class ModelErrorConfig(Section):
    """Weak-constraint 4DVar: sub-windows and the model-error covariance Q (same forms as B)."""

    subwindows: int | None = _count(
        MAX_ITERATIONS, "number of sub-windows per window", default=None
    )
    subwindow_length: PositiveFloat | None = Field(
        default=None, description="or their length in model time"
    )
    covariance: CovarianceConfig = Field(
        description=(
            "Q, the model-error covariance per sub-window: the same kinds and keys as "
            "background.covariance"
        )
    )

    @model_validator(mode="after")
    def _one_split(self) -> ModelErrorConfig:
        if (self.subwindows is None) == (self.subwindow_length is None):
            raise ValueError("give exactly one of subwindows or subwindow_length")
        return self


class MethodConfig(Section):
    kind: Literal["strong4dvar", "weak4dvar", "3dvar", "3dfgat", "4dvarnet"] = Field(
        default="strong4dvar",
        description=(
            "strong4dvar, weak4dvar (needs [method.model_error]), 3dvar, 3dfgat (incremental "
            "formulation only) or 4dvarnet (a trained network: needs [network])"
        ),
    )
    formulation: Literal["auto", "nonlinear", "incremental"] = Field(
        default="auto", description="auto: incremental for 3dfgat, nonlinear otherwise"
    )
    minimiser: str = Field(
        default="auto", description="auto, an optimistix minimiser (nonlinear), or CG (incremental)"
    )
    rtol: PositiveFloat = Field(
        default=1e-6,
        description=(
            "relative tolerance of the nonlinear formulation's minimiser (CG's: "
            "incremental.gradient_reduction)"
        ),
    )
    atol: PositiveFloat = Field(
        default=1e-6, description=("absolute tolerance of the nonlinear formulation's minimiser")
    )
    max_steps: int = _count(MAX_ITERATIONS, "minimiser iterations per window at most", default=200)
    learning_rate: PositiveFloat = Field(
        default=0.1,
        description=("step size of the GradientDescent minimiser (unused by the others)"),
    )
    forward_adjoint: str = Field(
        default="RecursiveCheckpointAdjoint",
        description=(
            "how gradients cross the model integration (diffrax): RecursiveCheckpointAdjoint, "
            "BacksolveAdjoint (O(1) memory, approximate), DirectAdjoint, or ForwardMode (one "
            "tangent-linear run per control element: small controls only)"
        ),
    )
    adjoint_checkpoints: int | None = _count(
        MAX_ITERATIONS,
        "RecursiveCheckpointAdjoint's stored steps; default = steps per window",
        default=None,
    )
    minimiser_adjoint: str = Field(
        default="ImplicitAdjoint",
        description=(
            "how gradients cross the minimisation when the method is differentiated from Python "
            "(nonlinear formulation; dacli tune always uses ImplicitAdjoint): ImplicitAdjoint, "
            "RecursiveCheckpointAdjoint, OneStepAdjoint or KStepAdjoint (refines the analysis by k "
            "Newton steps)"
        ),
    )
    minimiser_adjoint_steps: int = _count(MAX_ITERATIONS, "k of KStepAdjoint", default=3)
    incremental: IncrementalConfig = Field(
        default_factory=IncrementalConfig,
        description=("outer and inner loops (the incremental formulation only)"),
    )
    model_error: ModelErrorConfig | None = Field(default=None, description="weak4dvar only")

    @model_validator(mode="after")
    def _consistent(self) -> MethodConfig:
        if self.kind == "weak4dvar" and self.model_error is None:
            raise ValueError(
                "kind = 'weak4dvar' needs a [method.model_error] table (sub-windows and Q)"
            )
        if self.kind != "weak4dvar" and self.model_error is not None:
            raise ValueError(
                f"[method.model_error] only applies to kind = 'weak4dvar', not {self.kind!r}"
            )
        if "incremental" in self.model_fields_set and self.effective_formulation != "incremental":
            raise ValueError(
                "[method.incremental] only applies to the incremental formulation; "
                "set formulation = 'incremental' or remove the table"
            )
        if self.kind == "3dfgat" and self.formulation == "nonlinear":
            raise ValueError(
                "kind = '3dfgat' exists only in the incremental formulation (its tangent-linear "
                "model is the identity); use formulation = 'incremental' or 'auto'"
            )
        return self

    @property
    def effective_formulation(self) -> str:
        if self.formulation != "auto":
            return self.formulation
        return "incremental" if self.kind == "3dfgat" else "nonlinear"


class OutputConfig(Section):
    path: str = Field(
        default="analysis.nc",
        description=(
            "the analysis file dacli assimilate writes (relative to the working directory); a "
            "stopped run's checkpoint goes beside it"
        ),
    )
    title: str | None = Field(
        default=None,
        description=(
            "title attribute of the analysis and observation-diagnostics files (the forecast's "
            "adds ': forecast', simulate's files what they hold); default run.name"
        ),
    )
    summary: str | None = Field(
        default=None,
        description=(
            "summary attribute (ACDD) of every file written; default: generated from the run "
            "(method, model, windows, time coverage)"
        ),
    )
    keywords: list[str] = Field(
        default_factory=list,
        description=(
            "keywords (ACDD) added to those dacli writes ('data assimilation', the method, the "
            "model)"
        ),
    )
    institution: str | None = Field(
        default=None,
        description="institution attribute (CF, ACDD) of every file written; default: left out",
    )
    creator_name: str | None = Field(
        default=None, description="creator_name (ACDD): who made the files; default: left out"
    )
    creator_email: str | None = Field(
        default=None, description="creator_email (ACDD) of the creator; default: left out"
    )
    creator_url: str | None = Field(
        default=None, description="creator_url (ACDD) of the creator; default: left out"
    )
    creator_type: Literal["person", "group", "institution", "position"] | None = Field(
        default=None, description="creator_type (ACDD) of creator_name; default: left out"
    )
    project: str | None = Field(
        default=None, description="project (ACDD) the files belong to; default: left out"
    )
    license: str | None = Field(
        default=None,
        description="license (ACDD) of the files: a URL, SPDX name or text; default: left out",
    )
    references: str | None = Field(
        default=None,
        description="references (CF, ACDD) added to those of the method dacli writes",
    )
    acknowledgement: str | None = Field(
        default=None, description="acknowledgement (ACDD) of funding or support; default: left out"
    )
    overwrite: bool = Field(
        default=False,
        description=(
            "replace existing output files, as --overwrite (dacli assimilate, forecast, simulate)"
        ),
    )
    observation_diagnostics: str | None = Field(
        default=None,
        description=(
            "observation-space diagnostics file (O-B, O-A, QC per observation); relative to the "
            "working directory"
        ),
    )

    time_units: str | None = Field(
        default=None, exclude=True, description="moved to [time] units (refused)"
    )

    @field_validator("time_units")
    @classmethod
    def _moved(cls, value):
        raise ValueError(
            f"{value!r}: output.time_units has moved: the model's time axis is the [time] section "
            f"now (units = {value!r}, calendar = ...)"
        )

    def discovery(self, title: str):
        """The :class:`dacli.io.metadata.Discovery` these keys define, for a file of ``title``
        (``output.title``, else run.name, as the writer words it)."""
        from dacli.io.metadata import Discovery

        return Discovery(
            title,
            self.summary,
            tuple(self.keywords),
            self.references,
            self.institution,
            self.creator_name,
            self.creator_email,
            self.creator_url,
            self.creator_type,
            self.project,
            self.license,
            self.acknowledgement,
        )

    @model_validator(mode="after")
    def _two_files(self) -> OutputConfig:
        if self.observation_diagnostics is not None and Path(self.observation_diagnostics) == Path(
            self.path
        ):
            raise ValueError(
                f"observation_diagnostics ({self.observation_diagnostics}) must not be the "
                "analysis file (output.path)"
            )
        return self


class TruthConfig(InputFileConfig):
    path: str = Field(
        description=(
            "a truth state file: enables the RMSE diagnostics (dacli simulate writes it); relative "
            "to the config file"
        )
    )


class SimulateConfig(Section):
    """Twin-experiment generator (``dacli simulate``); writes the files the other sections name.
    The truth starts from the model's default state (drawn with ``run.seed``), spun up for
    ``spinup``; the background is the truth at ``window.start`` plus an error of std
    ``background_error_std``."""

    spinup: float = Field(
        default=10.0,
        ge=0.0,
        description=(
            f"model time run before the truth starts; at most {MAX_SIMULATED_STEPS:,} model.dt "
            f"steps"
        ),
    )
    duration: PositiveFloat = Field(
        description=f"model time of the truth run; at most {MAX_SIMULATED_STEPS:,} model.dt steps"
    )
    obs_interval: PositiveFloat = Field(
        description=(
            "model time between observation times (the first one obs_interval after window.start): "
            "a whole number of model.dt steps"
        )
    )
    obs_error_std: PositiveFloat = Field(
        default=1.0,
        description=(
            "std of the Gaussian noise added to the truth; written as the file's <var>_error"
        ),
    )
    observed_fraction: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description=(
            "gridded layout: the probability that a grid point is observed at an observation time"
        ),
    )
    missing_fraction: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description=(
            "fraction of the observations written as missing values instead, drawn at random"
        ),
    )
    obs_per_time: int | None = _count(
        MAX_OBSERVATIONS_PER_TIME, "scattered layout: locations per time", default=None
    )
    sampling: Literal["uniform", "tracks"] = Field(
        default="uniform",
        description="scattered layout: uniform random locations, or satellite-like tracks",
    )
    tracks_per_time: int = _count(
        MAX_TRACKS_PER_TIME, "tracks: passes observed at each observation time", default=1
    )
    track_angle: float = Field(
        default=60.0, gt=0.0, lt=90.0, description="tracks: degrees from the x (lon) axis"
    )
    repeat_period: PositiveFloat | None = Field(
        default=None,
        description=(
            "tracks: the ground tracks repeat after this model time; default 10 obs_interval"
        ),
    )
    along_track_spacing: PositiveFloat | None = Field(
        default=None,
        description="tracks: distance between observations along a track; default one grid spacing",
    )
    background_error_std: PositiveFloat = Field(
        default=1.0,
        description=(
            "std of the background error: white, or correlated like B when background.covariance "
            "is gaussian or matern32; also train.background_error_std's default"
        ),
    )

    @model_validator(mode="after")
    def _tracks_only(self) -> SimulateConfig:
        track_keys = {"tracks_per_time", "track_angle", "repeat_period", "along_track_spacing"}
        if self.sampling != "tracks" and track_keys & self.model_fields_set:
            raise ValueError(
                f"{sorted(track_keys & self.model_fields_set)} only apply to sampling = 'tracks'"
            )
        return self


class NetworkConfig(Section):
    """4DVarNet's architecture, update and iteration adjoint (``dacli train``); Fablet et al.
    2021."""

    file: str = Field(
        description="the trained network file: dacli train writes its best epoch there "
        "(relative to the working directory)"
    )
    hidden: int = _count(MAX_CHANNELS, "channels of the bilinear prior", default=16)
    modulator_hidden: int = _count(MAX_CHANNELS, "channels of the ConvLSTM update", default=16)
    kernel: int = _count(MAX_KERNEL, "convolution width (odd)", default=3)
    iterations: int = _count(
        MAX_NETWORK_ITERATIONS, "K, 4DVarNet iterations per window", default=10
    )
    prior_weight: PositiveFloat = Field(
        default=1.0,
        description=(
            "weight w of |x - Phi(x)|^2 against the observation term: U = [|m(x - y)|^2 + w |x - "
            "Phi(x)|^2] / (2 sigma_o^2)"
        ),
    )
    update: Literal["convlstm", "gradient"] = Field(
        default="convlstm",
        description=(
            "convlstm: a ConvLSTM turns each gradient of U into the update; gradient: gradient "
            "descent with a learned step size, which converges (so iteration_adjoint = "
            "ImplicitAdjoint applies)"
        ),
    )
    prior: Literal["bilinear", "model"] = Field(
        default="bilinear",
        description=(
            "Phi: 'bilinear' learns it (a bilinear convolutional auto-encoder); 'model' is one "
            "step of the known model from the previous state (Fablet et al. 2021), which makes w "
            "|x - Phi(x)|^2 weak-constraint 4DVar's model-error term with Q = sigma_o^2 / w per "
            "step (hidden is then unused)"
        ),
    )
    background: bool = Field(
        default=False,
        description=(
            "use the cycled background: the first iterate is its forecast x^b where nothing is "
            "observed (not the climatological mean) and background_weight adds a background term "
            "to U; training then feeds forecasts from perturbed true states "
            "(train.background_error_std)"
        ),
    )
    background_weight: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "w_b of the background term w_b |x_1 - x^b_1|^2 / (2 sigma_o^2) on the window's first "
            "step: 4DVar's Jb with B = sigma_o^2 / w_b (needs background = true)"
        ),
    )
    iteration_adjoint: str = Field(
        default="RecursiveCheckpointAdjoint",
        description=(
            "RecursiveCheckpointAdjoint | DirectAdjoint | OneStepAdjoint | KStepAdjoint | "
            "ImplicitAdjoint"
        ),
    )
    iteration_adjoint_steps: int = _count(MAX_NETWORK_ITERATIONS, "k of KStepAdjoint", default=3)
    adjoint_checkpoints: int | None = _count(
        MAX_NETWORK_ITERATIONS,
        "RecursiveCheckpointAdjoint: stored iterates of the iteration adjoint",
        default=None,
    )

    @model_validator(mode="after")
    def _odd_kernel(self) -> NetworkConfig:
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (centred convolutions), found {self.kernel}")
        if self.background_weight > 0 and not self.background:
            raise ValueError(
                f"background_weight = {self.background_weight} needs background = true "
                "(the background term uses the cycled background)"
            )
        return self


class TrainConfig(Section):
    """``dacli train``: (observations, truth) windows from files or the twin simulator
    ([simulate]); optax Adam."""

    observations: str | None = Field(
        default=None,
        description=(
            "training observations from a file (read as [observations] says: layout, names, dims); "
            "with truth"
        ),
    )
    truth: str | None = Field(
        default=None, description="the truth run those observations were taken from"
    )
    windows: int | None = _count(
        MAX_WINDOWS,
        default=None,
        description=(
            "training windows; default 200 from the simulator, or every window the files hold but "
            "the validation ones"
        ),
    )
    validation_windows: int = _count(
        MAX_WINDOWS, "held-out windows for the validation RMSE", default=20
    )
    epochs: int = _count(MAX_ITERATIONS, "passes over the training windows", default=10)
    batch_size: int = _count(MAX_WINDOWS, "windows per optimiser step", default=8)
    learning_rate: PositiveFloat = Field(
        default=1e-2,
        description=(
            "peak Adam learning rate: linear warm-up over warmup_steps, then cosine decay to 5% of "
            "it"
        ),
    )
    warmup_steps: int = _count(
        MAX_ITERATIONS, "optimiser steps of linear learning-rate warm-up", default=20, minimum=0
    )
    clip_norm: PositiveFloat = Field(
        default=1.0, description="gradients clipped to this global norm"
    )
    prior_loss_weight: float = Field(
        default=0.5, ge=0.0, description="weight of |x_t - Phi(x_t)|^2 in the loss"
    )
    background_error_std: PositiveFloat | None = Field(
        default=None,
        description=(
            "network.background: the training windows' background states are the true window-start "
            "states plus noise of this std, forecast over the window; default "
            "simulate.background_error_std, else the observations' error std"
        ),
    )
    directory: str = Field(
        default="training",
        description=(
            "per-epoch checkpoint, metrics and loss curve (relative to the working directory)"
        ),
    )
    seed: int | None = _count(
        MAX_SEED + 1,
        minimum=0,
        default=None,
        description=(
            "seed of the training truth run; default run.seed + 1, so that dacli simulate's twin "
            "is held-out data"
        ),
    )

    @model_validator(mode="after")
    def _batch_fits(self) -> TrainConfig:
        if (self.observations is None) != (self.truth is None):
            given, missing = (
                ("observations", "truth") if self.truth is None else ("truth", "observations")
            )
            raise ValueError(f"{given} is set but {missing} is not: training from files needs both")
        if self.windows is not None and self.batch_size > self.windows:
            raise ValueError(
                f"batch_size ({self.batch_size}) exceeds the number of training windows "
                f"({self.windows})"
            )
        return self


TUNABLE = ("background_std", "observation_std", "model_error_std", "length_scale")


class TuneConfig(Section):
    """``dacli tune``: fit a classical method's B, R, Q scales and B's length scale
    (docs/methods/tuning.md); ``dacli train`` on a classical method's configuration runs it too.
    """

    parameters: list[str] | None = Field(
        default=None,
        description=(
            "log factors tuned, from "
            + ", ".join(TUNABLE)
            + "; default background_std (+ length_scale when B is "
            "correlated, + model_error_std for weak4dvar)"
        ),
    )
    windows: int = _count(
        MAX_WINDOWS, "training windows (one batch: every step sees them all)", default=8
    )
    validation_windows: int = _count(
        MAX_WINDOWS, "held-out windows for the before/after RMSE", default=8
    )
    steps: int = _count(MAX_ITERATIONS, "optax Adam steps", default=40)
    learning_rate: PositiveFloat = Field(
        default=0.1, description="peak Adam step on the log factors"
    )
    background_error_length_scale: PositiveFloat | None = Field(
        default=None,
        description=(
            "correlation length of the twin's true background errors (kind as "
            "background.covariance); default uncorrelated"
        ),
    )
    output: str = Field(
        default="tuned.toml",
        description="the TOML snippet of tuned values (relative to the working directory)",
    )
    seed: int | None = _count(
        MAX_SEED + 1, "seed of the tuning truth run; default run.seed + 1", default=None, minimum=0
    )

    @field_validator("parameters")
    @classmethod
    def _known_parameters(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return names
        unknown = [name for name in names if name not in TUNABLE]
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(TUNABLE)}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"a name is listed twice in {names}")
        if not names:
            raise ValueError("empty: name at least one of " + ", ".join(TUNABLE))
        return names


class ChecksConfig(Section):
    """Tolerances of ``dacli check-adjoints``; unset ones default by precision
    (docs/check-adjoints.md: the checks and the defaults)."""

    dot_product: PositiveFloat | None = Field(
        default=None,
        description=(
            "dot-product tests (model, observation operator, B^1/2, Q^1/2, departures) and the "
            "symmetry of B and Q; default 1e-12 (float64) / 1e-4 (float32)"
        ),
    )
    tangent_linear: PositiveFloat | None = Field(
        default=None,
        description=(
            "tangent-linear test: the smallest relative error over a = 1 .. 1e-12; default "
            "1e-6 / 1e-2"
        ),
    )
    taylor: PositiveFloat | None = Field(
        default=None,
        description=(
            "Taylor test of the cost's gradient: the best |ratio - 1|; default 1e-4 / 1e-2"
        ),
    )
    linearity: PositiveFloat | None = Field(
        default=None, description=("linearity of the tangent-linear models; default 1e-12 / 1e-4")
    )
    finite_difference_dot_product: PositiveFloat | None = Field(
        default=None,
        description=(
            "dot-product test of a model without forward mode (a custom_vjp: its tangent-linear "
            "model by central finite differences); default 1e-6 / 1e-2"
        ),
    )
    exact_strategy: PositiveFloat | None = Field(
        default=None,
        description=(
            "forward_adjoint agreement: RecursiveCheckpointAdjoint's and ForwardMode's gradients "
            "against DirectAdjoint's; default 1e-10 / 1e-4"
        ),
    )
    backsolve: PositiveFloat | None = Field(
        default=None,
        description=(
            "BacksolveAdjoint (approximate by design): its agreement with DirectAdjoint and its "
            "departures dot product; default 1e-2 / 5e-2"
        ),
    )
    minimiser_strategy: PositiveFloat | None = Field(
        default=None,
        description=(
            "minimiser_adjoint agreement: the hyperparameter gradient through the minimisation "
            "against unrolled Gauss-Newton's; default 1e-4 / 1e-2"
        ),
    )
    configured_gradient: PositiveFloat | None = Field(
        default=None,
        description=(
            "configured-gradient check: the hyperparameter gradient through the analysis with the "
            "configured minimiser, max_steps, rtol, atol and minimiser_adjoint against central "
            "finite differences of the same solve; default 1e-2 / 5e-2"
        ),
    )


# Keys that were removed, with why: a config that still sets one is refused with this reason
# (dacli.config.loading reports it where it reports unknown keys), not told it is a typo.
REMOVED_KEYS: dict[str, str] = {
    "simulate.initial_perturbation": (
        "never used: the truth starts from the model's default state (seeded by run.seed), spun up "
        "for simulate.spinup"
    ),
}

# Keys that were renamed, with their new names (and why): a config that still sets one is refused
# saying the new name (dacli.config.loading, like REMOVED_KEYS). One meaning per word: "ODE solver"
# is the integrator, "inner solver" the incremental formulation's CG, "checkpoint" only a run's
# --resume file.
RENAMED_KEYS: dict[str, tuple[str, str]] = {
    "model.solver": ("model.ode_solver", "the ODE solver; 'solver' meant three things"),
    "method.checkpoints": (
        "method.adjoint_checkpoints",
        "RecursiveCheckpointAdjoint's stored steps; 'checkpoint' meant four things",
    ),
    "network.checkpoints": (
        "network.adjoint_checkpoints",
        "the iteration adjoint's stored iterates; 'checkpoint' meant four things",
    ),
    "network.checkpoint": (
        "network.file",
        "the trained network file; 'checkpoint' meant four things",
    ),
    "network.solver": (
        "network.update",
        "4DVarNet's learned update rule; 'solver' meant three things",
    ),
    "network.solver_adjoint": (
        "network.iteration_adjoint",
        "how training differentiates 4DVarNet's iterations; 'solver' meant three things",
    ),
    "network.solver_adjoint_steps": (
        "network.iteration_adjoint_steps",
        "k of KStepAdjoint across 4DVarNet's iterations; 'solver' meant three things",
    ),
}


def with_new_names(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """``[section]``'s ``values`` as written before a rename (a network file's header, say): the
    RENAMED_KEYS under their new names, the other keys as they are. Not for a config's own
    tables: loading refuses an old name there (the user renames it)."""
    prefix = section + "."
    new = {
        old.removeprefix(prefix): to.removeprefix(prefix)
        for old, (to, _) in RENAMED_KEYS.items()
        if old.startswith(prefix)
    }
    return {new.get(key, key): value for key, value in values.items()}


class DiagnosticsConfig(Section):
    """The run's time averages (``dacli assimilate``, ``dacli sweep``): per-window RMSE and spread
    averaged after a burn-in, each with a confidence interval corrected for autocorrelation
    (DAPPER's BurnIn and series_mean_with_conf; dacli.diagnostics.time_average)."""

    burn_in: float | None = Field(
        default=None,
        ge=0.0,
        description=(
            "model time from window.start (the unit of window.length) whose windows are left "
            "out of the time averages: a window starting before window.start + burn_in is "
            "spin-up; default: the first tenth of the windows run (rounded down)"
        ),
    )
    confidence: float = Field(
        default=0.95,
        gt=0.0,
        lt=1.0,
        description="level of the time averages' confidence intervals (Student t, AR(1)-corrected)",
    )


class Config(Section):
    """A whole configuration: one record per TOML table (docs/reference/configuration.md)."""

    run: RunConfig = Field(
        default_factory=RunConfig,
        description=("label, seed, precision, device, compilation cache, stopping and chunking"),
    )
    time: TimeConfig = Field(default_factory=TimeConfig, description="the model's time axis")
    model: ModelConfig = Field(description="the dynamics, its parameters, ODE solver and step")
    window: WindowConfig = Field(description="the assimilation windows' schedule")
    observations: ObservationsConfig = Field(description="the observation file and how to read it")
    background: BackgroundConfig = Field(description="the first background state and B")
    method: MethodConfig = Field(
        default_factory=MethodConfig,
        description=("the assimilation method, its minimiser and adjoints"),
    )
    output: OutputConfig = Field(default_factory=OutputConfig, description="the files written")
    truth: TruthConfig | None = Field(default=None, description="a truth run: RMSE diagnostics")
    simulate: SimulateConfig | None = Field(
        default=None,
        description=("the twin experiment of dacli simulate (and dacli train's training data)"),
    )
    checks: ChecksConfig | None = Field(
        default=None, description=("tolerances of dacli check-adjoints")
    )
    network: NetworkConfig | None = Field(
        default=None, description=("4DVarNet's architecture, learned update and iteration adjoint")
    )
    train: TrainConfig | None = Field(default=None, description="4DVarNet training (dacli train)")
    tune: TuneConfig | None = Field(
        default=None, description=("tuning a classical method's error scales (dacli tune)")
    )
    diagnostics: DiagnosticsConfig = Field(
        default_factory=DiagnosticsConfig,
        description="the time averages after a burn-in, with their confidence intervals",
    )

    @model_validator(mode="after")
    def _network_for_4dvarnet(self) -> Config:
        if self.method.kind == "4dvarnet" and self.network is None:
            raise ValueError(
                "method.kind = '4dvarnet' needs a [network] table (its network file and "
                "architecture)"
            )
        return self
