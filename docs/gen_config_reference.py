"""Write the configuration reference page from the pydantic schema (``dacli.config.schema``).

The schema is the one source of truth for every key, its type, default, bounds and description:
this script walks :class:`dacli.config.schema.Config` and its nested records and renders one
table per TOML section. mkdocs runs it through the mkdocs-gen-files plugin (``mkdocs.yml``);
run it directly (``python docs/gen_config_reference.py``) to print the page.

Do not hand-edit the generated page: change the field's ``description`` in the schema instead.
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
import typing
from dataclasses import dataclass

import annotated_types
import mkdocs_gen_files
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from dacli.config.schema import REMOVED_KEYS, RENAMED_KEYS, Config

PAGE = "reference/configuration.md"

INTRODUCTION = """\
# Configuration reference

*Generated from the pydantic schema, `dacli/config/schema.py`, at every docs build: do not edit
this page; change the field's `description` in the schema.*

A configuration is a TOML file; each table below is one section. Unknown keys are refused
(with a suggestion), `nan` and `inf` are refused for every number, and every problem is listed
at once with `file:line` (exit code 2). Paths inside the file are relative to the file;
`output.path`, `output.observation_diagnostics` and paths given with `--set` are relative to the
working directory. Keys whose value names an implementation (model, ODE solver, minimiser,
adjoints) are strings resolved, case-insensitively and with "did you mean", by the registries
in `dacli/config/registry.py`: the [configuration guide](../configuration.md) and the method
guides list the choices. A section's checks across keys (one of `path` or `state`, a key that
applies to one `kind` only) are stated in its description or reported by `dacli validate`.

Columns: **type** (`a | b` is either; `none` means the key may be left out and then takes the
default), **default** (*required* when the key must be given), **description** (from the
schema, with the bounds of every integer).
"""


@dataclass(frozen=True)
class Section:
    """One TOML table: its dotted name, its record class and whether the table may be left out."""

    name: str
    record: type[BaseModel]
    optional: bool
    note: str = ""


def _is_record(annotation) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def _union_members(annotation) -> tuple:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return (annotation,)


def _records_in(annotation) -> list[type[BaseModel]]:
    """The record classes a field holds: one, or the members of a (discriminated) union."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return [member for member in _union_members(annotation) if _is_record(member)]


def _constraint(metadata) -> str:
    parts = []
    for item in metadata:
        for cls, symbol, attribute in (
            (annotated_types.Gt, ">", "gt"),
            (annotated_types.Ge, ">=", "ge"),
            (annotated_types.Lt, "<", "lt"),
            (annotated_types.Le, "<=", "le"),
        ):
            if isinstance(item, cls):
                bound = getattr(item, attribute)
                parts.append(
                    f"{symbol} {bound:,}" if isinstance(bound, int) else f"{symbol} {bound:g}"
                )
    return ", ".join(parts)


def type_text(annotation, metadata=()) -> str:
    """A short, TOML-flavoured rendering of a field's type (``float > 0 | list[float > 0]``)."""
    if annotation is type(None):
        return "none"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner, *extra = args
        return type_text(inner, [*extra, *metadata])
    if origin is typing.Literal:
        return " | ".join(f'"{value}"' if isinstance(value, str) else str(value) for value in args)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(
            type_text(member, () if member is type(None) else metadata) for member in args
        )
    if origin in (list, tuple):
        return f"list[{type_text(args[0])}]" if args else "list"
    if origin is dict:
        return f"table of {type_text(args[1])}" if args else "table"
    if _is_record(annotation):
        return f"table `{annotation.__name__}`"
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return " | ".join(f'"{member.value}"' for member in annotation)
    name = {str: "string", bool: "bool", int: "int", float: "float"}.get(annotation, None)
    if name is None:
        name = getattr(annotation, "__name__", str(annotation)).replace("typing.", "")
    bound = _constraint(metadata)
    return f"{name} {bound}" if bound else name


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "*required*"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(table defaults)"
    else:
        value = field.default
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, dict) and not value:
        return "`{}`"
    if isinstance(value, enum.Enum):
        return f'`"{value.value}"`'
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _first_paragraph(record: type[BaseModel]) -> str:
    doc = record.__doc__
    if not doc or doc is BaseModel.__doc__ or record.__doc__ == _base_doc(record):
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")


