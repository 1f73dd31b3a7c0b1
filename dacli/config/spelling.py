"""Spelling help for names a user typed: the "did you mean" of every refusal."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def suggest(word: Any, choices: Iterable[str]) -> str:
    """A '; did you mean ...?' suffix naming the closest of ``choices`` (case-insensitive), or
    '' when nothing is close (difflib's ratio below 0.6)."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""
