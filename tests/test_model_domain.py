"""The model domain of observation locations: only axes that truly wrap take a location round.

The Lorenz-96 ring, a doubly periodic QG box in metres and a global longitude wrap; a regional
lat-lon box (the QG model with ``coordinates = "latlon"``, periodic dynamics and all) and any
latitude do not: an observation beyond their bounds is elsewhere on the Earth and is dropped.
Longitudes are compared modulo 360, latitudes never.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dacli.build.problem import build_dynamics
from dacli.config.schema import ModelConfig
from dacli.io.interpolation import interpolation_weights
from dacli.models.base import GridAxis, StateLayout
from dacli.models.qg import METRES_PER_DEGREE, QuasiGeostrophic
from dacli.observations.tracks import axis_extent, track_positions

CENTER_LAT, CENTER_LON = 38.0, -60.0


def regional_box() -> QuasiGeostrophic:
    """64 x 64 cells of 20 km centred at 38N 60W: about 11.5 x 14.6 degrees, doubly periodic dynamics."""
    return QuasiGeostrophic(nx=64, length_x=64 * 20e3, coordinates="latlon", center_lat=CENTER_LAT,
                            center_lon=CENTER_LON)


def global_layout(first_lon: float) -> StateLayout:
    """A global 2.5-degree grid: latitude -88.75..88.75, longitude first_lon .. first_lon + 357.5 (periodic)."""
    lat = GridAxis("lat", -88.75 + 2.5 * np.arange(72), "degrees_north", True, "latitude", "Y")
    lon = GridAxis("lon", first_lon + 2.5 * np.arange(144), "degrees_east", True, "longitude", "X")
    return StateLayout(("t",), axes=(lat, lon))


def corners(index: np.ndarray, weight: np.ndarray) -> dict[int, float]:
    """{flat grid index: weight} of one interpolation row, zero weights left out."""
    return {int(i): float(w) for i, w in zip(index, weight) if w != 0.0}


# --- GridAxis.wraps -------------------------------------------------------------------------------


def test_lorenz96_ring_wraps():
    ring = build_dynamics(ModelConfig(name="lorenz96", parameters={"n": 40})).layout().axes
    assert len(ring) == 1 and ring[0].periodic and ring[0].wraps


def test_qg_box_in_metres_wraps_but_the_regional_latlon_box_does_not():
    y, x = QuasiGeostrophic(nx=16, length_x=1.6e6).layout().axes
    assert y.wraps and x.wraps
    lat, lon = regional_box().layout().axes
    assert lat.periodic and lon.periodic  # the dynamics (and the FFT covariances) stay doubly periodic
    assert not lat.wraps and not lon.wraps


def test_longitude_wraps_only_when_periodic_and_global():
    values = 2.5 * np.arange(144)  # 0 .. 357.5
    assert GridAxis("lon", values, "degrees_east", True, "longitude").wraps
    assert GridAxis("lon", values - 180.0, "degree_E", True).wraps  # recognised by its units alone
    assert GridAxis("lon", values, "degrees", True, "longitude").wraps  # or by its standard name alone
    assert not GridAxis("lon", values, "degrees_east", False, "longitude").wraps  # global but not periodic
    assert not GridAxis("lon", values[:-1], "degrees_east", True, "longitude").wraps  # 357.5 degrees: not global
    assert not GridAxis("lon", np.linspace(-72.0, -48.0, 64), "degrees_east", True, "longitude").wraps


def test_latitude_never_wraps():
    assert not GridAxis("lat", -90.0 + 2.5 * np.arange(144), "degrees_north", True, "latitude", "Y").wraps
    assert not GridAxis("lat", 2.5 * np.arange(144), "degreesN", True, cf_axis="Y").wraps
    assert not GridAxis("lat", 2.5 * np.arange(144), "degrees", True, "latitude", "Y").wraps
    assert GridAxis("s", 2.5 * np.arange(144), "degrees", True).wraps  # degrees of something else: as periodic


# --- interpolation on the regional box ------------------------------------------------------------


def test_observation_at_the_box_centre_is_inside():
    layout = regional_box().layout()
    index, weight, inside = interpolation_weights(np.array([[CENTER_LAT, CENTER_LON]]), layout)
    assert inside.tolist() == [True]
    np.testing.assert_allclose(weight.sum(axis=1), 1.0)
    # 64 points, centred: the centre lies halfway between rows 31, 32 and columns 31, 32.
    assert corners(index[0], weight[0]) == pytest.approx({31 * 64 + 31: 0.25, 31 * 64 + 32: 0.25,
                                                          32 * 64 + 31: 0.25, 32 * 64 + 32: 0.25})


def test_observations_beyond_the_regional_box_are_outside():
    lat, lon = regional_box().layout().axes
    east_300km = lon.values[-1] + 300e3 / (METRES_PER_DEGREE * math.cos(math.radians(CENTER_LAT)))
    positions = np.array([
        [CENTER_LAT, east_300km],  # 300 km east of the box
        [CENTER_LAT, lon.values[-1] + 0.5 * lon.spacing],  # in what used to be the wrap-around cell
        [lat.values[0] - 0.5 * lat.spacing, CENTER_LON],  # just south of the box
        [48.85, 2.35],  # Paris
        [-33.9, 151.2],  # Sydney
        [CENTER_LAT, 100.0],  # the box's latitude, another continent
        [CENTER_LAT + 360.0, CENTER_LON],  # latitude is never taken modulo 360
        [lat.values[-1], lon.values[-1]],  # the last grid point itself: inside
    ])
    index, weight, inside = interpolation_weights(positions, regional_box().layout())
    assert inside.tolist() == [False] * 7 + [True]
    assert weight[-1, np.argmax(weight[-1])] == pytest.approx(1.0) and index[-1, np.argmax(weight[-1])] == 64 * 64 - 1


def test_longitude_in_another_convention_lands_in_the_regional_box():
    layout = regional_box().layout()
    index, weight, inside = interpolation_weights(np.array([[39.0, -60.0], [39.0, 300.0], [39.0, -420.0]]), layout)
    assert inside.all()
    np.testing.assert_array_equal(index[1], index[0])
    np.testing.assert_allclose(weight[1], weight[0], atol=1e-12)
    np.testing.assert_array_equal(index[2], index[0])
    np.testing.assert_allclose(weight[2], weight[0], atol=1e-12)


# --- interpolation on wrapping axes -----------------------------------------------------------------


def test_global_longitude_interpolates_across_the_date_line():
    layout = global_layout(0.0)
    row = 40  # latitude 11.25, on a grid row
    positions = np.array([[11.25, 358.75], [11.25, -1.25], [11.25, 350.0], [11.25, -10.0]])
    index, weight, inside = interpolation_weights(positions, layout)
    assert inside.all()
    assert corners(index[0], weight[0]) == {row * 144 + 143: 0.5, row * 144 + 0: 0.5}
    assert corners(index[1], weight[1]) == {row * 144 + 143: 0.5, row * 144 + 0: 0.5}
    assert corners(index[2], weight[2]) == {row * 144 + 140: 1.0}  # 350 = column 140
    assert corners(index[3], weight[3]) == corners(index[2], weight[2])  # -10 is 350


def test_global_longitude_from_minus_180_reads_0_to_360_positions():
    layout = global_layout(-180.0)
    row = 40
    index, weight, inside = interpolation_weights(np.array([[11.25, 350.0], [11.25, 178.75]]), layout)
    assert inside.all()
    assert corners(index[0], weight[0]) == {row * 144 + 68: 1.0}  # 350 = -10 = column 68
    assert corners(index[1], weight[1]) == {row * 144 + 143: 0.5, row * 144 + 0: 0.5}


def test_latitude_of_a_global_grid_is_bounded():
    _, _, inside = interpolation_weights(np.array([[89.5, 0.0], [-89.5, 0.0], [88.75, 0.0], [-88.75 + 360.0, 0.0]]),
                                         global_layout(0.0))
    assert inside.tolist() == [False, False, True, False]


def test_lorenz96_ring_position_past_the_end_is_the_start():
    layout = build_dynamics(ModelConfig(name="lorenz96", parameters={"n": 40})).layout()
    index, weight, inside = interpolation_weights(np.array([40.25, 0.25, -39.75]), layout)
    assert inside.all()
    assert corners(index[0], weight[0]) == {0: 0.75, 1: 0.25}
    np.testing.assert_array_equal(index[1], index[0])
    np.testing.assert_array_equal(index[2], index[0])
    np.testing.assert_allclose(weight[1:], weight[[0, 0]], atol=1e-12)


# --- simulated locations --------------------------------------------------------------------------


def test_axis_extent_covers_the_wrap_around_cell_only_on_axes_that_wrap():
    lat, lon = regional_box().layout().axes
    assert axis_extent(lon) == (lon.values[0], pytest.approx(lon.values[-1] - lon.values[0]))
    assert axis_extent(lat) == (lat.values[0], pytest.approx(lat.values[-1] - lat.values[0]))
    _, x = QuasiGeostrophic(nx=16, length_x=1.6e6).layout().axes
    assert axis_extent(x) == (0.0, pytest.approx(1.6e6))


@pytest.mark.parametrize("angle", [60.0, 30.0, 85.0])
def test_simulated_tracks_lie_inside_the_regional_box(angle):
    layout = regional_box().layout()
    lat, lon = layout.axes
    per_cycle = 10  # as dacli.run.simulate: repeat_period / obs_interval * tracks_per_time
    spacing = min(abs(axis.spacing) for axis in layout.axes)
    positions = np.concatenate([track_positions(k, layout.axes, angle, per_cycle, spacing)
                                for k in range(2 * per_cycle)])
    assert len(positions) > 10 * 64
    assert lat.values[0] <= positions[:, 0].min() and positions[:, 0].max() <= lat.values[-1]
    assert lon.values[0] <= positions[:, 1].min() and positions[:, 1].max() <= lon.values[-1]
    _, weight, inside = interpolation_weights(positions, layout)
    assert inside.all()
    np.testing.assert_allclose(weight.sum(axis=1), 1.0)
    # The passes cross the whole box, its western and eastern quarters included.
    quarter = 0.25 * (lon.values[-1] - lon.values[0])
    assert np.sum(positions[:, 1] < lon.values[0] + quarter) > 0.1 * len(positions)
    assert np.sum(positions[:, 1] > lon.values[-1] - quarter) > 0.1 * len(positions)
