"""The xarray/NetCDF boundary: read observations and states, write analyses and forecasts."""
