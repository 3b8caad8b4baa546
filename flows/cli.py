"""``ctparquet``: the command line. Human output by default; ``--json`` ends with one JSON line."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
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
    lookback_days: Annotated[
        int | None,
        typer.Option(
            "--lookback-days",
            min=0,
            help="Delivery days to list back from today (default CTPARQUET_LOOKBACK_DAYS, 2); "
            "0 = every day under SOURCE.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes converting batches in parallel (default CTPARQUET_WORKERS, 1): "
            "give a big run the machine's cores.",
        ),
    ] = None,
) -> None:
    """Convert the CloudTrail log objects under SOURCE not converted yet into DEST."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if workers is not None:  # settings are read from the environment, in the flow too
        os.environ["CTPARQUET_WORKERS"] = str(workers)
    started = time.perf_counter()
    with _progress("converting", "objects", hidden=as_json) as on_progress:
        try:
            summary = _run_ingest(source, dest, on_progress, no_prefect, lookback_days)
        except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
            _fail(error, as_json)
    _finish_run(summary, started, as_json, _print_ingest)


def _finish_run(
    summary: dict[str, Any],
    started: float,
    as_json: bool,
    print_human: Callable[[dict[str, Any]], None],
) -> NoReturn:
    """End a converting command: the summary (JSON last line, or for people), the exit code."""
    summary["wall_seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        _out.file.write(json.dumps(summary) + "\n")
    else:
        print_human(summary)
    raise typer.Exit(EXIT_PROBLEMS if summary["problems_count"] else EXIT_OK)


def _run_ingest(
    source: str, dest: str, on_progress: Any, no_prefect: bool, lookback_days: int | None
) -> dict[str, Any]:
    if no_prefect:
        from flows.run import run_ingest

        return run_ingest(source, dest, progress=on_progress, lookback_days=lookback_days).as_json()
    from flows.ingest import ingest as ingest_flow
    from flows.ingest import set_progress_hook

    set_progress_hook(on_progress)
    try:
        result: dict[str, Any] = ingest_flow(source, dest, lookback_days=lookback_days)
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
        + (f"Table: {summary['events_table']}" if "events_table" in summary else "No table yet."),
        highlight=False,
    )
    if summary.get("insight_events_written"):
        _out.print(
            f"Wrote {summary['insight_events_written']:,} Insights events into "
            f"{summary['insights_table']}",
            highlight=False,
        )
    for entry in summary.get("catalog", []):
        _out.print(
            f"Glue table {entry['database']}.{entry['table']}: {entry['action']}", highlight=False
        )
    source, table = summary["requests"]["source"], summary["requests"]["table"]
    units = (
        f"{summary['units']:,} units ({summary['units_failed']} failed); "
        if "units" in summary
        else ""
    )
    requests = (
        f"; S3 requests: {source['list']:,} LIST and {source['get']:,} GET on the logs, "
        f"{table['total']:,} on the table"
        if source["total"] + table["total"]
        else ""
    )
    _out.print(
        f"{units}{summary['days_listed']:,} day folders listed, {summary['days_complete']:,} "
        f"already complete{requests}.",
        highlight=False,
    )
    if outside := summary.get("days_outside_window"):
        _out.print(
            f"[yellow]{outside['days']:,} delivery days older than the window[/yellow] "
            f"({outside['first']} to {outside['last']}) were not listed. To convert them: "
            f"{outside['command']} (or run ingest once with --lookback-days 0).",
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


@app.command()
def compact(
    dest: Annotated[str, typer.Argument(help="Folder or s3:// URL of the table (as for ingest).")],
    before: Annotated[
        str | None,
        typer.Option(help="Compact days before this YYYY-MM-DD (default: all but the last two)."),
    ] = None,
    target_mb: Annotated[
        int, typer.Option("--target-mb", help="File size to aim for, 1-512 MB.")
    ] = 128,
    as_json: JsonFlag = False,
    no_prefect: Annotated[
        bool, typer.Option("--no-prefect", help="Run without Prefect (no API server start).")
    ] = False,
) -> None:
    """Rewrite closed days' small files into large sorted files, each eventID once."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        if no_prefect:
            from datetime import date

            from flows.compact import run_compact

            result = run_compact(
                dest, before=date.fromisoformat(before) if before else None, target_mb=target_mb
            ).as_json()
        else:
            from flows.compact import compact as compact_flow

            result = compact_flow(dest, before, target_mb)
    except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
        _fail(error, as_json)
    if as_json:
        _out.file.write(json.dumps(result) + "\n")
    else:
        _out.print(
            f"Compacted {result['partitions_compacted']} of {result['partitions_seen']} "
            f"partitions (before {result['before']}): {result['files_before']} files -> "
            f"{result['files_after']}, {result['bytes_after'] / 1e6:.1f} MB, "
            f"{result['duplicates_dropped']} duplicates dropped, in {result['seconds']:.1f} s.",
            highlight=False,
        )
        for problem in result["problems"][:10]:
            _out.print(f"  {problem['key']}: {problem['reason']}", highlight=False)
    raise typer.Exit(EXIT_PROBLEMS if result["problems_count"] else EXIT_OK)


class TableKind(StrEnum):
    events = "events"
    insights = "insights"


KindOption = Annotated[
    TableKind,
    typer.Option("--kind", help="The API events table, or the CloudTrail Insights events table."),
]
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
    with _progress("re-driving", "quarantine files", hidden=as_json) as on_progress:
        try:
            summary = _run_redrive(dest, on_progress, no_prefect)
        except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
            _fail(error, as_json)
    _finish_run(summary, started, as_json, _print_redrive)


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
    kind: KindOption = TableKind.events,
    as_json: JsonFlag = False,
) -> None:
    """Run Athena SQL over the table locally (DuckDB); any table name means the --kind table."""
    from flows.query import run_query
    from flows.render import render_csv, render_json_lines, render_table, rows_as_json

    try:
        result = run_query(dest, sql, kind.value)
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


RegionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--region",
        help="A region to project besides those present (repeatable), e.g. one with no data yet.",
    ),
]


@app.command()
def ddl(
    dest: Annotated[str, typer.Argument(help="Folder or s3:// URL of the table (as for ingest).")],
    database: Annotated[
        str | None, typer.Option("--database", help="Qualify the table with this database.")
    ] = None,
    table: Annotated[str, typer.Option("--table", help="The table's name.")] = "cloudtrail_logs",
    kind: KindOption = TableKind.events,
    region: RegionOption = None,
) -> None:
    """Print the CREATE EXTERNAL TABLE statement (Hive DDL, as Athena runs it) for DEST's table.

    Partitions are projected: the regions present (or the standard AWS regions
    for an empty table) plus --region ones, years through next year.
    """
    from flows.register import render_ddl

    try:
        statement, problems, warnings = render_ddl(
            dest, table=table, database=database, kind=kind.value, regions=region or ()
        )
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json=False)
    _out.file.write(statement + ";\n")
    for line in warnings + [f"{p.key}: {p.reason}" for p in problems]:
        _err.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
    raise typer.Exit(EXIT_PROBLEMS if problems else EXIT_OK)


@app.command()
def register(
    dest: Annotated[str, typer.Argument(help="s3:// URL of the table (as for ingest).")],
    database: Annotated[str, typer.Option("--database", help="Glue database (created if needed).")],
    table: Annotated[str, typer.Option("--table", help="Glue table name.")],
    kind: KindOption = TableKind.events,
    region: RegionOption = None,
    athena_workgroup: Annotated[
        str | None,
        typer.Option(
            "--athena-workgroup",
            help="Make the changes by running DDL in this Athena workgroup, not with Glue's API.",
        ),
    ] = None,
    athena_output: Annotated[
        str | None,
        typer.Option(
            "--athena-output", help="s3:// URL for query results, if the workgroup sets none."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create or update DEST's table in the Glue Data Catalog, with partition projection.

    Idempotent: a second run changes nothing. Partitions the projection would
    not cover (data Athena would not see) are listed, and the exit status is 3.
    """
    from flows.register import AthenaDDL, register_table

    try:
        athena = AthenaDDL(athena_workgroup, output=athena_output) if athena_workgroup else None
        done = register_table(
            dest,
            database=database,
            table=table,
            kind=kind.value,
            regions=region or (),
            athena=athena,
        )
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json)
    summary = done.as_json()
    if as_json:
        _out.file.write(json.dumps(summary) + "\n")
    else:
        created = " (database created)" if done.database_created else ""
        _out.print(
            f"Glue table {done.database}.{done.table}: {done.action}{created} (via {done.via}).\n"
            f"Location: {done.location}\n"
            f"Projects {len(done.projection.regions)} regions, years "
            f"{done.projection.first_year}-{done.projection.last_year}.",
            highlight=False,
        )
        for warning in done.warnings:
            _err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        for problem in done.problems[:20]:
            _out.print(f"  {problem.key}: {problem.reason}", highlight=False)
    raise typer.Exit(EXIT_PROBLEMS if done.problems else EXIT_OK)


