"""Rendering results for people: a rich table on a terminal, plain lines in batch logs."""

from __future__ import annotations

import logging
import sys


def _format(value: float) -> str:
    return f"{value:.3g}" if value == value else "nan"


def render_checks(results, terminal: bool) -> None:
    """The check-adjoints table (check, component, value, tolerance, pass/fail) on stderr."""
    if terminal:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="dacli check-adjoints", show_lines=False)
        for column in ("check", "component", "value", "tolerance", "result"):
            table.add_column(column, justify="right" if column in ("value", "tolerance") else "left")
        for r in results:
            verdict = "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"
            table.add_row(r.check, r.component, _format(r.value), _format(r.tolerance), verdict)
        Console(stderr=True).print(table)
        return
    log = logging.getLogger("dacli")
    for r in results:
        log.info("%s %s | %s | value %s | tolerance %s | %s", "PASS" if r.passed else "FAIL", r.check,
                 r.component, _format(r.value), _format(r.tolerance), r.detail)


def render_failures(results) -> None:
    """One line per failed check, with its numbers, on stderr."""
    for r in results:
        if not r.passed:
            sys.stderr.write(f"dacli: check failed: {r.check} test of {r.component}: {_format(r.value)} > "
                             f"tolerance {_format(r.tolerance)} ({r.detail})\n")
