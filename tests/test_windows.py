"""Window schedules and observation packing (host-side, no JAX)."""

import numpy as np
import pytest

from dacli.errors import ConfigError, DataError
from dacli.io.interpolation import interpolation_weights
from dacli.io.observation_set import POINTS, ObservationSet
from dacli.models.base import StateLayout
from dacli.observations.windows import make_schedule, pack_observations


def observation_set(times, values=None, std=None):
    times = np.asarray(times, float)
    n = len(times)
    return ObservationSet(
        times=times, values=np.zeros(n) if values is None else np.asarray(values, float),
        std=np.ones(n) if std is None else np.asarray(std, float), index=np.zeros((n, POINTS), int),
        weight=np.tile([1.0] + [0.0] * (POINTS - 1), (n, 1)), variable=np.full(n, "x"), location=np.full((n, 1), np.nan),
    )


def test_schedule_covers_the_last_observation():
    schedule = make_schedule(0.0, 0.2, 0.2, 0.05, "newest", None, last_time=1.0)
    assert schedule.count == 5 and schedule.steps == 4 and schedule.steps_per_shift == 4
    schedule = make_schedule(0.0, 0.2, 0.2, 0.05, "newest", None, last_time=1.05)
    assert schedule.count == 6


def test_half_open_windows_and_newest_only():
    times = np.arange(1, 21) * 0.05  # 0.05 .. 1.0
    back_to_back = make_schedule(0.0, 0.2, 0.2, 0.05, "newest", None, times.max())
    packed = pack_observations(observation_set(times), back_to_back, None)
    assert packed.used.tolist() == [4, 4, 4, 4, 4] and packed.outside == 0
    # Window 1 covers (0, 0.2]: slots 1..4; the observation at 0.2 belongs to window 1, not 2.
    assert packed.slot[0, :4].tolist() == [1, 2, 3, 4]
    overlapping = make_schedule(0.0, 0.2, 0.05, 0.05, "newest", None, times.max())
    packed = pack_observations(observation_set(times), overlapping, None)
    assert overlapping.count == 17 and np.all(packed.used == 1)  # each obs once, in its newest window
    assert np.all(packed.slot[:, 0] == 4)  # ... at the window's end
    every = make_schedule(0.0, 0.2, 0.05, 0.05, "all", None, times.max())
    assert np.all(pack_observations(observation_set(times), every, None).used[3:] == 4)


def test_invalid_observations_are_rejected_and_never_packed():
    times = [0.05, 0.1, 0.15, 0.2]
    values = [1.0, np.nan, np.inf, 2.0]
    std = [1.0, 1.0, 1.0, 0.0]
    schedule = make_schedule(0.0, 0.2, 0.2, 0.05, "newest", None, 0.2)
    packed = pack_observations(observation_set(times, values, std), schedule, None)
    assert packed.used.tolist() == [1] and packed.rejected.tolist() == [3]
    assert np.all(np.isfinite(packed.values)) and np.all(packed.std > 0)


def test_off_grid_times_rejected_and_capacity_is_fixed():
    schedule = make_schedule(0.0, 0.2, 0.2, 0.05, "newest", 2, None)
    packed = pack_observations(observation_set([0.05, 0.07, 0.25, 0.3, 0.35]), schedule, 0.01)
    assert packed.used.tolist() == [1, 3] and packed.rejected.tolist() == [1, 0]
    assert packed.values.shape == (2, 8) and packed.mask.sum() == 4


def test_no_observation_in_any_window_is_a_data_error():
    schedule = make_schedule(0.0, 0.2, 0.2, 0.05, "newest", 2, None)
    with pytest.raises(DataError, match=r"no usable observation inside any assimilation window.*span \[5, 6\]"):
        pack_observations(observation_set([5.0, 6.0]), schedule, None)


def test_window_length_must_be_whole_steps():
    with pytest.raises(ConfigError, match="window.length: 0.23 is not a whole number of model steps"):
        make_schedule(0.0, 0.23, 0.23, 0.05, "newest", None, 1.0)


def test_linear_interpolation_weights_periodic_and_bounded():
    ring = StateLayout(("x",), "site", np.arange(8.0), periodic=True)
    index, weight, inside = interpolation_weights(np.array([2.25, 7.5, -0.5, 3.0]), ring)
    assert index[:, :2].tolist() == [[2, 3], [7, 0], [7, 0], [3, 4]]
    np.testing.assert_allclose(weight[:, :2], [[0.75, 0.25], [0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    assert np.all(weight[:, 2:] == 0)  # a 1-D row uses two of the POINTS slots
    assert inside.all()
    line = StateLayout(("x",), "site", np.arange(8.0), periodic=False)
    _, _, inside = interpolation_weights(np.array([-0.5, 0.0, 7.0, 7.5]), line)
    assert inside.tolist() == [False, True, True, False]


def test_validate_catches_what_assimilate_would_reject_before_computing():
    """validate opens everything assimilate opens: background.state size, the covariance file."""
    from pathlib import Path

    import dacli.config
    from dacli.run.validate import validate

    config = Path(__file__).resolve().parents[1] / "configs" / "lorenz96.toml"
    assert validate(dacli.config.load(config, [])).state_size == 40
    wrong_size = dacli.config.load(config, ['background={state=[1.0, 2.0]}'])
    with pytest.raises(ConfigError, match="background.state: expected 40 values .* found 2"):
        validate(wrong_size)
    missing_matrix = dacli.config.load(
        config, ['background.covariance={kind="matrix", path="/nonexistent/B.nc"}'])
    with pytest.raises(DataError, match="covariance file /nonexistent/B.nc: no such file"):
        validate(missing_matrix)