@app.command()
def backfill(
    source: Annotated[str, typer.Argument(help="Folder or s3:// URL holding AWSLogs/… objects.")],
    dest: Annotated[str, typer.Argument(help="Folder or s3:// URL of the table (events/ below).")],
    start: Annotated[
        datetime, typer.Option("--start", formats=["%Y-%m-%d"], help="First delivery day.")
    ],
    end: Annotated[
        datetime, typer.Option("--end", formats=["%Y-%m-%d"], help="Last delivery day (included).")
    ],
    account: Annotated[
        list[str] | None, typer.Option("--account", help="Only this account (repeatable).")
    ] = None,
    region: Annotated[
        list[str] | None, typer.Option("--region", help="Only this region (repeatable).")
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            help="Run units on a Dask cluster: a scheduler address (tcp://host:8786) or 'local' "
            "(a LocalCluster here). Default: CTPARQUET_DASK_ADDRESS, else threads here.",
        ),
    ] = None,
    as_json: JsonFlag = False,
    no_prefect: Annotated[
        bool,
        typer.Option("--no-prefect", help="Run the units one by one without Prefect."),
    ] = False,
) -> None:
    """Convert the delivery days START..END of the trail under SOURCE into DEST (resumable)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    started = time.perf_counter()
    with _progress("backfill", "units", hidden=as_json) as on_progress:
        try:
            summary = _run_backfill(
                source=source,
                dest=dest,
                start=start.date(),
                end=end.date(),
                accounts=account,
                regions=region,
                dask=dask,
                no_prefect=no_prefect,
                on_progress=on_progress,
            )
        except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
            _fail(error, as_json)
    _finish_run(summary, started, as_json, _print_ingest)


def _run_backfill(
    *,
    source: str,
    dest: str,
    start: date,
    end: date,
    accounts: list[str] | None,
    regions: list[str] | None,
    dask: str | None,
    no_prefect: bool,
    on_progress: Any,
) -> dict[str, Any]:
    from flows.backfill import run_backfill, set_progress_hook, with_dask
    from flows.settings import Settings

    if no_prefect:
        return run_backfill(
            source, dest, start, end, accounts=accounts, regions=regions, progress=on_progress
        ).as_json()
    settings = Settings()  # read from the environment
    address = dask or settings.dask_address
    with _prefect_api_for_workers(address):
        set_progress_hook(on_progress)
        try:
            result: dict[str, Any] = with_dask(address, settings)(
                source, dest, start, end, accounts=accounts, regions=regions
            )
        finally:
            set_progress_hook(None)
    return result


@contextlib.contextmanager
def _prefect_api_for_workers(address: str | None) -> Iterator[None]:
    """Give Dask workers a running Prefect API: else each starts its own (10+ s apiece)."""
    if not address or os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)  # the run's last logs, while the server listens
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


@contextlib.contextmanager
def _progress(label: str, unit: str, *, hidden: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (never with --json, nor off a terminal); yields its updater."""
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=_err,
        transient=True,
        disable=hidden or not _err.is_terminal,
    ) as bar:
        job = bar.add_task(label, total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total)

        yield on_progress


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