def _base_doc(record: type[BaseModel]) -> str | None:
    """The docstring a record inherits unchanged (not its own: e.g. the shared base record's)."""
    for base in record.__mro__[1:]:
        if "__doc__" in vars(base) and base.__doc__:
            return base.__doc__
    return None


def sections(
    record: type[BaseModel] = Config, prefix: str = "", optional: bool = False
) -> list[Section]:
    """Every table under ``record``, depth first, in schema order; union members once each."""
    found = [] if not prefix else [Section(prefix, record, optional)]
    for key, field in record.model_fields.items():
        records = _records_in(field.annotation)
        if not records or field.exclude:
            continue
        name = f"{prefix}.{key}" if prefix else key
        may_be_absent = type(None) in _union_members(field.annotation) or not field.is_required()
        if len(records) == 1:
            found.extend(sections(records[0], name, may_be_absent))
            continue
        for member in records:  # a discriminated union: one table per member
            discriminator = _discriminator(member, field)
            note = f"when {discriminator}" if discriminator else member.__name__
            for section in sections(member, name, may_be_absent):
                found.append(
                    Section(
                        section.name,
                        section.record,
                        section.optional,
                        note if section.name == name else section.note,
                    )
                )
    return found


def _discriminator(member: type[BaseModel], field: FieldInfo) -> str:
    key = field.discriminator if isinstance(field.discriminator, str) else None
    if key is None:
        for candidate, info in member.model_fields.items():
            if (
                typing.get_origin(info.annotation) is typing.Literal
                and len(typing.get_args(info.annotation)) == 1
            ):
                key = candidate
                break
    if key is None or key not in member.model_fields:
        return ""
    values = typing.get_args(member.model_fields[key].annotation)
    return " or ".join(f'{key} = "{value}"' for value in values)


def render_section(section: Section) -> list[str]:
    title = f"## `[{section.name}]`" + (f" — {section.note}" if section.note else "")
    lines = [title, ""]
    about = _first_paragraph(section.record)
    presence = (
        "Optional table."
        if section.optional
        else "Required table."
        if "." not in section.name
        else ""
    )
    intro = " ".join(part for part in (presence, about) if part)
    if intro:
        lines += [intro, ""]
    rows, moved = [], []
    for key, field in section.record.model_fields.items():
        if field.exclude:
            moved.append(f"- `{key}`: {field.description or 'no longer accepted'}")
            continue
        records = _records_in(field.annotation)
        if records and not _plain_values(field.annotation):
            where = f"see `[{section.name}.{key}]`" + (
                ", one table per kind" if len(records) > 1 else ""
            )
            rows.append(f"| `{key}` | table | {where} | {_cell(field.description or '')} |")
            continue
        rows.append(
            f"| `{key}` | {_cell(type_text(field.annotation, field.metadata))} | "
            f"{_cell(default_text(field))} | {_cell(field.description or '')} |"
        )
    lines += ["| key | type | default | description |", "|---|---|---|---|", *rows, ""]
    if moved:
        lines += ["Keys refused with a pointer to their new place:", "", *moved, ""]
    removed = [
        f"- `{dotted.rpartition('.')[2]}`: {why}"
        for dotted, why in REMOVED_KEYS.items()
        if dotted.rpartition(".")[0] == section.name
    ]
    if removed:
        lines += ["Keys removed (refused, saying why):", "", *removed, ""]
    renamed = [
        f"- `{dotted.rpartition('.')[2]}`: use `{new}` ({why})"
        for dotted, (new, why) in RENAMED_KEYS.items()
        if dotted.rpartition(".")[0] == section.name
    ]
    if renamed:
        lines += ["Keys renamed (refused, saying the new name):", "", *renamed, ""]
    return lines


def _plain_values(annotation) -> bool:
    return any(
        not _is_record(member) and member is not type(None) for member in _union_members(annotation)
    )


def render() -> str:
    lines = [INTRODUCTION]
    top = [f"`[{section.name}]`" for section in sections() if "." not in section.name]
    lines += ["Sections: " + ", ".join(dict.fromkeys(top)) + ".", ""]
    for section in sections():
        lines += render_section(section)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
else:  # run by mkdocs-gen-files during `mkdocs build`
    with mkdocs_gen_files.open(PAGE, "w") as page:
        page.write(render())
