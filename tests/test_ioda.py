"""IODA v3 reader: missing values, QC and time filtering, model times, and refused layouts."""

from __future__ import annotations

import re

import netCDF4
import numpy as np
import pytest

from dacli.errors import DataError
from dacli.io.ioda import FLOAT_MISSING, INT32_MISSING, INT64_MISSING, read_ioda
from dacli.io.times import TimeAxis

T2020 = 1577836800  # 2020-01-01T00:00:00Z in seconds since 1970
DAY = 86400
AXIS = TimeAxis("days since 2020-01-01 00:00:00")
EPOCH_UNITS = "seconds since 1970-01-01T00:00:00Z"
NAN = np.nan


def write_ioda(path, variables: dict, dims: tuple[str, ...] = ("Location",), units=EPOCH_UNITS):
    """``{"Group/name": (values, dtype, fill_value or None)}`` -> an IODA v3 file along ``dims``."""
    with netCDF4.Dataset(path, "w") as nc:
        for dim in dims:
            nc.createDimension(dim, len(next(iter(variables.values()))[0]))
        for full_name, (values, dtype, fill) in variables.items():
            group_name, name = full_name.split("/")
            group = nc.groups.get(group_name) or nc.createGroup(group_name)
            variable = group.createVariable(name, dtype, dims, fill_value=fill)
            variable[:] = np.asarray(values, dtype=dtype)
            if name == "dateTime":
                variable.units = units
    return path


#  index:        0    1              2       3    4    5              6              7              8              9
DATETIME = [T2020, T2020 + DAY // 2, T2020 + DAY, T2020, T2020, INT64_MISSING, T2020 + 2 * DAY, T2020, T2020,
            T2020 + 9 * DAY // 4]
SST = [1.0, FLOAT_MISSING, -999.0, NAN, 5.0, 6.0, 7.0, 8.0, 9.0, 10.5]
SST_ERROR = [0.25, 0.5, 0.5, 0.5, 0.5, 0.5, FLOAT_MISSING, 0.75, 0.5, 1.5]
PREQC = [0, 0, 0, 0, 1, 0, 0, 0, INT32_MISSING, 0]
LATITUDE = [10.5, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, FLOAT_MISSING, 18.0, -20.25]
LONGITUDE = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0, 107.0, 108.0, -30.25]


def typical_variables() -> dict:
    return {
        "ObsValue/sst": (SST, "f4", np.float32(-999.0)),  # a _FillValue that is not the sentinel
        "ObsValue/ssh": (np.arange(10) * 0.5, "f4", np.float32(FLOAT_MISSING)),
        "ObsError/sst": (SST_ERROR, "f4", np.float32(FLOAT_MISSING)),
        "PreQC/sst": (PREQC, "i4", np.int32(INT32_MISSING)),
        "MetaData/dateTime": (DATETIME, "i8", None),  # no _FillValue: the sentinel alone marks it
        "MetaData/latitude": (LATITUDE, "f4", np.float32(FLOAT_MISSING)),
        "MetaData/longitude": (LONGITUDE, "f4", None),
    }


@pytest.fixture
def ioda_file(tmp_path):
    return write_ioda(tmp_path / "obs.nc", typical_variables())


def test_missing_values_qc_and_times(ioda_file):
    (sst,) = read_ioda(ioda_file, ["sst"], error_std=None, time_axis=AXIS)
    # dropped: 4 (PreQC 1), 5 (no dateTime), 8 (PreQC missing)
    assert sst.name == "sst"
    assert sst.rejected_time == 1 and sst.rejected_preqc == 2
    np.testing.assert_array_equal(sst.times, [0.0, 0.5, 1.0, 0.0, 2.0, 0.0, 2.25])
    np.testing.assert_array_equal(sst.values, [1.0, NAN, NAN, NAN, 7.0, 8.0, 10.5])
    np.testing.assert_array_equal(sst.errors, [0.25, 0.5, 0.5, 0.5, NAN, 0.75, 1.5])
    assert list(sst.coordinates) == ["latitude", "longitude"]
    np.testing.assert_array_equal(sst.coordinates["latitude"], [10.5, 11.0, 12.0, 13.0, 16.0, NAN, -20.25])
    np.testing.assert_array_equal(sst.coordinates["longitude"], [100.0, 101.0, 102.0, 103.0, 106.0, 107.0, -30.25])
    for array in (sst.times, sst.values, sst.errors, *sst.coordinates.values()):
        assert array.dtype == np.float64 and array.shape == (7,)


