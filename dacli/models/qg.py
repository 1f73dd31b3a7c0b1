"""1.5-layer (equivalent-barotropic) quasi-geostrophic model on a doubly periodic grid.

The ocean mesoscale test bed of SSH mapping (e.g. the 4DVarNet and BOOST-SWOT data challenges):
potential vorticity q = nabla^2 psi - psi / Ld^2 is advected by the geostrophic flow of the
streamfunction psi,

    dq/dt = -J(psi, q) - beta dpsi/dx + nu nabla^2 q - r nabla^2 psi + F(y),

and the state is the sea-surface height eta = (f0 / g) psi. PV inversion, derivatives and the
Jacobian are spectral (real FFTs), with Orszag's 2/3 rule against aliasing. Time is in days,
lengths in metres. References: Pedlosky (1987), "Geophysical Fluid Dynamics", ch. 3;
Vallis (2017), "Atmospheric and Oceanic Fluid Dynamics", ch. 5.

The state vector is eta flattened in C order over (y, x). Coordinates are written in metres
(``coordinates = "xy"``: ``y``, ``x``) or in degrees of a regional lat-lon box centred on
(``center_lat``, ``center_lon``) (``coordinates = "latlon"``: ``lat``, ``lon``; the dynamics stay
on the beta plane, with f0 = 2 Omega sin(lat0) and beta = 2 Omega cos(lat0) / R unless given).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from dacli.models.base import MAX_STATE_SIZE, Dynamics, GridAxis, StateLayout, size_parameter

SECONDS_PER_DAY = 86400.0
EARTH_RADIUS = 6.371e6  # m
EARTH_ROTATION = 7.2921e-5  # Omega, s^-1
METRES_PER_DEGREE = EARTH_RADIUS * np.pi / 180.0


def wavenumbers(
    ny: int, nx: int, length_y: float, length_x: float
) -> tuple[Float[np.ndarray, "ny 1"], Float[np.ndarray, "1 nx_half"]]:
    """(ky, kx) angular wavenumbers of an ``rfft2`` over a (ny, nx) periodic grid, shapes (ny, 1),
    (1, nx//2 + 1)."""
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=length_y / ny)
    kx = 2 * np.pi * np.fft.rfftfreq(nx, d=length_x / nx)
    return ky[:, None], kx[None, :]


def dealias_mask(ny: int, nx: int) -> np.ndarray:
    """Orszag's 2/3 rule: keep |index| < n/3 in each direction (rfft2 layout)."""
    iy = np.abs(np.fft.fftfreq(ny) * ny)
    ix = np.fft.rfftfreq(nx) * nx
    return (iy[:, None] < ny / 3) & (ix[None, :] < nx / 3)


