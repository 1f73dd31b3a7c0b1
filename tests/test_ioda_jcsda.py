"""IODA v3 as JCSDA's ioda-converters write it: read (times, units, channels, PreQC) and written back."""

from __future__ import annotations

import logging
import re

import netCDF4
import numpy as np
import pytest

from dacli.errors import ConfigError, DataError
from dacli.io.ioda import (
    EPOCH_UNITS,
    FLOAT_MISSING,
    INT32_MISSING,
    INT64_MISSING,
    ioda_tree,
    read_ioda,
)
from dacli.io.netcdf import write_netcdf_atomically
from dacli.io.times import TimeAxis

T2020 = 1577836800  # 2020-01-01T00:00:00Z in seconds since 1970
HOUR, DAY = 3600, 86400
AXIS = TimeAxis("days since 2020-01-01 00:00:00")


def jcsda_file(path, n: int, variables: dict, *, date_time=None, date_time_attrs: dict | None = None,
               date_time_fill=INT64_MISSING, layout_attrs: bool = True, location_variable: bool = True,
               channels=None, metadata: dict | None = None):
    """A file laid out like ioda-converters' output (root Location dimension and variable, _ioda_layout
    attributes, string attributes, int64 dateTime and float32 values with IODA's _FillValues).

    ``variables``: ``{"Group/name": (values, units or None[, dims])}``; int32 for PreQC, float32 otherwise;
    dims: (Location,) or, for 2-D values, (Location, Channel). ``date_time``: seconds since 1970 (None: no dateTime).
    """
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("Location", n)
        if location_variable:
            location = nc.createVariable("Location", "i4", ("Location",))
            location[:] = np.arange(n, dtype=np.int32)
            location.suggested_chunk_dim = np.int64(100)
        if channels is not None:
            nc.createDimension("Channel", len(channels))
            nc.createVariable("Channel", "i4", ("Channel",))[:] = np.asarray(channels, np.int32)
        if layout_attrs:
            nc.setncattr_string("_ioda_layout", "ObsGroup")
            nc.setncattr("_ioda_layout_version", np.int32(3))
        nc.setncattr_string("converter", "test_ioda_jcsda.py (like ioda-converters)")
        meta = nc.createGroup("MetaData")
        if date_time is not None:
            variable = meta.createVariable("dateTime", "i8", ("Location",), fill_value=date_time_fill)
            variable[:] = np.asarray(date_time, np.int64)
            for key, value in ({"units": EPOCH_UNITS} if date_time_attrs is None else date_time_attrs).items():
                variable.setncattr_string(key, value)
        everything = {
            "MetaData/latitude": (np.linspace(-10.0, 10.0, n), "degrees_north"),
            "MetaData/longitude": (np.linspace(100.0, 120.0, n), "degrees_east"),
            **(metadata or {}), **variables,
        }
        for full_name, (values, units, *dims) in everything.items():
            group_name, name = full_name.split("/")
            group = nc.groups.get(group_name) or nc.createGroup(group_name)
            values = np.asarray(values)
            dims = dims[0] if dims else ("Location", "Channel")[:values.ndim]
            if group_name == "PreQC":
                variable = group.createVariable(name, "i4", dims, fill_value=np.int32(INT32_MISSING))
                variable[:] = values.astype(np.int32)
            else:
                variable = group.createVariable(name, "f4", dims, fill_value=np.float32(FLOAT_MISSING))
                variable[:] = values.astype(np.float32)
            if units is not None:
                variable.setncattr_string("units", units)
    return path


# 2020-01-01T00Z, 2020-01-02T06Z, missing, 2020-01-03T12Z, 2020-01-01T00:00:01Z
DATES = [T2020, T2020 + DAY + 6 * HOUR, INT64_MISSING, T2020 + 2 * DAY + 12 * HOUR, T2020 + 1]
DATES_DAYS = [0.0, 1.25, 2.5, 1 / DAY]


