"""2-D fields on the host side: N-D state layouts, gridded / scattered / IODA observations of a
2-D model, satellite-track geometry, and B on a doubly periodic grid (FFT) through the builder.

Everything here is exact: observation rows are checked against the grid values they must read,
track points against their line, the FFT B against the dense matrix of the same correlation.
"""

from __future__ import annotations

import math

import netCDF4
import numpy as np
import pytest
import xarray as xr

from dacli.config.schema import ObservationsConfig
from dacli.errors import DataError
from dacli.io.observations import read_observations
from dacli.io.states import read_states, state_dataset
from dacli.io.times import TimeAxis
from dacli.models.base import GridAxis, StateLayout
from dacli.models.qg import QuasiGeostrophic
from dacli.observations.tracks import cycle_stride, track_positions

LAT = np.array([30.0, 31.0, 32.0, 33.0])
LON = np.array([-70.0, -69.5, -69.0, -68.5, -68.0])


def latlon_layout(periodic=False) -> StateLayout:
    return StateLayout(("ssh", "sst"), units="m", axes=(
        GridAxis("lat", LAT, "degrees_north", periodic, "latitude", "Y"),
        GridAxis("lon", LON, "degrees_east", periodic, "longitude", "X")))


def field(lat, lon, a=0.1, b=0.3, c=-0.2, d=0.05):
    """A bilinear field: bilinear interpolation reproduces it exactly."""
    return a + b * (lat - 30) + c * (lon + 70) + d * (lat - 30) * (lon + 70)


def test_layout_split_join_round_trip_in_c_order():
    layout = latlon_layout()
    assert layout.dims == ("lat", "lon") and layout.shape == (4, 5) and layout.size == 40
    flat = np.arange(2 * 40.0).reshape(2, 40)
    fields = layout.split(flat)
    assert fields["ssh"].shape == (2, 4, 5) and fields["sst"][1, 2, 3] == 40 + 20 + 2 * 5 + 3
    np.testing.assert_array_equal(layout.join(fields), flat)
    assert layout.index("sst", 7) == 27
    one_d = StateLayout(("u",), "site", np.arange(6.0), periodic=True)  # the 1-D shorthand still works
    assert one_d.dims == ("site",) and one_d.axes[0].periodic and one_d.split(np.arange(6.0))["u"].shape == (6,)


def test_gridded_2d_observations_with_descending_latitudes_and_mapped_names(tmp_path):
    layout = latlon_layout()
    lat2, lon2 = np.meshgrid(LAT, LON, indexing="ij")
    values = np.stack([field(lat2, lon2), 2 * field(lat2, lon2)])  # two times
    values[1, 2, 3] = np.nan
    file = xr.Dataset({"zos": (("valid_time", "latitude", "longitude"), values[:, ::-1, :])},
                      coords={"valid_time": ("valid_time", [0.25, 0.5], {"units": "days since 2000-01-01"}),
                              "latitude": LAT[::-1], "longitude": LON})
    file.to_netcdf(tmp_path / "obs.nc")
    config = ObservationsConfig(path=str(tmp_path / "obs.nc"), variables=["ssh"], names={"ssh": "zos"},
                                dims={"time": "valid_time", "lat": "latitude", "lon": "longitude"}, error_std=0.1)
    observations = read_observations(config, layout, TimeAxis())
    assert len(observations) == 40
    state = np.concatenate([values[0].ravel(), np.zeros(20)])
    read = np.sum(state[observations.index[:20]] * observations.weight[:20], axis=1)
    np.testing.assert_array_equal(read, observations.values[:20])  # each row reads its own grid point
    np.testing.assert_array_equal(observations.location[:5], np.stack([np.full(5, 30.0), LON], -1))
    assert np.isnan(observations.values[20 + 2 * 5 + 3]) and observations.valid.sum() == 39
    file.assign_coords(latitude=LAT[::-1] + 0.5).to_netcdf(tmp_path / "shifted.nc")
    with pytest.raises(DataError, match=r"coordinate 'latitude' \(model axis 'lat'\) runs 33.5 .. 30.5 \(4 values\); the model grid's 'lat' runs 30 .. 33"):
        read_observations(config.model_copy(update={"path": str(tmp_path / "shifted.nc")}), layout, TimeAxis())