def test_accept_preqc_and_variable_without_preqc(ioda_file):
    sst, ssh = read_ioda(ioda_file, ["sst", "ssh"], error_std=2.0, accept_preqc=(0, 1), time_axis=AXIS)
    assert (sst.rejected_preqc, sst.rejected_time) == (1, 1)  # only the missing flag (8) is refused
    np.testing.assert_array_equal(sst.values, [1.0, NAN, NAN, NAN, 5.0, 7.0, 8.0, 10.5])
    assert (ssh.rejected_preqc, ssh.rejected_time) == (0, 1)  # no PreQC/ssh: all kept but 5
    np.testing.assert_array_equal(ssh.values, [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 3.5, 4.0, 4.5])
    np.testing.assert_array_equal(ssh.errors, np.full(9, 2.0))  # no ObsError/ssh: error_std


def test_missing_obs_error(tmp_path):
    variables = typical_variables()
    del variables["ObsError/sst"]
    path = write_ioda(tmp_path / "obs.nc", variables)
    (sst,) = read_ioda(path, ["sst"], error_std=0.5, time_axis=AXIS)
    np.testing.assert_array_equal(sst.errors, np.full(7, 0.5))
    with pytest.raises(DataError) as info:
        read_ioda(path, ["sst"], error_std=None)
    assert str(info.value) == (
        f"observations file {path}: no variable 'ObsError/sst' and observations.error_std is not set; "
        "add ObsError/sst (error standard deviations) to the file or set observations.error_std"
    )


def test_flat_v1_v2_layout_refused(tmp_path):
    path = tmp_path / "flat.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("nlocs", 3)
        for name in ("ssh@ObsValue", "ssh@ObsError", "latitude@MetaData", "longitude@MetaData"):
            nc.createVariable(name, "f4", ("nlocs",))[:] = [1.0, 2.0, 3.0]
    with pytest.raises(DataError) as info:
        read_ioda(path, ["ssh"], error_std=None)
    message = str(info.value)
    assert str(path) in message and "IODA v1/v2" in message and "ioda-upgrade" in message
    assert "IODA v3" in message and "ioda-upgrade-v2-to-v3" in message


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda v: v.pop("ObsValue/sst") and v.pop("ObsValue/ssh"),
         r"no group 'ObsValue'; groups found: MetaData, ObsError, PreQC"),
        (lambda v: None, r"no variable 'ObsValue/sla'; variables found: ssh, sst"),
        (lambda v: v.pop("MetaData/dateTime"), r"no 'MetaData/dateTime'"),
        (lambda v: v.pop("MetaData/latitude"),
         r"no variable 'MetaData/latitude'; variables found: dateTime, longitude"),
    ],
)
def test_missing_pieces(tmp_path, edit, pattern):
    variables = typical_variables()
    edit(variables)
    path = write_ioda(tmp_path / "obs.nc", variables)
    with pytest.raises(DataError, match=f"^observations file {re.escape(str(path))}: {pattern}"):
        read_ioda(path, ["sla" if "sla" in pattern else "sst"], error_std=1.0)