@pytest.mark.parametrize("location_variable", [True, False])
@pytest.mark.parametrize("fill", [INT64_MISSING, -1, None])
def test_datetimes_to_model_times_and_missing_dropped(tmp_path, location_variable, fill):
    """Known dates -> exact model days; the missing dateTime (IODA's _FillValue, another declared _FillValue
    or the bare sentinel without _FillValue) is dropped and counted; the root Location variable is optional."""
    dates = [d if d != INT64_MISSING or fill is None else fill for d in DATES]
    path = jcsda_file(tmp_path / "sst.nc", 5, {"ObsValue/seaSurfaceTemperature": ([290.0, 291, 292, 293, 294], "K"),
                                               "ObsError/seaSurfaceTemperature": ([0.5] * 5, "K")},
                      date_time=dates, date_time_fill=fill, location_variable=location_variable)
    (sst,) = read_ioda(path, ["seaSurfaceTemperature"], error_std=None, time_axis=AXIS, units="K")
    np.testing.assert_allclose(sst.times, DATES_DAYS, rtol=0, atol=1e-9)
    assert sst.rejected_time == 1 and sst.rejected_preqc == 0
    np.testing.assert_array_equal(sst.values, [290.0, 291, 293, 294])
    np.testing.assert_allclose(sst.coordinates["latitude"], [-10.0, -5.0, 5.0, 10.0])
    assert len(sst.notes) == 1 and "'MetaData/dateTime' ('seconds since 1970-01-01T00:00:00Z'" in sst.notes[0]
    assert str(path) not in sst.notes[0]  # the caller names the file


def test_datetimes_in_hours_and_the_model_axis_in_hours(tmp_path):
    path = jcsda_file(tmp_path / "obs.nc", 5, {"ObsValue/sst": ([1.0] * 5, "K")}, date_time=DATES)
    (sst,) = read_ioda(path, ["sst"], error_std=1.0, time_axis=TimeAxis("hours since 2019-12-31T18:00:00Z"))
    np.testing.assert_allclose(sst.times, [6.0, 36.0, 66.0, 6.0 + 1 / HOUR], rtol=0, atol=1e-9)
    (same,) = read_ioda(path, ["sst"], error_std=1.0, time_axis=TimeAxis(EPOCH_UNITS))
    np.testing.assert_array_equal(same.times, np.array(DATES)[[0, 1, 3, 4]])
    assert same.notes == ()  # already on the model's axis: no conversion, no note


def test_datetime_without_units(tmp_path):
    """IODA's default epoch is assumed only in a file that declares the IODA layout."""
    path = jcsda_file(tmp_path / "ioda.nc", 5, {"ObsValue/sst": ([1.0] * 5, "K")}, date_time=DATES,
                      date_time_attrs={})
    (sst,) = read_ioda(path, ["sst"], error_std=1.0, time_axis=AXIS)
    np.testing.assert_allclose(sst.times, DATES_DAYS, rtol=0, atol=1e-9)
    path = jcsda_file(tmp_path / "bare.nc", 5, {"ObsValue/sst": ([1.0] * 5, "K")}, date_time=DATES,
                      date_time_attrs={}, layout_attrs=False)
    with pytest.raises(DataError) as info:
        read_ioda(path, ["sst"], error_std=1.0, time_axis=AXIS)
    assert str(info.value) == (
        f"observations file {path}: variable 'MetaData/dateTime' has no 'units' attribute, and the file does not "
        "declare the IODA layout (no root attribute '_ioda_layout'), so IODA's default "
        "'seconds since 1970-01-01T00:00:00Z' cannot be assumed; expected units such as "
        "'seconds since 1970-01-01T00:00:00Z': add them to the file")


def test_datetime_calendar_attribute_and_unconvertible_calendar(tmp_path):
    path = jcsda_file(tmp_path / "julian.nc", 5, {"ObsValue/sst": ([1.0] * 5, "K")}, date_time=DATES,
                      date_time_attrs={"units": EPOCH_UNITS, "calendar": "julian"})
    (sst,) = read_ioda(path, ["sst"], error_std=1.0, time_axis=AXIS)
    # 1970-01-01 in the julian calendar is 1970-01-14 in the standard one: 13 days later
    np.testing.assert_allclose(sst.times, np.array(DATES_DAYS) + 13, rtol=0, atol=1e-9)
    with pytest.raises(DataError, match=rf"^observations file {re.escape(str(path))}: variable 'MetaData/dateTime'"
                                        r": is in the 'julian' calendar, the model's time axis in the 'noleap'"):
        read_ioda(path, ["sst"], error_std=1.0, time_axis=TimeAxis("days since 2020-01-01", "noleap"))


