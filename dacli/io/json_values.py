"""Values made strict JSON: what ``--json`` output and file headers hold."""

from __future__ import annotations

import math


def json_safe(value):
    """Strict JSON: NaN/Inf (not JSON) become null; numpy scalars become Python numbers
    (recursively). Not a serialiser: the result still goes through :func:`json.dumps`."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
