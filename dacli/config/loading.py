"""Read a TOML config, apply ``--set`` overrides, validate, and report every problem at once.

Errors name the file, the line (tomllib gives none for values, so keys are located by
scanning the text), the dotted key, what was expected and what was found.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dacli.config.registry import check_names
from dacli.config.schema import (
    MAX_SIMULATED_STEPS,
    MAX_STEPS_PER_WINDOW,
    REMOVED_KEYS,
    RENAMED_KEYS,
    Config,
)
from dacli.config.spelling import suggest
from dacli.errors import ConfigError

# Input paths are resolved relative to the config file's folder (or, when set with ``--set``, to
# the working directory, where the command was typed); output.path is relative to the working
# directory (where a user or batch job expects results to appear).
PATH_KEYS = (
    ("observations", "path"),
    ("background", "path"),
    ("truth", "path"),
    ("background", "covariance", "path"),
    ("method", "model_error", "covariance", "path"),
    ("train", "observations"),
    ("train", "truth"),
)

# Tables, inline tables and arrays nested deeper than this are refused (dacli's own keys nest at
# most 5 levels: [method.model_error.covariance] std = [...]). tomllib recurses per level and would
# raise RecursionError a few hundred levels down; the check names the key instead.
MAX_NESTING = 16

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+")
_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


class _KeyScanner:
    """A small TOML scanner that records the line of every key (tomllib gives none).

    It understands tables, arrays of tables, dotted and quoted keys, inline tables (nested),
    multi-line arrays and all four string forms, so an ``=`` or ``{`` inside a string or a
    comment is never mistaken for a key. On text that is not valid TOML it stops quietly.
    Tables and values nested deeper than :data:`MAX_NESTING` are skipped without recursion; the
    first such place is kept in :attr:`too_deep` as (dotted key, line, levels found), so the text
    can be refused before tomllib recurses into it.
    """

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.newlines = [i for i, c in enumerate(text) if c == "\n"]
        self.lines: dict[str, int] = {}
        self.statement: list[str] = []  # the key of the value being read
        self.too_deep: tuple[str, int, int] | None = None

    def line(self, pos: int | None = None) -> int:
        import bisect

        return bisect.bisect_left(self.newlines, self.pos if pos is None else pos) + 1

    def peek(self, count: int = 1) -> str:
        return self.text[self.pos : self.pos + count]

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces/tabs, comments and (if ``newlines``) line breaks."""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                break

    def skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end + 1

    def record(self, parts: list[str], pos: int) -> None:
        if parts:
            self.lines.setdefault(".".join(parts), self.line(pos))

    def string(self) -> str:
        """Read a string starting at ``pos``; return its (roughly unescaped) content."""
        text = self.text
        for quote in ('"""', "'''"):
            if text.startswith(quote, self.pos):
                start = self.pos + 3
                end = start
                while True:
                    end = text.find(quote, end)
                    if end < 0:
                        self.pos = len(text)
                        return text[start:]
                    if quote == '"""' and _escaped(text, end):
                        end += 1
                        continue
                    break
                while text.startswith(quote[0], end + 3):  # up to two quotes may close the string
                    end += 1
                self.pos = end + 3
                return text[start:end]
        quote = text[self.pos]
        start = end = self.pos + 1
        while end < len(text) and text[end] != "\n":
            if text[end] == quote and not (quote == '"' and _escaped(text, end)):
                break
            end += 1
        self.pos = min(end + 1, len(text))
        return text[start:end]

    def key(self) -> list[str]:
        """A dotted key: bare or quoted parts separated by dots; [] if none here."""
        parts = []
        while True:
            self.skip_blank(newlines=False)
            c = self.peek()
            if c in ('"', "'"):
                parts.append(self.string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if not match:
                    return parts
                parts.append(match.group(0))
                self.pos = match.end()
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.pos += 1

    def deep(self, parts: list[str], levels: int, pos: int) -> None:
        """Note (the first) place nested deeper than :data:`MAX_NESTING`."""
        if self.too_deep is None:
            self.too_deep = (_dotted(parts), self.line(pos), levels)

    def skip_nested(self, depth: int) -> None:
        """Skip one array or inline table without recursion, noting how deep it goes (from
        ``depth``)."""
        start, level, deepest = self.pos, 0, depth
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in ('"', "'"):
                self.string()
                continue
            if c == "#":
                self.skip_blank(newlines=False)
                continue
            self.pos += 1
            if c in "[{":
                level += 1
                deepest = max(deepest, depth + level - 1)
            elif c in "]}":
                level -= 1
                if level <= 0:
                    break
        self.deep(self.statement, deepest, start)

    def value(self, prefix: list[str] | None, depth: int = 1) -> None:
        """Skip one value; inside inline tables record keys under ``prefix``.

        ``depth`` counts the tables and arrays around the value, this one included if it is one.
        """
        self.skip_blank(newlines=False)
        c = self.peek()
        if c in ("[", "{") and depth > MAX_NESTING:
            self.skip_nested(depth)
        elif c in ('"', "'"):
            self.string()
        elif c == "[":
            self.pos += 1
            while self.pos < len(self.text):
                self.skip_blank(newlines=True)
                if self.peek() in ("]", ""):
                    self.pos += 1
                    return
                before = self.pos
                self.value(None, depth + 1)
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
                elif self.pos == before:
                    self.pos += 1  # not TOML: never loop forever
        elif c == "{":
            self.pos += 1
            while self.pos < len(self.text):
                self.skip_blank(newlines=True)
                if self.peek() in ("}", ""):
                    self.pos += 1
                    return
                start = self.pos
                parts = self.key()
                self.skip_blank(newlines=False)
                if not parts or self.peek() != "=":
                    self.pos = max(self.pos, start + 1)
                    continue
                self.pos += 1
                if prefix is not None:
                    self.record(prefix + parts, start)
                    self.statement = prefix + parts
                if depth + len(parts) - 1 > MAX_NESTING:  # dotted keys: implicit tables
                    self.deep(self.statement, depth + len(parts) - 1, start)
                self.value(None if prefix is None else prefix + parts, depth + len(parts))
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
        else:
            while self.pos < len(self.text) and self.text[self.pos] not in ",]}\n#":
                self.pos += 1

    def scan(self) -> dict[str, int]:
        table: list[str] = []
        text = self.text
        while True:
            self.skip_blank(newlines=True)
            if self.pos >= len(text):
                return self.lines
            start = self.pos
            if text[self.pos] == "[":
                self.pos += 2 if text.startswith("[[", self.pos) else 1
                table = self.key()
                self.record(table, start)
                if len(table) > MAX_NESTING:
                    self.deep(table, len(table), start)
                self.skip_line()
                continue
            parts = self.key()
            self.skip_blank(newlines=False)
            if not parts or self.peek() != "=":
                self.skip_line()
                continue
            self.pos += 1
            self.record(table + parts, start)
            self.statement = table + parts
            if len(self.statement) - 1 > MAX_NESTING:  # dotted keys: implicit tables
                self.deep(self.statement, len(self.statement) - 1, start)
            self.value(table + parts, len(table) + len(parts))
            if self.pos == start:
                self.pos += 1


def _escaped(text: str, index: int) -> bool:
    """Whether the character at ``index`` is preceded by an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def locate_keys(text: str) -> dict[str, int]:
    """Map each dotted key in a TOML text to the 1-based line that sets it (first occurrence).

    Tables are included (``"method"`` -> the line of ``[method]``), as are keys of inline tables
    (``"model.parameters.n"``) and dotted keys (``covariance.kind = ...`` inside ``[background]``
    -> ``"background.covariance.kind"``).
    """
    return _KeyScanner(text).scan()


def _shown(text: str, limit: int = 80) -> str:
    """``text`` as typed, shortened in the middle when longer than ``limit`` (a message stays
    readable)."""
    return text if len(text) <= limit else f"{text[: limit - 25]}...{text[-22:]}"


def _nesting(data: Any) -> tuple[list[Any], int] | None:
    """(path, levels) of the deepest table or array when they nest deeper than :data:`MAX_NESTING`.

    Levels count the tables and arrays from the top (``[method]`` is 1); walked without recursion,
    each node linked to its parent so a long path is built once, for the answer.
    """
    # (node, levels, (key, parent link))
    stack: list[tuple[Any, int, tuple | None]] = [(data, 0, None)]
    deepest: tuple[int, tuple | None] = (0, None)
    while stack:
        node, levels, link = stack.pop()
        if levels > deepest[0]:
            deepest = (levels, link)
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        stack.extend(
            (child, levels + 1, (key, link))
            for key, child in items
            if isinstance(child, (dict, list))
        )
    if deepest[0] <= MAX_NESTING:
        return None
    path, link = [], deepest[1]
    while link is not None:
        path.append(link[0])
        link = link[1]
    return path[::-1], deepest[0]


def _dotted(path: Sequence[Any], limit: int = MAX_NESTING + 1) -> str:
    """The dotted key of ``path``: its table keys up to the first array index, cut after
    ``limit`` parts."""
    keys: list[str] = []
    for part in path:
        if not isinstance(part, str):
            return ".".join(keys)
        if len(keys) == limit:
            return ".".join(keys) + "..."
        keys.append(part)
    return ".".join(keys)


def _too_deep(levels: int | str) -> str:
    return (
        f"tables, inline tables and arrays nested {levels} levels deep; "
        f"expected at most {MAX_NESTING} (dacli's keys need 5)"
    )


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse one ``--set key.path=value``; the value is read as TOML, else as a plain string."""
    if "=" not in item:
        raise ConfigError([f"--set {_shown(item)!r}: expected KEY.PATH=VALUE, found no '='"])
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part.strip() for part in key.split(".")):
        raise ConfigError(
            [f"--set {_shown(item)!r}: expected a dotted key such as method.max_steps"]
        )
    text = f"v = {raw.strip()}"
    scanner = _KeyScanner(text)
    scanner.scan()  # refuses deep nesting before tomllib recurses (RecursionError ~300 down)
    levels: int | str | None = scanner.too_deep[2] + key.count(".") if scanner.too_deep else None
    try:
        value = None if levels is not None else tomllib.loads(text)["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:  # the scanner's count stopped short (text it could not follow)
        levels = "too many"
    if levels is not None:
        raise ConfigError([f"--set {_shown(item)}: {_dotted(key.split('.'))}: {_too_deep(levels)}"])
    return [part.strip() for part in key.split(".")], value


def _apply(
    data: dict[str, Any], overrides: Iterable[str]
) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """(copy of ``data`` with the overrides set, problems, {dotted key: override as typed})."""
    import copy

    data = copy.deepcopy(data)
    problems: list[str] = []
    applied: dict[str, str] = {}
    for item in overrides:
        try:
            path, value = parse_override(item)
        except ConfigError as exc:
            problems += exc.problems
            continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                problems.append(f"--set {_shown(item)!r}: {part!r} is a value, not a table")
                break
            node = child
        else:
            node[path[-1]] = value
            applied[".".join(path)] = item
    return data, problems, applied


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` override set (tables created).

    Raises :class:`ConfigError` listing every override that cannot be applied.
    """
    data, problems, _ = _apply(data, overrides)
    if problems:
        raise ConfigError(problems)
    return data


# --- pydantic errors -> messages ------------------------------------------------------------


def _members(annotation: Any) -> list[Any]:
    """The non-None alternatives of an annotation (Annotated and Optional unwrapped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) if a is not type(None) for m in _members(a)]
    return [annotation]


def _member_for_tag(members: list[Any], tag: str) -> Any:
    for kind in (list, dict):
        if tag.startswith(f"{kind.__name__}["):
            return next((m for m in members if typing.get_origin(m) is kind), None)
    return None  # a scalar alternative: nothing further to walk


def _record_for_tag(members: list[Any], tag: str) -> Any:
    """The member of a union of records discriminated on ``kind`` that ``tag`` selects, else
    None."""
    for member in members:
        field = (
            member.model_fields.get("kind")
            if isinstance(member, type) and issubclass(member, BaseModel)
            else None
        )
        if field is not None and tag in typing.get_args(field.annotation):
            return member
    return None


def _clean_loc(loc: Sequence[Any]) -> tuple[tuple[Any, ...], int | None, str | None]:
    """Drop pydantic's union-member tags from an error location.

    Returns (location without tags, length of the location of the union, the tag), the last
    two None when the location crosses no union. The schema is walked to tell a tag (e.g.
    ``'list[float]'``) from a user key that happens to look like one.
    """
    parts = [p for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    clean: list[Any] = []
    union_at, tag = None, None
    annotation: Any = Config
    index = 0
    while index < len(parts):
        members = _members(annotation) if annotation is not None else []
        record = _record_for_tag(members, str(parts[index])) if len(members) > 1 else None
        # a discriminated union: the tag is the record's kind, not a choice to report
        if record is not None:
            annotation = record
            index += 1
            continue
        if len(members) > 1:
            if union_at is None:
                union_at, tag = len(clean), str(parts[index])
            annotation = _member_for_tag(members, str(parts[index]))
            index += 1
            continue
        part = parts[index]
        index += 1
        clean.append(part)
        member = members[0] if members else None
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get(part) if isinstance(part, str) else None
            annotation = field.annotation if field is not None else None
        elif typing.get_origin(member) is dict:
            annotation = typing.get_args(member)[1]
        elif typing.get_origin(member) is list:
            annotation = typing.get_args(member)[0]
        else:
            annotation = None
    return tuple(clean), union_at, tag


def _keys_at(loc: Sequence[Any]) -> list[str]:
    """The keys the table at ``loc`` accepts (for unknown-key suggestions); for a union of records
    (e.g. the covariance kinds), the keys of any of them."""
    models: list[Any] = [Config]
    for part in loc:
        fields = [
            m.model_fields[part] for m in models if isinstance(part, str) and part in m.model_fields
        ]
        models = [
            m
            for f in fields
            for m in _members(f.annotation)
            if isinstance(m, type) and issubclass(m, BaseModel)
        ]
    return list(dict.fromkeys(key for model in models for key in model.model_fields))


def _is_type_error(kind: str) -> bool:
    """The value has the wrong type (as opposed to the right type but a bad value)."""
    return kind.endswith(("_type", "_parsing")) or kind in ("is_instance_of", "literal_error")


def _found(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(error: dict[str, Any], loc: Sequence[Any]) -> str:
    """What was expected and what was found, for one pydantic error at (tag-free) ``loc``."""
    kind = error["type"]
    found = error.get("input")
    if kind == "extra_forbidden":
        dotted = ".".join(str(part) for part in loc)
        removed = REMOVED_KEYS.get(dotted)
        if removed is not None:
            return f"removed key: {removed}; delete it"
        if dotted in RENAMED_KEYS:
            new, why = RENAMED_KEYS[dotted]
            return f"renamed: use {new} ({why})"
        known = _keys_at(loc[:-1])
        hint = suggest(str(loc[-1]), known) if known else ""
        if hint or not known:
            return f"unknown key{hint}"
        return f"unknown key (known keys here: {', '.join(known)})"
    # the discriminator's value (e.g. a covariance kind) is no choice
    if kind == "union_tag_invalid":
        choices = re.findall(r"'([^']*)'", str(error["ctx"]["expected_tags"]))
        key = str(error["ctx"]["discriminator"]).strip("'")
        found = error["input"].get(key) if isinstance(error["input"], dict) else error["ctx"]["tag"]
        return (
            f"input should be {', '.join(repr(c) for c in choices[:-1])} or {choices[-1]!r}, "
            f"found {_found(found)}{suggest(found, choices)}"
        )
    if kind == "missing":
        return "missing required key"
    if kind == "finite_number":
        return f"expected a finite number, found {_found(found)}"
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, ")
    message = error["msg"]
    message = f"{message[0].lower()}{message[1:]}, found {_found(found)}"
    if kind == "literal_error" and isinstance(found, str):
        choices = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        message += suggest(found, choices)
    return message


def _problems(errors: list[dict[str, Any]]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) per problem; the alternatives of a union are merged into one."""
    groups: dict[tuple[Any, ...], list[tuple[tuple[Any, ...], str | None, dict[str, Any]]]] = {}
    for error in errors:
        loc, union_at, tag = _clean_loc(error["loc"])
        if error["type"] == "union_tag_invalid":  # reported at the discriminating key
            loc = (*loc, str(error["ctx"]["discriminator"]).strip("'"))  # e.g. a covariance's kind
        group = loc if union_at is None else loc[:union_at]
        groups.setdefault(group, []).append((loc, tag, error))
    out = []
    for group, items in groups.items():
        if len(items) == 1 and items[0][1] is None:
            loc, _, error = items[0]
            out.append((loc, _message(error, loc)))
            continue
        # A union: report what went wrong in the alternatives whose type matched; if none
        # matched, say which types were acceptable.
        matched = [(loc, error) for loc, _, error in items if not _is_type_error(error["type"])]
        if matched:
            for loc, error in matched:
                entry = (loc, _message(error, loc))
                if entry not in out:
                    out.append(entry)
        else:
            tags = list(dict.fromkeys(str(tag).replace("constrained-", "") for _, tag, _ in items))
            found = items[0][2].get("input")
            out.append((group, f"expected one of {', '.join(tags)}, found {_found(found)}"))
    return out


def _prune(data: dict[str, Any], locs: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """A copy of ``data`` without the keys at ``locs`` (the deepest table entry on each path)."""
    import copy

    data = copy.deepcopy(data)
    for loc in locs:
        node: Any = data
        target = None
        for part in loc:
            if isinstance(node, dict) and part in node:
                target = (node, part)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break  # already removed (or never there): leave the rest alone
        else:
            if target is not None:
                target[0].pop(target[1], None)
    return data


# --- checks across sections --------------------------------------------------------------------


def _whole_steps(value: float, dt: float) -> bool:
    steps = value / dt
    return abs(steps - round(steps)) <= 1e-6 * max(1.0, steps) and round(steps) >= 1


def _too_many_steps(value: float, dt: float, maximum: int, what: str) -> str | None:
    """A message when ``value / dt`` model steps exceed ``maximum`` (inf included), else None."""
    steps = value / dt
    if steps <= maximum:  # False for inf (and nan, which the schema refuses)
        return None
    return (
        f"expected at most {maximum:,} model steps {what}, found {value} "
        f"({steps:.3g} steps of model.dt = {dt})"
    )


def check_window_steps(config: Config) -> list[tuple[str, str]]:
    """Window length and shift must be whole numbers of model steps (one compiled program), and at
    most :data:`~dacli.config.schema.MAX_STEPS_PER_WINDOW` of them."""
    dt = config.model.dt
    problems = []
    for key, value in (
        ("window.length", config.window.length),
        ("window.shift", config.window.shift),
    ):
        if value is None:
            continue
        message = _too_many_steps(value, dt, MAX_STEPS_PER_WINDOW, "per window")
        if message is None and not _whole_steps(value, dt):
            message = f"{value} is not a whole number of model steps (model.dt = {dt})"
        if message:
            problems.append((key, message))
    return problems


def check_simulated_steps(config: Config) -> list[tuple[str, str]]:
    """``dacli simulate`` stores every step of the spin-up and of the run: at most
    :data:`~dacli.config.schema.MAX_SIMULATED_STEPS` of each."""
    if config.simulate is None:
        return []
    dt = config.model.dt
    values = (
        ("simulate.spinup", config.simulate.spinup),
        ("simulate.duration", config.simulate.duration),
    )
    return [
        (key, message)
        for key, value in values
        if (message := _too_many_steps(value, dt, MAX_SIMULATED_STEPS, "simulated"))
    ]


# check -> the keys it reads: skipped when one of them was rejected by the schema (its default
# would stand in for the user's value and the message would be about a value nobody wrote).
BUILTIN_CHECKS = {
    check_window_steps: ("model.dt", "window.length", "window.shift"),
    check_simulated_steps: ("model.dt", "simulate.spinup", "simulate.duration"),
}


# --- paths -----------------------------------------------------------------------------------


def _resolve_paths(data: dict[str, Any], base: Path, only: Iterable[str] | None = None) -> None:
    """Make the input paths absolute relative to ``base`` (only those under the keys ``only``)."""
    only = None if only is None else list(only)
    for *sections, key in PATH_KEYS:
        dotted = ".".join([*sections, key])
        if only is not None and not any(dotted == k or dotted.startswith(k + ".") for k in only):
            continue
        node: Any = data
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(node.get(key), str):
            path = Path(node[key]).expanduser()
            node[key] = os.path.normpath(path if path.is_absolute() else (base / path))


def load(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """The validated, frozen :class:`Config` of the TOML file ``path`` with ``overrides`` set.

    The one way the CLI, the tests and library code get a configuration. ``overrides`` are
    ``--set`` items (``"method.max_steps=50"``, the value read as TOML), applied in order.
    Besides the schema, the rules across sections in :data:`BUILTIN_CHECKS` (windows in whole
    model steps) and the implementation names (:func:`dacli.config.registry.check_names`, with
    "did you mean" suggestions) are checked. When the schema rejects some keys, the checks still
    run on the rest (the rejected keys left out), so one run reports every problem: raises
    :class:`ConfigError` listing each, with the file and line or the ``--set`` item it came from.

    Input paths in the file are relative to the file's folder; input paths given with
    ``--set`` are relative to the working directory; ``output.path`` stays as given (relative
    to the working directory). Not for a dict already in memory: validate it with
    ``Config.model_validate`` (after :func:`apply_overrides`).
    """
    path = Path(path)
    source = str(path)
    try:
        # tolerate the byte-order mark some editors write
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a TOML file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    scanner = _KeyScanner(text)
    lines = scanner.scan()
    try:
        # tomllib would recurse (RecursionError) or take long on it
        if scanner.too_deep is not None:
            raise RecursionError
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        where = f"{path}:{match.group(1)}" if match else str(path)
        raise ConfigError([f"{where}: not valid TOML: {exc}"], source=source) from None
    except RecursionError:
        key, line, levels = scanner.too_deep or ("", 0, "too many")
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(
            [f"{where}: {key or '(top level)'}: {_too_deep(levels)}"], source=source
        ) from None
    nested = _nesting(data)
    if nested is not None:  # before anything copies or validates it (recursively)
        dotted = ".".join(str(p) for p in nested[0])
        located = [k for k in lines if dotted == k or dotted.startswith(k + ".")]
        at = (
            lines[max(located, key=len)]
            if located
            else scanner.too_deep[1]
            if scanner.too_deep
            else None
        )
        where = f"{path}:{at}" if at else str(path)
        raise ConfigError([f"{where}: {_dotted(nested[0])}: {_too_deep(nested[1])}"], source=source)
    _resolve_paths(data, path.resolve().parent)
    data, problems_set, applied = _apply(data, overrides)
    _resolve_paths(data, Path.cwd(), only=applied)
    output = data.get("output")
    # still relative to the working directory otherwise
    for key in ("path", "observation_diagnostics"):
        if (
            isinstance(output, dict)
            and isinstance(output.get(key), str)
            and output[key].startswith("~")
        ):
            output[key] = os.path.expanduser(output[key])

    def origin(key: str) -> tuple[tuple[int, int], str]:
        """(sort key, where the value came from): --set, file:line, or the file."""
        matches = [k for k in applied if key == k or key.startswith(k + ".")]
        if matches:
            return (2, 0), f"--set {_shown(applied[max(matches, key=len)])}"
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            line = lines.get(".".join(parts[:end]))
            if line is not None:
                return (0, line), f"{path}:{line}"
        return (1, 0), str(path)

    found: list[tuple[tuple[int, int], str]] = [((2, -1), p) for p in problems_set]
    nested = _nesting(data)
    # deep values or keys given with --set: refused before validation recurses
    if nested is not None:
        key = ".".join(str(p) for p in nested[0])
        # a long --set key: its tables are the deep ones
        longer = [k for k in applied if k.startswith(key + ".")]
        rank, where = origin(min(longer, key=len) if longer else key)
        found.append((rank, f"{where}: {_dotted(nested[0])}: {_too_deep(nested[1])}"))
        raise ConfigError(
            [text for _, text in sorted(found, key=lambda item: item[0])], source=source
        )
    reported: set[str] = set()
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # pydantic's ErrorDetails (a TypedDict) is a dict; typing cannot say so
        for loc, message in _problems(typing.cast(list[dict[str, Any]], errors)):
            key = ".".join(str(p) for p in loc)
            reported.add(key)
            rank, where = origin(key)
            found.append((rank, f"{where}: {key or '(top level)'}: {message}"))
        config = None
        if not any(e["type"] == "missing" for e in errors):
            try:
                config = Config.model_validate(
                    _prune(data, [_clean_loc(e["loc"])[0] for e in errors])
                )
            except ValidationError:
                config = None

    def rejected(keys: Sequence[str]) -> bool:
        return any(
            r == k or r.startswith(k + ".") or k.startswith(r + ".") or not r
            for r in reported
            for k in keys
        )

    checks = [c for c, keys in BUILTIN_CHECKS.items() if not rejected(keys)] + [check_names]
    problems = [p for check in checks for p in check(config)] if config is not None else []
    for key, message in problems:
        if key not in reported:
            rank, where = origin(key)
            found.append((rank, f"{where}: {key}: {message}"))
    if found or config is None:
        found.sort(key=lambda item: item[0])
        raise ConfigError([text for _, text in found], source=source)
    return config
