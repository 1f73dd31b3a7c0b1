"""Configuration: TOML -> validated, frozen records. No JAX here.

:func:`load` is the entry point: a TOML path and ``--set`` overrides in, a :class:`Config` out.
"""

from dacli.config.loading import apply_overrides, load, locate_keys
from dacli.config.schema import Config

__all__ = ["Config", "apply_overrides", "load", "locate_keys"]