def test_string_datetime_refused_with_upgrade_hint(tmp_path):
    path = jcsda_file(tmp_path / "old.nc", 2, {"ObsValue/sst": ([1.0, 2.0], "K")})
    with netCDF4.Dataset(path, "a") as nc:
        variable = nc["MetaData"].createVariable("datetime", str, ("Location",))
        variable[:] = np.array(["2020-01-01T00:00:00Z", "2020-01-01T06:00:00Z"], dtype=object)
    with pytest.raises(DataError) as info:
        read_ioda(path, ["sst"], error_std=1.0)
    message = str(info.value)
    assert message.startswith(f"observations file {path}: no 'MetaData/dateTime' (int64 seconds since 1970-01-01")
    assert "MetaData variables found: datetime, latitude, longitude" in message
    assert "ioda-upgrade-v2-to-v3" in message


def test_all_datetimes_missing(tmp_path):
    path = jcsda_file(tmp_path / "obs.nc", 3, {"ObsValue/sst": ([1.0] * 3, "K")}, date_time=[INT64_MISSING] * 3)
    with pytest.raises(DataError, match=rf"^observations file {re.escape(str(path))}: variable 'MetaData/dateTime': "
                                        r"all 3 values are missing \(_FillValue or IODA's -9223372036854775801\)"):
        read_ioda(path, ["sst"], error_std=1.0)


def test_values_and_errors_converted_to_model_units(tmp_path, caplog):
    """cm -> m (2 cm error -> 0.02 m); degC -> K: values with the offset, errors without."""
    path = jcsda_file(tmp_path / "obs.nc", 3, {
        "ObsValue/absoluteDynamicTopography": ([150.0, -20.0, FLOAT_MISSING], "cm"),
        "ObsError/absoluteDynamicTopography": ([2.0, 5.0, 2.0], "cm"),
        "ObsValue/seaSurfaceTemperature": ([20.0, 0.0, 1.0], "degC"),
        "ObsError/seaSurfaceTemperature": ([0.5, 1.0, 2.0], "degC"),
        "ObsValue/salinity": ([35.0, 36.0, 37.0], None),
        "ObsError/salinity": ([0.1, 0.1, 0.1], None),
    }, date_time=[T2020, T2020 + HOUR, T2020 + 2 * HOUR])
    adt, sst = read_ioda(path, ["absoluteDynamicTopography", "seaSurfaceTemperature"], error_std=None,
                         time_axis=AXIS, units=None)  # None: no unit handling
    np.testing.assert_allclose(adt.values, [150.0, -20.0, np.nan])
    assert adt.notes == sst.notes and len(adt.notes) == 1  # the time note only
    (adt,) = read_ioda(path, ["absoluteDynamicTopography"], error_std=None, time_axis=AXIS, units="m")
    np.testing.assert_allclose(adt.values, [1.5, -0.2, np.nan], rtol=1e-6)
    np.testing.assert_allclose(adt.errors, [0.02, 0.05, 0.02], rtol=1e-6)
    assert adt.notes[1:] == ("variable 'ObsValue/absoluteDynamicTopography': converted from 'cm' to 'm'",
                             "variable 'ObsError/absoluteDynamicTopography': converted from 'cm' to 'm'")
    (sst,) = read_ioda(path, ["seaSurfaceTemperature"], error_std=None, time_axis=AXIS, units="K")
    np.testing.assert_allclose(sst.values, [293.15, 273.15, 274.15], rtol=1e-6)
    np.testing.assert_allclose(sst.errors, [0.5, 1.0, 2.0], rtol=1e-6)
    with caplog.at_level(logging.WARNING, logger="dacli"):
        (salinity,) = read_ioda(path, ["salinity"], error_std=None, time_axis=AXIS, units="1e-3")
    np.testing.assert_allclose(salinity.values, [35.0, 36.0, 37.0])
    assert f"observations file {path}: variable 'ObsValue/salinity': no 'units' attribute" in caplog.text
    assert f"observations file {path}: variable 'ObsError/salinity': no 'units' attribute" in caplog.text


