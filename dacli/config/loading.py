"""Read a TOML config, apply ``--set`` overrides, validate, and report every problem at once.

Errors name the file, the line (tomllib gives none for values, so keys are located by
scanning the text), the dotted key, what was expected and what was found.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dacli.config.schema import Config
from dacli.errors import ConfigError

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")
_INLINE_KEY = re.compile(r"([A-Za-z0-9_\-]+)\s*=")

# Input paths are resolved relative to the config file's folder; output.path is relative to the
# working directory (where a user or batch job expects results to appear).
PATH_KEYS = (("observations", "path"), ("background", "path"), ("truth", "path"),
             ("background", "covariance", "path"))


def _split_key(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in text.split(".")]


def locate_keys(text: str) -> dict[str, int]:
    """Map each dotted key in a TOML text to the 1-based line that sets it."""
    lines: dict[str, int] = {}
    table: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            lines.setdefault(".".join(table), number)
            continue
        assign = _ASSIGN.match(line)
        if assign and not line.lstrip().startswith("#"):
            key = ".".join(table + _split_key(assign.group(1)))
            lines.setdefault(key, number)
            rest = line[assign.end():]
            if rest.lstrip().startswith("{"):
                for inner in _INLINE_KEY.finditer(rest):
                    lines.setdefault(f"{key}.{inner.group(1)}", number)
    return lines


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse one ``--set key.path=value``; the value is read as TOML, else as a plain string."""
    if "=" not in item:
        raise ConfigError([f"--set {item!r}: expected KEY.PATH=VALUE, found no '='"])
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError([f"--set {item!r}: expected a dotted key such as method.max_steps"])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` override set (tables created)."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError([f"--set {item!r}: {part!r} is a value, not a table"])
            node = child
        node[path[-1]] = value
    return data


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic record that owns the key at ``loc`` (for unknown-key suggestions)."""
    model: Any = Config
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return model if model is not Config or part == loc[-1] else None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def suggest(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix, or '' when nothing is close."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    """(dotted key, message) for one pydantic error."""
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    key = ".".join(str(p) for p in loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1]) if len(loc) > 1 else Config
        known = list(owner.model_fields) if owner else []
        hint = suggest(str(loc[-1]), known) if known else ""
        return key, f"unknown key{hint or ''}" + ("" if hint or not known else f" (known keys: {', '.join(known)})")
    if kind == "missing":
        return key, "missing required key"
    found = error.get("input")
    message = error["msg"]
    if kind in ("finite_number",):
        message = "expected a finite number"
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        return key, message
    return key, f"{message[0].lower()}{message[1:]}, found {found!r}"


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    for *sections, key in PATH_KEYS:
        node = data
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(key), str):
            path = Path(node[key]).expanduser()
            node[key] = os.path.normpath(path if path.is_absolute() else (base / path))


def load_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    extra_checks: Sequence[Callable[[Config], list[tuple[str, str]]]] = (),
) -> Config:
    """Load and validate ``path``; raise :class:`ConfigError` listing every problem.

    ``extra_checks`` return ``(dotted key, message)`` problems for a config that passed the
    schema (the build layer uses this to check registry names with suggestions).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    data = apply_overrides(data, overrides)
    _resolve_paths(data, path.resolve().parent)
    lines = locate_keys(text)

    def where(key: str) -> str:
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            line = lines.get(".".join(parts[:end]))
            if line is not None:
                return f"{path}:{line}"
        return str(path)

    override_keys = {item.split("=", 1)[0].strip() for item in overrides}

    def origin(key: str) -> str:
        if any(key == k or key.startswith(k + ".") for k in override_keys):
            return "--set"
        return where(key)

    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key, message = _describe(error)
            problems.append(f"{origin(key)}: {key or '(top level)'}: {message}")
        raise ConfigError(problems, source=str(path)) from None
    problems = [f"{origin(key)}: {key}: {message}" for check in extra_checks for key, message in check(config)]
    if problems:
        raise ConfigError(problems, source=str(path))
    return config
