"""Opening NetCDF inputs and writing outputs safely.

Opening: a missing or unreadable file becomes a :class:`DataError` naming the file.
Writing: through :mod:`dacli.io.atomic` (refuse to clobber an existing file without
``overwrite``, a temporary file in the target folder renamed into place; a failed or interrupted
write never leaves a partial file under the final name, nor a temporary one).
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from dacli.errors import DataError
from dacli.io.atomic import check_writable, write_atomically

__all__ = ["check_netcdf_file", "check_writable", "open_netcdf", "write_netcdf_atomically"]


def check_netcdf_file(path: str | Path, what: str) -> Path:
    """``path`` if it exists and looks like NetCDF, else a :class:`DataError` saying what it is."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} file {path}: no such file")
    if path.is_dir():
        raise DataError(f"{what} file {path}: is a directory, not a NetCDF file")
    if path.stat().st_size == 0:
        raise DataError(f"{what} file {path}: is empty (0 bytes), not a NetCDF file")
    if not _has_netcdf_signature(path):
        raise DataError(
            f"{what} file {path}: not a NetCDF file (no NetCDF-3 or HDF5/NetCDF-4 signature)"
        )
    return path


def open_netcdf(path: str | Path, what: str) -> xr.Dataset:
    """Open ``path`` (the ``what`` file, e.g. 'observations') eagerly and close it."""
    path = check_netcdf_file(path, what)
    try:
        with xr.open_dataset(path, engine="netcdf4", decode_times=False) as dataset:
            return dataset.load()
    except OSError as exc:  # netCDF4/HDF5: unknown format, truncated, permission denied...
        reason = exc.strerror or str(exc)
        raise DataError(f"{what} file {path}: not a readable NetCDF file ({reason})") from None
    except Exception as exc:  # e.g. ValueError from xarray on inconsistent metadata
        raise DataError(
            f"{what} file {path}: cannot be read as NetCDF ({type(exc).__name__}: {exc})"
        ) from None


_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _has_netcdf_signature(path: Path) -> bool:
    """NetCDF-3 starts with ``CDF\\x01|02|05``; HDF5 (NetCDF-4) has its signature at byte 0, 512,
    1024, ..."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if head[:3] == b"CDF" and head[3:4] in (b"\x01", b"\x02", b"\x05"):
                return True
            size = path.stat().st_size
            offset = 0
            while offset + 8 <= size:
                handle.seek(offset)
                if handle.read(8) == _HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return True  # let the NetCDF library report why it cannot be read
    return False


def write_netcdf_atomically(
    dataset: xr.Dataset | xr.DataTree, path: str | Path, overwrite: bool
) -> Path:
    """Write ``dataset`` (or a tree of groups) to ``path`` whole or not at all
    (:mod:`dacli.io.atomic`)."""
    return write_atomically(
        path, lambda temporary: dataset.to_netcdf(temporary, format="NETCDF4"), overwrite=overwrite
    )