def test_incompatible_units_refused(tmp_path):
    path = jcsda_file(tmp_path / "obs.nc", 2, {"ObsValue/geopotentialHeight": ([5500.0, 5600.0], "m2 s-2"),
                                               "ObsError/geopotentialHeight": ([10.0, 10.0], "m2 s-2")},
                      date_time=[T2020, T2020])
    with pytest.raises(DataError) as info:
        read_ioda(path, ["geopotentialHeight"], error_std=None, time_axis=AXIS, units="m")
    assert str(info.value) == (
        f"observations file {path}: variable 'ObsValue/geopotentialHeight': units 'm2 s-2' cannot be converted to "
        "the model variable's units 'm' (a different physical quantity); map the right variable with "
        "names = { ... } or convert the file")


CHANNELS = [7, 8, 9, 15, 16]


def radiance_file(path):
    n = 4
    tb = 200.0 + 10.0 * np.arange(n)[:, None] + np.asarray(CHANNELS)[None, :] / 100.0  # 200 + 10 loc + ch/100
    preqc = np.zeros((n, len(CHANNELS)), np.int32)
    preqc[1, 3] = 2  # channel 15 at location 1
    preqc[2, :] = 1  # every channel at location 2 but channel 15
    preqc[2, 3] = 0
    return jcsda_file(path, n, {
        "ObsValue/brightnessTemperature": (tb, "K"),
        "ObsError/brightnessTemperature": (np.tile([0.1, 0.2, 0.3, 0.4, 0.5], (n, 1)), "K"),
        "PreQC/brightnessTemperature": (preqc, None),
    }, date_time=[T2020 + k * HOUR for k in range(n)], channels=CHANNELS,
        metadata={"MetaData/sensorCentralFrequency": ([23.8, 31.4, 50.3, 52.8, 53.6], "GHz", ("Channel",))})


@pytest.mark.parametrize("channel", [15, 15.0])
def test_channel_select_picks_the_column(tmp_path, channel):
    path = radiance_file(tmp_path / "amsua.nc")
    (tb,) = read_ioda(path, ["brightnessTemperature"], error_std=None, time_axis=AXIS, units="K",
                      select={"Channel": channel})
    np.testing.assert_allclose(tb.values, [200.15, 220.15, 230.15], rtol=1e-7)  # location 1 rejected (flag 2)
    np.testing.assert_allclose(tb.errors, [0.4, 0.4, 0.4], rtol=1e-6)
    np.testing.assert_allclose(tb.times, [0.0, 2 / 24, 3 / 24], rtol=0, atol=1e-9)
    assert tb.rejected_preqc == 1 and tb.rejected_time == 0
    (tb7,) = read_ioda(path, ["brightnessTemperature"], error_std=None, time_axis=AXIS, select={"Channel": 7})
    np.testing.assert_allclose(tb7.values, [200.07, 210.07, 230.07], rtol=1e-7)  # location 2 rejected (flag 1)


def test_channel_missing_or_absent(tmp_path):
    path = radiance_file(tmp_path / "amsua.nc")
    where = f"observations file {path}: variable 'ObsValue/brightnessTemperature'"
    with pytest.raises(DataError) as info:
        read_ioda(path, ["brightnessTemperature"], error_std=None, time_axis=AXIS)
    assert str(info.value) == (f"{where} has dimensions ('Location', 'Channel'): choose one Channel with "
                               "observations.select = { Channel = <value> }; Channel values present: 7-9, 15-16")
    with pytest.raises(DataError) as info:
        read_ioda(path, ["brightnessTemperature"], error_std=None, time_axis=AXIS, select={"Channel": 10})
    assert str(info.value) == (f"{where}: observations.select asks for Channel 10, which the file does not hold; "
                               "Channel values present: 7-9, 15-16")


