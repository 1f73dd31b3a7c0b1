"""Latitude-longitude map axes: degree tick labels (30°N, 60°W) and coastlines when possible.

The maps stay plain matplotlib axes in degrees (an equirectangular picture with the
1/cos(latitude) aspect), with or without cartopy, so a picture has the same panels, scales and
ticks everywhere. Coastlines are Natural Earth's (1:50m), drawn by cartopy's feature interface
when the optional extra is installed (``pip install 'dacli[maps]'``) and its data are at hand
(cartopy downloads them once, into its data folder); otherwise the maps have no coastlines and
:func:`add_coastlines` says why, once per figure, at INFO level.

Not for projected grids (x/y in metres): their ticks are plain numbers.
Reference: Natural Earth (naturalearthdata.com); cartopy's ``LatitudeFormatter`` conventions
(0° without a hemisphere, 180° without E/W).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.ticker import FuncFormatter

try:  # the optional "maps" extra
    import cartopy
    import cartopy.feature as cartopy_feature
except ImportError:  # pragma: no cover - depends on the environment
    cartopy = cartopy_feature = None

log = logging.getLogger("dacli")

COASTLINE_SCALE = "50m"


def latitude_text(value: float, _position=None) -> str:
    """'30°N', '12.5°S', '0°'."""
    value = round(float(value), 6)
    if value == 0:
        return "0°"
    return f"{abs(value):g}°{'N' if value > 0 else 'S'}"


def longitude_text(value: float, _position=None) -> str:
    """'60°W', '20°E', '0°', '180°' (longitudes beyond ±180 wrapped: 300 reads 60°W)."""
    value = round((float(value) + 180.0) % 360.0 - 180.0, 6)
    if value in (0.0, -180.0):
        return "0°" if value == 0 else "180°"
    return f"{abs(value):g}°{'E' if value > 0 else 'W'}"


def degree_ticks(axes) -> None:
    """Label the x axis of ``axes`` in °E/°W and the y axis in °N/°S."""
    axes.xaxis.set_major_formatter(FuncFormatter(longitude_text))
    axes.yaxis.set_major_formatter(FuncFormatter(latitude_text))


def coastline_geometries(extent: tuple[float, float, float, float]) -> list:
    """Natural Earth coastlines (shapely geometries, lon/lat) crossing ``extent`` (lon0, lon1,
    lat0, lat1); longitudes 0..360 grids get the copies shifted by 360°. Raises ImportError
    without cartopy, OSError when its data cannot be had (not yet downloaded, and no network)."""
    if cartopy_feature is None:
        raise ImportError("cartopy is not installed (pip install 'dacli[maps]')")
    feature = cartopy_feature.NaturalEarthFeature("physical", "coastline", COASTLINE_SCALE)
    west, east, south, north = extent
    geometries = []
    for shift in (0.0, 360.0) if east > 180.0 else (0.0,):
        box = (west - shift, east - shift, south, north)
        with warnings.catch_warnings():  # cartopy's DownloadWarning: the reason is logged
            warnings.simplefilter("ignore")
            try:
                found = list(feature.intersecting_geometries(box))
            except OSError as exc:  # urllib's URLError included
                folder = getattr(cartopy, "config", {}).get("data_dir", "its data folder")
                raise OSError(
                    f"cartopy could not load Natural Earth's {COASTLINE_SCALE} coastlines ({exc}); "
                    f"it downloads them once into {folder}"
                ) from exc
        geometries += [(geometry, shift) for geometry in found]
    return geometries


def draw_coastlines(axes, geometries: list) -> LineCollection:
    """Draw ``(geometry, longitude shift)`` pairs as thin dark lines, not changing the limits."""
    segments = []
    for geometry, shift in geometries:
        lines = getattr(geometry, "geoms", [geometry])
        for line in lines:
            rings = [line.exterior, *line.interiors] if hasattr(line, "exterior") else [line]
            segments += [np.asarray(ring.coords)[:, :2] + (shift, 0.0) for ring in rings]
    limits = axes.get_xlim(), axes.get_ylim()
    collection = LineCollection(segments, colors="0.1", linewidths=0.6, label="coastline")
    axes.add_collection(collection, autolim=False)
    axes.set_xlim(*limits[0])
    axes.set_ylim(*limits[1])
    return collection


def add_coastlines(panels: list) -> bool:
    """Coastlines on every lat-lon map panel of a figure; False (and one INFO line saying why)
    when cartopy or its Natural Earth data are missing: the maps are drawn without them."""
    if not panels:
        return False
    (west, east), (south, north) = panels[0].get_xlim(), panels[0].get_ylim()
    try:
        geometries = coastline_geometries((west, east, south, north))
    except (ImportError, OSError) as exc:
        log.info("maps drawn without coastlines: %s", exc)
        return False
    for axes in panels:
        draw_coastlines(axes, geometries)
    return True
