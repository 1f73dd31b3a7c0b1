"""The shapes the variational methods' functions share, as type aliases (jaxtyping, not checked).

``n`` is the state size, ``steps`` the saved model states of a window (nsteps + 1), ``p`` the
padded observation capacity of a window. A control vector's shape depends on the method
(strong 4DVar and 3DVar: (n,); weak 4DVar: (subwindows + 1, n)), so controls are plain ``Array``.
Not for runtime checks: the annotations document shapes; nothing here validates them.
"""

from collections.abc import Callable

from jaxtyping import Array, ArrayLike, Float

from dacli.observations.operator import WindowObservations

State = Float[Array, " n"]
"""A flat model state."""

Time = Float[ArrayLike, ""]
"""A model time: traced (one compiled program serves every window) or a Python float."""

Trajectory = Float[Array, "steps n"]
"""The states of a window saved at every model step, (nsteps + 1, n)."""

WindowArgs = tuple[State, Time, WindowObservations]
"""(background state, window start time, the window's observations): every cost's ``args``."""

LinearisedDepartures = tuple[
    Float[Array, " p"],
    Callable[[Array], Float[Array, " p"]],
    Callable[[Float[Array, " p"]], Array],
]
"""(whitened departures d(v), tangent-linear map dv -> dd, its adjoint dd -> dv)."""