def test_select_of_a_dimension_no_variable_has(tmp_path):
    path = jcsda_file(tmp_path / "obs.nc", 2, {"ObsValue/sst": ([1.0, 2.0], "K")}, date_time=[T2020, T2020])
    with pytest.raises(DataError) as info:
        read_ioda(path, ["sst"], error_std=1.0, time_axis=AXIS, select={"Channel": 7})
    assert str(info.value) == (f"observations file {path}: observations.select names 'Channel', which is not a "
                               "dimension of the variables read ('ObsValue/sst' ('Location',)); remove it from "
                               "observations.select")


def test_every_location_rejected_by_preqc(tmp_path):
    flags = [1] * 12 + [3] * 4 + [0]  # the location flagged 0 has no time
    dates = [T2020] * 16 + [INT64_MISSING]
    path = jcsda_file(tmp_path / "obs.nc", 17, {"ObsValue/sst": ([290.0] * 17, "K"), "PreQC/sst": (flags, None)},
                      date_time=dates)
    with pytest.raises(DataError) as info:
        read_ioda(path, ["sst"], error_std=1.0, time_axis=AXIS, accept_preqc=(0, 2))
    assert str(info.value) == (
        f"observations file {path}: all 16 locations of 'ObsValue/sst' with a time are rejected by their PreQC "
        "flag: PreQC/sst flags found: 1 (12 locations), 3 (4 locations); accepted (observations.accept_preqc): "
        "[0, 2]. To assimilate them, add their flags to observations.accept_preqc (e.g. accept_preqc = [0, 1, 2, 3]), "
        "if the provider's flags say they are usable")
    (sst,) = read_ioda(path, ["sst"], error_std=1.0, time_axis=AXIS, accept_preqc=(1,))
    assert (sst.values.size, sst.rejected_preqc, sst.rejected_time) == (12, 4, 1)


def test_every_channel_location_rejected_names_the_channel(tmp_path):
    path = radiance_file(tmp_path / "amsua.nc")
    with pytest.raises(DataError, match=r"all 4 locations of 'ObsValue/brightnessTemperature' \(Channel 8\) with a "
                                        r"time are rejected by their PreQC flag: PreQC/brightnessTemperature flags "
                                        r"found: 0 \(3 locations\), 1 \(1 location\); accepted .*: \[5\]"):
        read_ioda(path, ["brightnessTemperature"], error_std=1.0, time_axis=AXIS, select={"Channel": 8},
                  accept_preqc=(5,))


# ---------------------------------------------------------------- writing


def write_and_read(tmp_path, axis, model_time, variables, coordinates, units="m", **kwargs):
    tree = ioda_tree(variables, model_time, axis, coordinates, units, {"title": "test"}, **kwargs)
    path = write_netcdf_atomically(tree, tmp_path / "written.nc", overwrite=True)
    return path, read_ioda(path, list(variables), error_std=None, time_axis=axis, units=units,
                           coordinates=tuple(coordinates))


