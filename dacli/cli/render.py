"""Rendering results for people: a rich table on a terminal, plain lines in batch logs."""

from __future__ import annotations

import dataclasses
import logging
import sys


def _format(value: float) -> str:
    return f"{value:.3g}" if value == value else "nan"


VERDICT_STYLE = {"passed": "[green]{}[/green]", "failed": "[bold red]{}[/bold red]"}


def render_checks(results, terminal: bool) -> None:
    """The check-adjoints table (check, component, value, tolerance, pass/fail) on stderr."""
    if terminal:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="dacli check-adjoints", show_lines=False)
        for column in ("check", "component", "value", "tolerance", "result"):
            table.add_column(
                column, justify="right" if column in ("value", "tolerance") else "left"
            )
        for r in results:
            verdict = VERDICT_STYLE.get(r.status, "[yellow]{}[/yellow]").format(r.status)
            table.add_row(r.check, r.component, _format(r.value), _format(r.tolerance), verdict)
        Console(stderr=True).print(table)
        return
    log = logging.getLogger("dacli")
    for r in results:
        log.info(
            "%s %s | %s | value %s | tolerance %s | %s",
            r.status.upper(),
            r.check,
            r.component,
            _format(r.value),
            _format(r.tolerance),
            r.detail,
        )


def render_failures(results) -> None:
    """One line per failed check, with its numbers, on stderr."""
    for r in results:
        if r.failed:
            sys.stderr.write(
                f"dacli: check failed: {r.check} test of {r.component}: {_format(r.value)} > "
                f"tolerance {_format(r.tolerance)} ({r.detail})\n"
            )


def render_warnings(results) -> None:
    """One warning per check that neither passed nor failed (not applicable, inconclusive, not
    recommended), with its reason: these do not change the exit code."""
    for r in results:
        if not r.passed and not r.failed:
            logging.getLogger("dacli").warning(
                "%s: %s test of %s (%s)", r.status, r.check, r.component, r.detail
            )


def rmse_change(background: float | None, analysis: float | None) -> str:
    """``", RMSE background B -> analysis A"`` for a log line, or ``""`` without a truth."""
    if analysis is None:
        return ""
    return f", RMSE background {background:.4g} -> analysis {analysis:.4g}"


def log_written(files: dict) -> None:
    """One log line ``wrote KIND: PATH`` per file a command wrote."""
    for kind, path in files.items():
        logging.getLogger("dacli").info("wrote %s: %s", kind, path)


def result_json(result) -> dict:
    """A command's result record (a dataclass) as the dict ``--json`` prints, fields in order.

    Nested records become dicts, tuples lists, numpy arrays and scalars Python values (NaN stays
    a float: the printer makes it null). A field's ``metadata["json"]`` changes its treatment:
    ``"optional"`` leaves it out when None; ``"inline"`` merges its record's fields into this
    level (left out when None); ``"skip"`` never prints it; ``metadata["json_name"]`` renames it.
    Not for arbitrary objects: only dataclasses, containers, numbers and strings are converted.
    """
    payload = {}
    for item in dataclasses.fields(result):
        value, how = getattr(result, item.name), item.metadata.get("json")
        if how == "skip" or (value is None and how in ("optional", "inline")):
            continue
        if how == "inline":
            payload.update(result_json(value))
            continue
        payload[item.metadata.get("json_name", item.name)] = _plain(value)
    return payload


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return result_json(value)
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if callable(getattr(value, "tolist", None)):  # a numpy array or scalar (no numpy import here)
        return value.tolist()
    return value