class QuasiGeostrophic(Dynamics):
    """Equivalent-barotropic QG on an ny x nx doubly periodic grid of size length_y x length_x
    (m)."""

    nx: int = eqx.field(static=True)
    ny: int = eqx.field(static=True)
    length_x: float = eqx.field(static=True)
    length_y: float = eqx.field(static=True)
    deformation_radius: float = 30e3  # Ld (m)
    beta: float = 1.6e-11  # (m s)^-1
    coriolis: float = 1e-4  # f0 (s^-1)
    gravity: float = 9.81
    viscosity: float = 20.0  # nu (m^2 s^-1), on q
    drag: float = 0.0  # r (s^-1), bottom drag on relative vorticity
    forcing_amplitude: float = 0.0  # F0 (s^-2): F = F0 sin(2 pi y / length_y)
    coordinates: str = eqx.field(static=True, default="xy")
    center_lat: float = eqx.field(static=True, default=38.0)
    center_lon: float = eqx.field(static=True, default=-60.0)

    def __init__(
        self,
        nx: int = 64,
        ny: int | None = None,
        length_x: float = 1.0e6,
        length_y: float | None = None,
        deformation_radius: float = 30e3,
        beta: float | None = None,
        coriolis: float | None = None,
        gravity: float = 9.81,
        viscosity: float = 20.0,
        drag: float = 0.0,
        forcing_amplitude: float = 0.0,
        coordinates: str = "xy",
        center_lat: float = 38.0,
        center_lon: float = -60.0,
    ):
        ny = nx if ny is None else ny
        length_y = length_x * ny / nx if length_y is None else length_y
        for name, value in (("nx", nx), ("ny", ny)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or value % 2
                or value < 8
            ):
                raise ValueError(f"{name} must be an even integer >= 8, found {value!r}")
            size_parameter(name, value, minimum=8)
        if nx * ny > MAX_STATE_SIZE:
            raise ValueError(
                f"nx * ny must be at most {MAX_STATE_SIZE:,} grid points "
                f"(dacli.models.MAX_STATE_SIZE), found {nx} * {ny} = {int(nx * ny):,}"
            )
        if deformation_radius <= 0 or length_x <= 0 or length_y <= 0:
            raise ValueError("deformation_radius, length_x and length_y must be positive")
        if coordinates not in ("xy", "latlon"):
            raise ValueError(
                f"coordinates must be 'xy' (metres) or 'latlon' (degrees), found {coordinates!r}"
            )
        if not -80.0 <= center_lat <= 80.0:
            raise ValueError(f"center_lat must lie in [-80, 80] degrees, found {center_lat!r}")
        self.coordinates, self.center_lat, self.center_lon = (
            coordinates,
            float(center_lat),
            float(center_lon),
        )
        if coordinates == "latlon":  # the beta plane tangent at the box centre
            latitude = np.radians(center_lat)
            coriolis = 2 * EARTH_ROTATION * np.sin(latitude) if coriolis is None else coriolis
            beta = 2 * EARTH_ROTATION * np.cos(latitude) / EARTH_RADIUS if beta is None else beta
        coriolis = 1e-4 if coriolis is None else coriolis
        beta = 1.6e-11 if beta is None else beta
        if coriolis == 0:
            raise ValueError(
                "coriolis (f0) must be non-zero: SSH and streamfunction are related by g / f0"
            )
        self.nx, self.ny = int(nx), int(ny)
        self.length_x, self.length_y = float(length_x), float(length_y)
        self.deformation_radius, self.beta, self.coriolis = (
            float(deformation_radius),
            float(beta),
            float(coriolis),
        )
        self.gravity, self.viscosity, self.drag = float(gravity), float(viscosity), float(drag)
        self.forcing_amplitude = float(forcing_amplitude)

    # --- spectral operators ---------------------------------------------------------------------

    def _spectral(self):
        ky, kx = wavenumbers(self.ny, self.nx, self.length_y, self.length_x)
        laplacian = -(kx**2 + ky**2)
        return jnp.asarray(ky), jnp.asarray(kx), jnp.asarray(laplacian)

    def pv_from_streamfunction(self, psi: Float[Array, "ny nx"]) -> Float[Array, "ny nx"]:
        """q = nabla^2 psi - psi / Ld^2 (grid (ny, nx) -> grid)."""
        _, _, laplacian = self._spectral()
        psi_hat = jnp.fft.rfft2(psi)
        return jnp.fft.irfft2((laplacian - 1.0 / self.deformation_radius**2) * psi_hat, s=psi.shape)

    def streamfunction_from_pv(self, q: Float[Array, "ny nx"]) -> Float[Array, "ny nx"]:
        """PV inversion: psi = (nabla^2 - 1/Ld^2)^-1 q, exact in spectral space (never singular)."""
        _, _, laplacian = self._spectral()
        q_hat = jnp.fft.rfft2(q)
        return jnp.fft.irfft2(q_hat / (laplacian - 1.0 / self.deformation_radius**2), s=q.shape)

    def pv_tendency(self, psi: Float[Array, "ny nx"]) -> Float[Array, "ny nx"]:
        """dq/dt (s^-2) for the streamfunction psi on the grid."""
        ky, kx, laplacian = self._spectral()
        keep = jnp.asarray(dealias_mask(self.ny, self.nx))
        shape = psi.shape
        psi_hat = jnp.fft.rfft2(psi)
        q_hat = (laplacian - 1.0 / self.deformation_radius**2) * psi_hat

        def derivative(field_hat, k):
            return jnp.fft.irfft2(1j * k * field_hat * keep, s=shape)

        jacobian = derivative(psi_hat, kx) * derivative(q_hat, ky) - derivative(
            psi_hat, ky
        ) * derivative(q_hat, kx)
        linear_hat = (
            -self.beta * 1j * kx * psi_hat
            + self.viscosity * laplacian * q_hat
            - self.drag * laplacian * psi_hat
        )
        y = jnp.arange(self.ny) * (self.length_y / self.ny)
        forcing = self.forcing_amplitude * jnp.sin(2 * jnp.pi * y / self.length_y)[:, None]
        return (
            -jnp.fft.irfft2(jnp.fft.rfft2(jacobian) * keep, s=shape)
            + jnp.fft.irfft2(linear_hat, s=shape)
            + forcing
        )

    # --- the Dynamics contract --------------------------------------------------------------------

    def ssh_to_streamfunction(self, eta: Float[Array, "ny nx"]) -> Float[Array, "ny nx"]:
        return (self.gravity / self.coriolis) * eta

    def vector_field(
        self, t: Float[ArrayLike, ""], x: Float[Array, " n"], args: PyTree
    ) -> Float[Array, " n"]:
        """d eta / dt in m per day, for eta flattened over (y, x)."""
        psi = self.ssh_to_streamfunction(x.reshape(self.ny, self.nx))
        dpsi_dt = self.streamfunction_from_pv(self.pv_tendency(psi))
        return (SECONDS_PER_DAY * self.coriolis / self.gravity) * dpsi_dt.reshape(-1)

    def layout(self) -> StateLayout:
        dy, dx = self.length_y / self.ny, self.length_x / self.nx
        if self.coordinates == "latlon":
            dlat = dy / METRES_PER_DEGREE
            dlon = dx / (METRES_PER_DEGREE * np.cos(np.radians(self.center_lat)))
            axes = (
                GridAxis(
                    "lat",
                    self.center_lat + dlat * (np.arange(self.ny) - (self.ny - 1) / 2),
                    "degrees_north",
                    True,
                    "latitude",
                    "Y",
                ),
                GridAxis(
                    "lon",
                    self.center_lon + dlon * (np.arange(self.nx) - (self.nx - 1) / 2),
                    "degrees_east",
                    True,
                    "longitude",
                    "X",
                ),
            )
        else:
            axes = (
                GridAxis("y", dy * np.arange(self.ny), "m", True, "projection_y_coordinate", "Y"),
                GridAxis("x", dx * np.arange(self.nx), "m", True, "projection_x_coordinate", "X"),
            )
        return StateLayout(
            variables=("ssh",),
            units="m",
            axes=axes,
            standard_names=("sea_surface_height_above_mean_sea_level",),
        )

    def default_state(self, key: PRNGKeyArray) -> Float[Array, " n"]:
        """A random field of ~10 cm with most energy near the deformation radius."""
        _, _, laplacian = self._spectral()
        k = jnp.sqrt(-laplacian)
        k0 = 1.0 / self.deformation_radius
        spectrum = (k / k0) ** 2 * jnp.exp(
            -((k / k0) ** 2)
        )  # amplitude spectrum peaked at k ~ 1/Ld
        noise = jax.random.normal(key, (self.ny, self.nx))
        field = jnp.fft.irfft2(jnp.fft.rfft2(noise) * spectrum, s=(self.ny, self.nx))
        return (0.1 * field / jnp.std(field)).reshape(-1)

    # --- invariants -----------------------------------------------------------------------------

    def energy(self, eta: Float[Array, " n"]) -> Float[Array, ""]:
        """Mean of 1/2 (|grad psi|^2 + psi^2 / Ld^2): conserved by the inviscid, unforced model."""
        psi = self.ssh_to_streamfunction(eta.reshape(self.ny, self.nx))
        return -0.5 * jnp.mean(psi * self.pv_from_streamfunction(psi))

    def enstrophy(self, eta: Float[Array, " n"]) -> Float[Array, ""]:
        """Mean of 1/2 q^2: conserved by the inviscid, unforced model with beta = 0."""
        psi = self.ssh_to_streamfunction(eta.reshape(self.ny, self.nx))
        return 0.5 * jnp.mean(self.pv_from_streamfunction(psi) ** 2)