def test_round_trip_and_the_written_layout(tmp_path):
    rng = np.random.default_rng(3)
    model_time = np.array([0.0, 0.25, 0.25, 1.5, 2.0 + 1 / DAY, 10.75, np.nan])  # whole seconds; one missing
    ssh = np.array([0.125, -0.5, np.nan, 1.25, 0.0, 2.5, 1.0])
    sla = rng.normal(size=7)
    variables = {"ssh": (ssh, np.full(7, 0.02)), "sla": (sla, np.linspace(0.01, 0.07, 7))}
    coordinates = {"latitude": np.linspace(30.0, 40.0, 7), "longitude": np.linspace(-70.0, -60.0, 7),
                   "depth": np.arange(7.0)}
    path, (ssh_read, sla_read) = write_and_read(tmp_path, AXIS, model_time, variables, coordinates,
                                                coordinate_units={"depth": "m"})
    kept = slice(0, 6)
    for record, (values, errors) in zip((ssh_read, sla_read), variables.values()):
        np.testing.assert_allclose(record.times, model_time[kept], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(record.values, values[kept].astype(np.float32))
        np.testing.assert_array_equal(record.errors, errors[kept].astype(np.float32))
        for name, column in coordinates.items():
            np.testing.assert_array_equal(record.coordinates[name], column[kept].astype(np.float32))
        assert (record.rejected_time, record.rejected_preqc) == (1, 0)
        assert len(record.notes) == 1 and record.notes[0].startswith("'MetaData/dateTime'")  # no unit conversion
    with netCDF4.Dataset(path) as nc:
        assert nc.getncattr("_ioda_layout") == "ObsGroup" and "ioda_layout" not in nc.ncattrs()
        version = nc.getncattr("_ioda_layout_version")
        assert version == 3 and version.dtype == np.int32
        assert nc.getncattr("title") == "test"
        assert list(nc.dimensions) == ["Location"] and nc.dimensions["Location"].size == 7
        assert nc["Location"].dtype == np.int32 and nc["Location"].dimensions == ("Location",)
        np.testing.assert_array_equal(nc["Location"][:], np.arange(7))
        assert set(nc.groups) == {"ObsValue", "ObsError", "PreQC", "MetaData"}
        for group in nc.groups.values():
            assert group.dimensions == {}  # every variable is along the root's Location
        date_time = nc["MetaData/dateTime"]
        assert date_time.dtype == np.int64 and date_time.units == EPOCH_UNITS
        assert date_time._FillValue == INT64_MISSING and date_time._FillValue.dtype == np.int64
        date_time.set_auto_mask(False)
        np.testing.assert_array_equal(date_time[:], [T2020, T2020 + 6 * HOUR, T2020 + 6 * HOUR, T2020 + 36 * HOUR,
                                                     T2020 + 2 * DAY + 1, T2020 + 10 * DAY + 18 * HOUR, INT64_MISSING])
        for name in ("ObsValue/ssh", "ObsError/sla", "MetaData/latitude", "MetaData/depth"):
            variable = nc[name]
            assert variable.dtype == np.float32 and variable._FillValue == np.float32(FLOAT_MISSING)
            assert variable._FillValue.dtype == np.float32
        assert nc["ObsValue/ssh"].units == "m" and nc["ObsError/ssh"].units == "m"
        assert nc["MetaData/latitude"].units == "degrees_north" and nc["MetaData/longitude"].units == "degrees_east"
        assert nc["MetaData/depth"].units == "m"
        ssh_raw = nc["ObsValue/ssh"]
        ssh_raw.set_auto_mask(False)
        assert ssh_raw[2] == np.float32(FLOAT_MISSING)  # NaN written as IODA's sentinel
        for name in variables:
            preqc = nc[f"PreQC/{name}"]
            assert preqc.dtype == np.int32 and preqc._FillValue == INT32_MISSING
            np.testing.assert_array_equal(preqc[:], np.zeros(7))


def test_written_times_in_other_real_world_calendars(tmp_path):
    """A julian model time is the same instant in IODA's standard dateTime: 2020-01-01 julian = 2020-01-14."""
    axis = TimeAxis("hours since 2020-01-01 00:00:00", "julian")
    path, (sst,) = write_and_read(tmp_path, axis, np.array([0.0, 30.0]),
                                  {"sst": (np.array([1.0, 2.0]), np.array([0.1, 0.1]))},
                                  {"latitude": np.zeros(2), "longitude": np.zeros(2)}, units="K")
    np.testing.assert_allclose(sst.times, [0.0, 30.0], rtol=0, atol=1e-6)
    with netCDF4.Dataset(path) as nc:
        np.testing.assert_array_equal(nc["MetaData/dateTime"][:], [T2020 + 13 * DAY, T2020 + 13 * DAY + 30 * HOUR])


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_non_real_world_calendar_cannot_be_written(calendar):
    with pytest.raises(ConfigError) as info:
        ioda_tree({"sst": (np.ones(1), np.ones(1))}, np.zeros(1), TimeAxis("days since 2020-01-01", calendar),
                  {}, "K")
    assert info.value.problems == [
        f"time.calendar = {calendar!r}: IODA's MetaData/dateTime is a real date (seconds since 1970-01-01T00:00:00Z, "
        f"standard calendar), which a {calendar} model time has not; use a real-world calendar (julian, "
        "proleptic_gregorian, standard) or observations.layout = 'scattered' (CF points)"]


# ---------------------------------------------------------------- feedback


def test_feedback_groups_for_two_variables(tmp_path):
    from dacli.io.ioda_feedback import feedback_tree

    values = np.array([1.0, 20.0, 3.0, 40.0, 5.0])
    errors = np.array([0.1, 2.0, 0.3, 4.0, 0.5])
    background = np.array([1.5, 21.0, 2.0, np.nan, 5.25])
    analysis = np.array([1.25, 20.5, 2.5, np.nan, 5.0])
    flags = np.array([0, 0, 1, 3, 0])
    names = ["ssh", "sst", "ssh", "sst", "ssh"]
    tree = feedback_tree(values, errors, background, analysis, flags, np.array([0.25, 0.25, 0.5, 0.75, 1.0]),
                         {"latitude": np.arange(5.0), "longitude": np.arange(5.0) + 10}, names, AXIS,
                         {"ssh": "m", "sst": "K"})
    path = write_netcdf_atomically(tree, tmp_path / "feedback.nc", overwrite=True)
    with netCDF4.Dataset(path) as nc:
        assert nc.getncattr("_ioda_layout") == "ObsGroup" and list(nc.dimensions) == ["Location"]
        assert set(nc.groups) == {"ObsValue", "ObsError", "hofx0", "hofx1", "ombg", "oman", "EffectiveQC",
                                  "EffectiveError", "MetaData"}
        ssh, sst = [0, 2, 4], [1, 3]

        def read(name):
            return np.ma.filled(nc[name][:].astype(float), np.nan)

        np.testing.assert_array_equal(read("ObsValue/ssh")[ssh], [1.0, 3.0, 5.0])
        assert np.isnan(read("ObsValue/ssh")[sst]).all() and np.isnan(read("ObsValue/sst")[ssh]).all()
        np.testing.assert_allclose(read("hofx0/ssh")[ssh], [1.5, 2.0, 5.25])
        np.testing.assert_allclose(read("hofx1/sst")[sst], [20.5, np.nan])
        np.testing.assert_allclose(read("ombg/ssh")[ssh], [-0.5, 1.0, -0.25])
        np.testing.assert_allclose(read("oman/ssh")[ssh], [-0.25, 0.5, 0.0])
        np.testing.assert_allclose(read("ombg/sst")[sst], [-1.0, np.nan])
        np.testing.assert_allclose(read("EffectiveError/ssh")[ssh], [0.1, np.nan, 0.5], rtol=1e-6)  # not used: missing
        qc = nc["EffectiveQC/sst"]
        assert qc.dtype == np.int32 and qc._FillValue == INT32_MISSING
        np.testing.assert_array_equal(np.ma.filled(qc[:], -1), [-1, 0, -1, 3, -1])
        np.testing.assert_array_equal(qc.flag_values, [0, 1, 2, 3])
        assert nc["ombg/sst"].units == "K" and nc["hofx0/ssh"].units == "m"
        np.testing.assert_array_equal(nc["MetaData/dateTime"][:], T2020 + np.array([6, 6, 12, 18, 24]) * HOUR)
    # still an IODA file dacli reads: ssh's rows with the other variable are missing values
    (back,) = read_ioda(path, ["ssh"], error_std=None, time_axis=AXIS, units="m")
    np.testing.assert_allclose(back.values, [1.0, np.nan, 3.0, np.nan, 5.0])
    np.testing.assert_allclose(back.times, [0.25, 0.25, 0.5, 0.75, 1.0], rtol=0, atol=1e-9)


def test_feedback_one_variable_and_shape_checks():
    from dacli.io.ioda_feedback import feedback_tree

    tree = feedback_tree(np.ones(3), np.ones(3), np.zeros(3), np.ones(3), np.zeros(3, int), np.zeros(3),
                         {}, "ssh", AXIS, "m")
    assert list(tree["ombg"].data_vars) == ["ssh"]
    np.testing.assert_array_equal(tree["ombg/ssh"].values, np.ones(3, np.float32))
    np.testing.assert_array_equal(tree["EffectiveQC/ssh"].values, np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"feedback_tree: qc_flags has shape \(2,\); expected \(3,\)"):
        feedback_tree(np.ones(3), np.ones(3), np.zeros(3), np.ones(3), np.zeros(2, int), np.zeros(3),
                      {}, "ssh", AXIS, "m")
