"""Configuration: TOML -> validated, frozen records. No JAX here."""

from dacli.config.loading import apply_overrides, load_config, locate_keys
from dacli.config.schema import Config

__all__ = ["Config", "apply_overrides", "load_config", "locate_keys"]
