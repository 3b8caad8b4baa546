"""``ctparquet``: the command line. Human output by default; ``--json`` ends with one JSON line."""

from __future__ import annotations

import json
import os
import time
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_PROBLEMS = 3
"""Exit statuses: all converted; the run failed; the run finished but reported problems.

2 is left to usage errors (click's own status). 3, not 2, for problems: a script
can tell "the good data is in, look at the quarantine" from a mistyped command.
"""

app = typer.Typer(
    help="Convert AWS CloudTrail logs into a partitioned Parquet table for Athena.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _commands() -> None:
    """Convert AWS CloudTrail logs into a partitioned Parquet table for Athena."""


_out = Console()
_err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="End stdout with one JSON summary line.")]


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="Folder or s3:// URL holding AWSLogs/… objects.")],
    dest: Annotated[str, typer.Argument(help="Folder or s3:// URL of the table (events/ below).")],
    as_json: JsonFlag = False,
    no_prefect: Annotated[
        bool,
        typer.Option(
            "--no-prefect",
            help="Run the same conversion without Prefect (no API server start, no run record).",
        ),
    ] = False,
) -> None:
    """Convert every CloudTrail log object under SOURCE not converted yet into DEST."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]converting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("objects"),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
        disable=as_json or not _err.is_terminal,
    ) as bar:
        job = bar.add_task("convert", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        try:
            summary = _run_ingest(source, dest, on_progress, no_prefect)
        except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
            _fail(error, as_json)
    summary["wall_seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        _out.file.write(json.dumps(summary) + "\n")
    else:
        _print_ingest(summary)
    raise typer.Exit(EXIT_PROBLEMS if summary["problems_count"] else EXIT_OK)


def _run_ingest(source: str, dest: str, on_progress: Any, no_prefect: bool) -> dict[str, Any]:
    if no_prefect:
        from flows.ingest import run_ingest

        return run_ingest(source, dest, progress=on_progress).as_json()
    from flows.ingest import ingest as ingest_flow
    from flows.ingest import set_progress_hook

    set_progress_hook(on_progress)
    try:
        result: dict[str, Any] = ingest_flow(source, dest)
    finally:
        set_progress_hook(None)
    return result


def _print_ingest(summary: dict[str, Any]) -> None:
    skipped = ", ".join(f"{n} {reason}" for reason, n in summary["objects_skipped"].items())
    _out.print(
        f"Converted {summary['objects_converted']:,} of {summary['objects_seen']:,} objects "
        f"({skipped or 'none skipped'}).\n"
        f"Wrote {summary['events_written']:,} events into {summary['partitions_written']} "
        f"partitions ({summary['files_written']} files, {summary['bytes_written'] / 1e6:.1f} MB); "
        f"{summary['duplicates_dropped']:,} duplicate eventIDs dropped.\n"
        f"Read {summary['events_read']:,} events in {summary['seconds']:.1f} s "
        f"({summary['events_per_second']:,} events/s; {summary['wall_seconds']:.1f} s in all).\n"
        f"Table: {summary['events_table']}",
        highlight=False,
    )
    _print_problems(summary)
    if summary.get("objects_quarantined"):
        _out.print(
            f"{summary['objects_quarantined']:,} objects quarantined: see _quarantine/ beside "
            "the table; `ctparquet redrive DEST` after a fix.",
            highlight=False,
        )


def _print_problems(summary: dict[str, Any]) -> None:
    if summary["problems_count"]:
        _out.print(f"[yellow]{summary['problems_count']} problems[/yellow] (first ones):")
        for problem in summary["problems"][:10]:
            where = f" record {problem['record']}" if "record" in problem else ""
            _out.print(f"  {problem['key']}{where}: {problem['reason']}", highlight=False)


# --- redrive (issue 7) ----------------------------------------------------------------


@app.command()
def redrive(
    dest: Annotated[str, typer.Argument(help="Folder or s3:// URL of the table (as for ingest).")],
    as_json: JsonFlag = False,
    no_prefect: Annotated[
        bool,
        typer.Option(
            "--no-prefect",
            help="Run the same re-drive without Prefect (no API server start, no run record).",
        ),
    ] = False,
) -> None:
    """Re-drive the objects quarantined under DEST/_quarantine/ and convert what now converts."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]re-driving"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("quarantine files"),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
        disable=as_json or not _err.is_terminal,
    ) as bar:
        job = bar.add_task("redrive", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        try:
            summary = _run_redrive(dest, on_progress, no_prefect)
        except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
            _fail(error, as_json)
    summary["wall_seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        _out.file.write(json.dumps(summary) + "\n")
    else:
        _print_redrive(summary)
    raise typer.Exit(EXIT_PROBLEMS if summary["problems_count"] else EXIT_OK)


def _run_redrive(dest: str, on_progress: Any, no_prefect: bool) -> dict[str, Any]:
    if no_prefect:
        from flows.redrive import run_redrive

        return run_redrive(dest, progress=on_progress).as_json()
    from flows.redrive import redrive as redrive_flow
    from flows.redrive import set_progress_hook

    set_progress_hook(on_progress)
    try:
        result: dict[str, Any] = redrive_flow(dest)
    finally:
        set_progress_hook(None)
    return result


def _print_redrive(summary: dict[str, Any]) -> None:
    _out.print(
        f"Re-drove {summary['objects_seen']:,} quarantined objects "
        f"({summary['quarantine_files']} quarantine files): "
        f"{summary['objects_cleared']:,} cleared, "
        f"{summary['objects_replaced']:,} replaced since (ingest converts them), "
        f"{summary['still_quarantined']:,} still quarantined.\n"
        f"Wrote {summary['events_written']:,} events into {summary['partitions_written']} "
        f"partitions; {summary['duplicates_dropped']:,} duplicate eventIDs dropped.\n"
        f"Quarantine: {summary['quarantine']}",
        highlight=False,
    )
    _print_problems(summary)


# --- query ----------------------------------------------------------------------------


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    dest: Annotated[str, typer.Argument(help="Folder or s3:// URL of the table (as for ingest).")],
    sql: Annotated[str, typer.Argument(help="One Athena (Trino) SQL statement.")],
    output: Annotated[
        OutputFormat, typer.Option("--format", help="Rows as an aligned table, CSV or JSON lines.")
    ] = OutputFormat.table,
    as_json: JsonFlag = False,
) -> None:
    """Run Athena SQL over the table locally (DuckDB); any table name means the events table."""
    from flows.query import run_query
    from flows.render import render_csv, render_json_lines, render_table, rows_as_json

    try:
        result = run_query(dest, sql)
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json)
    rendered = {
        OutputFormat.table: render_table,
        OutputFormat.csv: render_csv,
        OutputFormat.json: render_json_lines,
    }[output](result.table)
    _out.file.write(rendered)
    if as_json:
        summary = {
            "columns": result.table.column_names,
            "row_count": result.table.num_rows,
            "rows": rows_as_json(result.table),
            "seconds": round(result.seconds, 3),
            "duckdb_sql": result.sql,
        }
        _out.file.write(json.dumps(summary) + "\n")
    elif output is OutputFormat.table:
        _err.print(f"{result.table.num_rows} rows in {result.seconds:.2f} s", highlight=False)


def _fail(error: Exception, as_json: bool) -> NoReturn:
    message = f"{type(error).__name__}: {error}"
    _err.print(f"[red]failed:[/red] {message}", highlight=False)
    if as_json:
        _out.file.write(json.dumps({"error": message}) + "\n")
    raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="ctparquet")


if __name__ == "__main__":
    main()