def test_scattered_2d_observations_are_bilinear_and_outside_points_dropped(tmp_path):
    layout = latlon_layout()
    lat = np.array([30.5, 32.25, 33.0, 34.0, 31.0])
    lon = np.array([-69.75, -68.2, -70.0, -69.0, -67.0])  # 4th: north of the grid; 5th: east of it
    xr.Dataset({"sst": ("obs", field(lat, lon)), "time": ("obs", np.full(5, 0.25), {"units": "days since 2000-01-01"}), "lat": ("obs", lat),
                "lon": ("obs", lon)}).to_netcdf(tmp_path / "points.nc")
    config = ObservationsConfig(path=str(tmp_path / "points.nc"), layout="scattered", variables=["sst"], error_std=0.2)
    observations = read_observations(config, layout, TimeAxis())
    assert len(observations) == 3 and observations.rejected_outside_domain == 2
    lat2, lon2 = np.meshgrid(LAT, LON, indexing="ij")
    state = np.concatenate([np.zeros(20), field(lat2, lon2).ravel()])
    model_equivalent = np.sum(state[observations.index] * observations.weight, axis=1)
    np.testing.assert_allclose(model_equivalent, field(lat[:3], lon[:3]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(observations.location, np.stack([lat[:3], lon[:3]], -1))


def test_ioda_observations_of_a_2d_model_through_the_reader(tmp_path):
    """IODA v3 -> model times via [time] units, lat/lon -> bilinear rows, PreQC and sentinels."""
    from dacli.io.ioda import FLOAT_MISSING

    layout = latlon_layout()
    lat = np.array([30.5, 31.5, 32.5, 30.0, 40.0])
    lon = np.array([-69.0, -68.5, -69.5, -70.0, -69.0])  # the last is north of the domain
    seconds = 1577836800 + np.array([0, 21600, 43200, 86400, 0])  # 2020-01-01 + 0, 6, 12, 24 h
    values = field(lat, lon)
    values[2] = FLOAT_MISSING
    with netCDF4.Dataset(tmp_path / "ioda.nc", "w") as nc:
        nc.createDimension("Location", 5)
        for group, name, data, dtype in (("ObsValue", "sea_surface_temperature", values, "f4"),
                                         ("ObsError", "sea_surface_temperature", np.full(5, 0.3), "f4"),
                                         ("PreQC", "sea_surface_temperature", [0, 0, 0, 1, 0], "i4"),
                                         ("MetaData", "latitude", lat, "f4"), ("MetaData", "longitude", lon, "f4"),
                                         ("MetaData", "dateTime", seconds, "i8")):
            group = nc.groups.get(group) or nc.createGroup(group)
            variable = group.createVariable(name, dtype, ("Location",))
            variable[:] = np.asarray(data)
            if name == "dateTime":
                variable.units = "seconds since 1970-01-01T00:00:00Z"
    config = ObservationsConfig(path=str(tmp_path / "ioda.nc"), layout="ioda", variables=["sst"],
                                names={"sst": "sea_surface_temperature"})
    observations = read_observations(config, layout, TimeAxis("days since 2020-01-01 00:00:00"))
    assert observations.rejected_preqc == 1 and observations.rejected_outside_domain == 1
    np.testing.assert_allclose(observations.times, [0.0, 0.25, 0.5])
    assert observations.valid.tolist() == [True, True, False]
    lat2, lon2 = np.meshgrid(LAT, LON, indexing="ij")
    state = np.concatenate([np.zeros(20), field(lat2, lon2).ravel()])
    equivalent = np.sum(state[observations.index[:2]] * observations.weight[:2], axis=1)
    np.testing.assert_allclose(equivalent, observations.values[:2], rtol=1e-6)  # float32 file values
    # Windows are half-open, (start, end]: with one window (0, 0.5] the observation at t = 0 is
    # outside it; the one at 0.25 is used; the missing one at 0.5 is in the window but rejected.
    from dacli.observations.windows import make_schedule, pack_observations

    packed = pack_observations(observations, make_schedule(0.0, 0.5, 0.5, 0.25, "newest", 1, None), None)
    assert (packed.used.tolist(), packed.rejected.tolist(), packed.outside) == ([1], [1], 1)
    np.testing.assert_allclose(packed.values[0, packed.mask[0]], observations.values[1:2])


def test_state_files_of_a_2d_model_are_cf_and_round_trip(tmp_path):
    layout = QuasiGeostrophic(nx=8, ny=8, coordinates="latlon").layout()
    states = np.random.default_rng(0).normal(size=(3, 64))
    state_dataset(layout, np.arange(3.0), states, TimeAxis("days since 2020-01-01")).to_netcdf(tmp_path / "s.nc")
    with xr.open_dataset(tmp_path / "s.nc", decode_times=False) as ds:
        assert ds["ssh"].dims == ("time", "lat", "lon")
        assert ds["lat"].attrs["standard_name"] == "latitude" and ds["lat"].attrs["units"] == "degrees_north"
        assert ds["lon"].attrs["axis"] == "X" and ds["ssh"].attrs["units"] == "m"
        assert ds["ssh"].attrs["standard_name"] == "sea_surface_height_above_mean_sea_level"
    times, read = read_states(tmp_path / "s.nc", layout, "truth", TimeAxis("days since 2020-01-01"))
    np.testing.assert_array_equal(read, states)
    with pytest.raises(DataError, match=r"coordinate 'lat' runs .* \(8 values\); the model grid's 'lat' runs"):
        read_states(tmp_path / "s.nc", QuasiGeostrophic(nx=16, ny=8, coordinates="latlon").layout(), "truth",
                    TimeAxis("days since 2020-01-01"))


def test_latlon_box_spacing_and_beta_plane_parameters():
    model = QuasiGeostrophic(nx=16, length_x=1.6e6, coordinates="latlon", center_lat=45.0, center_lon=10.0)
    lat, lon = model.layout().axes
    metres_per_degree = 6.371e6 * math.pi / 180
    assert lat.spacing == pytest.approx(1e5 / metres_per_degree)
    assert lon.spacing == pytest.approx(1e5 / (metres_per_degree * math.cos(math.radians(45.0))))
    assert np.mean(lat.values) == pytest.approx(45.0) and np.mean(lon.values) == pytest.approx(10.0)
    assert model.coriolis == pytest.approx(2 * 7.2921e-5 * math.sin(math.pi / 4))
    assert model.beta == pytest.approx(2 * 7.2921e-5 * math.cos(math.pi / 4) / 6.371e6)


def test_satellite_tracks_lie_on_straight_lines_and_repeat():
    axes = (GridAxis("y", np.arange(32) * 10.0, periodic=True), GridAxis("x", np.arange(40) * 10.0, periodic=True))
    per_cycle = 12
    assert math.gcd(cycle_stride(per_cycle), per_cycle) == 1
    ascending, descending = (track_positions(k, axes, 60.0, per_cycle, 5.0) for k in (0, 1))
    for track, sign in ((ascending, 1), (descending, -1)):
        assert len(track) == int(320 / math.sin(math.radians(60)) / 5)
        assert np.all((track[:, 0] >= 0) & (track[:, 0] <= 320) & (track[:, 1] >= 0) & (track[:, 1] < 400))
        dy, dx = np.diff(track[:, 0]), np.mod(np.diff(track[:, 1]), 400)  # x wraps round the domain
        np.testing.assert_allclose(np.degrees(np.arctan2(sign * dy, dx)), 60.0)
        np.testing.assert_allclose(np.hypot(dy, dx), 5.0)
    np.testing.assert_array_equal(track_positions(3, axes, 60.0, per_cycle, 5.0),
                                  track_positions(3 + 2 * per_cycle, axes, 60.0, per_cycle, 5.0))
    crossings = {round(float(track_positions(k, axes, 60.0, per_cycle, 5.0)[0, 1]), 6) for k in range(per_cycle)}
    assert len(crossings) == per_cycle  # every pass of a cycle crosses the domain somewhere else


def test_fft_background_covariance_equals_the_dense_block_diagonal_matrix():
    from dacli.covariances.background import background_sqrt_operator
    from dacli.covariances.spectral import correlation_function

    layout = StateLayout(("a", "b"), axes=(GridAxis("y", np.arange(6) * 2.0, periodic=True),
                                          GridAxis("x", np.arange(8) * 1.5, periodic=True)))
    from dacli.covariances.spectral import correlation_spectrum

    assert correlation_spectrum(6, 8, 2.0, 1.5, 1.5, "matern32").min() > 0  # nothing clipped: exact
    root = background_sqrt_operator("matern32", [2.0, 0.5], layout, 1.5, np.float64)
    columns = np.stack([np.asarray(root.mv(e)) for e in np.eye(layout.size)], axis=1)
    covariance = columns @ columns.T
    y, x = np.meshgrid(np.arange(6) * 2.0, np.arange(8) * 1.5, indexing="ij")
    dy = np.abs(y.ravel()[:, None] - y.ravel()[None, :])
    dx = np.abs(x.ravel()[:, None] - x.ravel()[None, :])
    distance = np.hypot(np.minimum(dy, 12.0 - dy), np.minimum(dx, 12.0 - dx))
    correlation = correlation_function(distance, 1.5, "matern32")
    sigma = np.repeat([2.0, 0.5], 48)
    expected = sigma[:, None] * np.kron(np.eye(2), correlation) * sigma[None, :]
    # The Matern-3/2 spectrum sampled on this torus is non-negative, so equality is exact.
    np.testing.assert_allclose(covariance, expected, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="needs a doubly periodic grid"):
        background_sqrt_operator("gaussian", 1.0, latlon_layout(periodic=False), 1.0, np.float64)