def test_wrong_dims_and_v2_dims(tmp_path):
    with netCDF4.Dataset(tmp_path / "2d.nc", "w") as nc:
        nc.createDimension("Location", 2)
        nc.createDimension("Channel", 3)
        nc.createGroup("ObsValue").createVariable("tb", "f4", ("Location", "Channel"))[:] = np.ones((2, 3))
        meta = nc.createGroup("MetaData")
        for name in ("dateTime", "latitude", "longitude"):
            meta.createVariable(name, "i8" if name == "dateTime" else "f4", ("Location",))[:] = [0, 1]
    with pytest.raises(DataError, match=r"variable 'ObsValue/tb' has dimensions \('Location', 'Channel'\); dacli "
                                        r"reads one Channel of it, chosen by the root variable 'Channel' .* the file "
                                        r"does not have$"):
        read_ioda(tmp_path / "2d.nc", ["tb"], error_std=1.0, select={"Channel": 1})
    path = write_ioda(tmp_path / "v2.nc", typical_variables(), dims=("nlocs",))
    with pytest.raises(DataError, match=r"'ObsValue/sst' has dimensions \('nlocs',\).*ioda-upgrade-v2-to-v3"):
        read_ioda(path, ["sst"], error_std=1.0)


def test_other_epoch_and_extra_coordinate(tmp_path):
    variables = {
        "ObsValue/sst": ([1.0, 2.0], "f4", None),
        "MetaData/dateTime": ([0, 3600], "i8", np.int64(INT64_MISSING)),
        "MetaData/depth": ([5.0, INT32_MISSING], "i4", None),
    }
    path = write_ioda(tmp_path / "obs.nc", variables, units="seconds since 2020-01-02T00:00:00Z")
    (sst,) = read_ioda(path, ["sst"], error_std=1.0, time_axis=TimeAxis("hours since 2020-01-01"),
                       coordinates=("depth",))
    np.testing.assert_allclose(sst.times, [24.0, 25.0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(sst.coordinates["depth"], [5.0, NAN])
    assert list(sst.coordinates) == ["depth"]


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match=r": no such file$"):
        read_ioda(tmp_path / "absent.nc", ["sst"], error_std=1.0)
    (tmp_path / "garbage.nc").write_bytes(b"not NetCDF\n" * 100)
    with pytest.raises(DataError, match=r"not a NetCDF file"):
        read_ioda(tmp_path / "garbage.nc", ["sst"], error_std=1.0)


@pytest.mark.parametrize(
    ("file_units", "axis", "expected"),
    [
        (EPOCH_UNITS, TimeAxis("hours since 1970-01-01"), [T2020 / 3600, T2020 / 3600 + 18]),
        (EPOCH_UNITS, TimeAxis("days since 2020-01-01 00:00:00"), [0.0, 0.75]),
        (EPOCH_UNITS, TimeAxis("minutes since 2020-01-01T01:00:00Z"), [-60.0, 1020.0]),
        (EPOCH_UNITS, TimeAxis("seconds since 2020-01-01T06:00:00+05:00"), [-3600.0, 61200.0]),
        (EPOCH_UNITS, TimeAxis("seconds since 1970-01-01T00:00:00Z"), [T2020, T2020 + 64800]),
        ("hours since 2019-12-31T00:00:00Z", TimeAxis("days since 2020-01-01"), [0.0, 0.75]),
    ],
)
def test_model_times_through_time_axis(tmp_path, file_units, axis, expected):
    """dateTime numbers in the file's units -> model times on the axis, to 1e-6 of a model unit."""
    numbers = [24, 42] if file_units.startswith("hours") else [T2020, T2020 + 64800]
    variables = {"ObsValue/sst": ([1.0, 2.0], "f4", None), "MetaData/dateTime": (numbers, "i8", None)}
    path = write_ioda(tmp_path / "obs.nc", variables, units=file_units)
    (sst,) = read_ioda(path, ["sst"], error_std=1.0, time_axis=axis, coordinates=())
    np.testing.assert_allclose(sst.times, expected, rtol=0, atol=1e-6)
    assert sst.coordinates == {}


@pytest.mark.parametrize("units", ["days", "fortnights since 2000-01-01", "days since", "days since yesterday",
                                   "days since 2000-13-01"])
def test_bad_datetime_units(tmp_path, units):
    path = write_ioda(tmp_path / "obs.nc", typical_variables(), units=units)
    with pytest.raises(DataError, match=rf"^observations file {re.escape(str(path))}: variable 'MetaData/dateTime'"):
        read_ioda(path, ["sst"], error_std=1.0, time_axis=AXIS)
