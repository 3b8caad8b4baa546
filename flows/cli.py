"""``ctparquet``: the command line. Human output by default; ``--json`` ends with one JSON line."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from click.exceptions import Exit

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_PROBLEMS = 3
"""Exit statuses: all converted; the run failed; the run finished but reported problems.

2 is left to usage errors (click's own status). 3, not 2, for problems: a script
can tell "the good data is in, look at the quarantine" from a mistyped command.
"""

_Function = TypeVar("_Function", bound=Callable[..., Any])


class _Argument(click.Argument):
    """An argument with a help text, listed under "Arguments:" above the options."""

    def __init__(self, param_decls: Sequence[str], *, help: str, **attrs: Any) -> None:
        super().__init__(param_decls, **attrs)
        self.help = help

    def get_help_record(self, ctx: click.Context) -> tuple[str, str]:
        required = "  [required]" if self.required else ""
        return f"{self.human_readable_name} <str>", f"{self.help}{required}"


class _Command(click.Command):
    """Help as people know it from other tools: ``SOURCE DEST`` in capitals, no braces (click's
    own usage line), and each argument's help in an "Arguments:" section above the options."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                (arguments if isinstance(param, click.Argument) else options).append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Nothing: ``format_options`` lists them (click 8.5+ would list them twice)."""


class _Group(click.Group):
    """Every ``@app.command()`` gets the conventional help of ``_Command``; the commands are
    listed in the order they are defined here (click sorts them by name)."""

    command_class = _Command

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


def _argument(name: str, help: str) -> Callable[[_Function], _Function]:
    return click.argument(name, cls=_Argument, help=help)


def _day_option(
    name: str, help: str, *, required: bool = False, metavar: str | None = None
) -> Callable[[_Function], _Function]:
    """An option taking one day, YYYY-MM-DD."""
    return click.option(
        name, type=click.DateTime(["%Y-%m-%d"]), required=required, metavar=metavar or _DAY,
        help=help,
    )  # fmt: skip


def _print_version(ctx: click.Context, _param: click.Parameter, asked: bool) -> None:
    if asked and not ctx.resilient_parsing:
        from importlib.metadata import version

        print(f"ctparquet {version('cloudtrail-parquet')}")
        ctx.exit(EXIT_OK)


@click.group(cls=_Group, name="ctparquet", no_args_is_help=True)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version and exit.",
)
def app() -> None:
    """Convert AWS CloudTrail logs into a partitioned Parquet table for Athena."""


@functools.cache
def _console(stderr: bool) -> Console:
    """Rich prints the human output; imported only then (``--json`` runs never need it)."""
    from rich.console import Console

    return Console(stderr=stderr)


def _out() -> Console:
    return _console(stderr=False)


def _err() -> Console:
    return _console(stderr=True)


_SOURCE = "Folder or s3:// URL holding AWSLogs/… objects."
_NEW_TABLE = "Folder or s3:// URL of the table (events/ below)."
_TABLE = "Folder or s3:// URL of the table (as for ingest)."
_DAY = "<%Y-%m-%d>"
"""An optional day's metavar. This one, ``<str>`` and ``<int>`` are the value types typer
showed where no metavar was given: kept, the help reads as it did."""

_json_flag = click.option(
    "--json", "as_json", is_flag=True, help="End stdout with one JSON summary line."
)

# --- Prefect or not: the same code, with or without a run record --------------------------

_prefect_option = click.option(
    "--prefect/--no-prefect",
    default=None,
    help="Run as a Prefect flow, with a run record (default: when PREFECT_API_URL is set, "
    "in the environment or the Prefect profile). With no API to report to, Prefect "
    "starts a temporary server first (about 14 s).",
)


def _use_prefect(asked: bool | None) -> bool:
    """Run the Prefect flow when asked to, or when a Prefect API is configured; else say so."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if asked is None:
        asked = prefect_api_configured()
        if not asked:
            # Plain, not rich: a --json run would import rich (about 0.05 s) for this line.
            sys.stderr.write(
                "Running without Prefect (no PREFECT_API_URL); pass --prefect for a run record.\n"
            )
            sys.stderr.flush()  # ahead of anything on stdout, as rich's print was
    # Prefect's temporary server gets 20 s to start by default: too few on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
    return asked


def prefect_api_configured() -> bool:
    """Is a Prefect API configured? Answered without importing Prefect (2-3 s of start-up)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    loaded = sys.modules.get("prefect.settings")
    if loaded is not None:  # a caller that runs Prefect already (a test harness): ask it
        return bool(loaded.get_current_settings().api.url)
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    return bool(profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


# --- AWS: a profile and a region, for s3fs and boto3 alike --------------------------------

_profile_option = click.option(
    "--profile",
    envvar="CTPARQUET_AWS_PROFILE",
    show_envvar=True,
    metavar="NAME",
    help="AWS profile (from ~/.aws/config) for S3, Glue and Athena; over the environment's "
    "keys, as the AWS CLI's --profile. Default: the AWS default chain.",
)
_REGION_HELP = (
    "AWS region of the clients (S3, Glue, Athena). Default: AWS_DEFAULT_REGION, else the profile's."
)
_aws_region_option = click.option(
    "--region",
    "--aws-region",
    "region",
    envvar="CTPARQUET_AWS_REGION",
    show_envvar=True,
    metavar="R",
    help=_REGION_HELP,
)
_aws_region_only_option = click.option(
    "--aws-region",
    "aws_region",
    envvar="CTPARQUET_AWS_REGION",
    show_envvar=True,
    metavar="R",
    help=_REGION_HELP,
)
"""For the commands whose ``--region`` names regions of the data."""


def _use_aws(profile: str | None, region: str | None) -> None:
    """Settings are read from the environment (in flows and worker processes too)."""
    if profile:
        os.environ["CTPARQUET_AWS_PROFILE"] = profile
    if region:
        os.environ["CTPARQUET_AWS_REGION"] = region


@app.command()
@_argument("source", _SOURCE)
@_argument("dest", _NEW_TABLE)
@_json_flag
@_prefect_option
@click.option(
    "--lookback-days",
    type=click.IntRange(min=0),
    metavar="N",
    envvar="CTPARQUET_LOOKBACK_DAYS",
    show_envvar=True,
    help="Delivery days to list back from today (default 2: today and yesterday); "
    "0 = every day under SOURCE.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    envvar="CTPARQUET_WORKERS",
    show_envvar=True,
    help="Workers converting batches in parallel: processes pinned one per core, or "
    "threads where a fork is not safe (default: one per usable core when more than one "
    "batch is pending, else 1).",
)
@_profile_option
@_aws_region_option
def ingest(
    source: str,
    dest: str,
    as_json: bool,
    prefect: bool | None,
    lookback_days: int | None,
    workers: int | None,
    profile: str | None,
    region: str | None,
) -> None:
    """Convert the CloudTrail log objects under SOURCE not converted yet into DEST."""
    use_prefect = _use_prefect(prefect)
    _use_aws(profile, region)
    if workers is not None:  # settings are read from the environment, in the flow too
        os.environ["CTPARQUET_WORKERS"] = str(workers)
    started = time.perf_counter()
    with _progress("converting", "objects", hidden=as_json) as on_progress:
        try:
            summary = _run_ingest(source, dest, on_progress, not use_prefect, lookback_days)
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
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        print_human(summary)
    raise Exit(EXIT_PROBLEMS if summary["problems_count"] else EXIT_OK)


def _run_ingest(
    source: str, dest: str, on_progress: Any, no_prefect: bool, lookback_days: int | None
) -> dict[str, Any]:
    if no_prefect:
        from flows.run import run_ingest

        _loaded()
        return run_ingest(source, dest, progress=on_progress, lookback_days=lookback_days).as_json()
    from flows.ingest import ingest as ingest_flow
    from flows.ingest import set_progress_hook

    _loaded()
    set_progress_hook(on_progress)
    try:
        result: dict[str, Any] = ingest_flow(source, dest, lookback_days=lookback_days)
    finally:
        set_progress_hook(None)
    return result


def _print_ingest(summary: dict[str, Any]) -> None:
    skipped = ", ".join(f"{n} {reason}" for reason, n in summary["objects_skipped"].items())
    _out().print(
        f"Converted {summary['objects_converted']:,} of {summary['objects_seen']:,} objects "
        f"({skipped or 'none skipped'}).\n"
        f"Wrote {summary['events_written']:,} events into {summary['partitions_written']} "
        f"partitions ({summary['files_written']} files, {summary['bytes_written'] / 1e6:.1f} MB); "
        f"{summary['duplicates_dropped']:,} duplicate eventIDs dropped.\n"
        f"Read {summary['events_read']:,} events in {summary['seconds']:.1f} s "
        f"({summary['events_per_second']:,} events/s; {summary['wall_seconds']:.1f} s in all; "
        f"workers: {summary.get('workers') or 'none'}).\n"
        + (f"Table: {summary['events_table']}" if "events_table" in summary else "No table yet."),
        highlight=False,
    )
    if summary.get("insight_events_written"):
        _out().print(
            f"Wrote {summary['insight_events_written']:,} Insights events into "
            f"{summary['insights_table']}",
            highlight=False,
        )
    for entry in summary.get("catalog", []):
        _out().print(
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
    _out().print(
        f"{units}{summary['days_listed']:,} day folders listed, {summary['days_complete']:,} "
        f"already complete{requests}.",
        highlight=False,
    )
    if outside := summary.get("days_outside_window"):
        _out().print(
            f"[yellow]{outside['days']:,} delivery days older than the window[/yellow] "
            f"({outside['first']} to {outside['last']}) were not listed. To convert them: "
            f"{outside['command']} (or run ingest once with --lookback-days 0).",
            highlight=False,
        )
    _print_problems(summary)
    if summary.get("objects_quarantined"):
        _out().print(
            f"{summary['objects_quarantined']:,} objects quarantined: see _quarantine/ beside "
            "the table; `ctparquet redrive DEST` after a fix.",
            highlight=False,
        )


def _print_problems(summary: dict[str, Any]) -> None:
    if summary["problems_count"]:
        _out().print(f"[yellow]{summary['problems_count']} problems[/yellow] (first ones):")
        for problem in summary["problems"][:10]:
            where = f" record {problem['record']}" if "record" in problem else ""
            _out().print(f"  {problem['key']}{where}: {problem['reason']}", highlight=False)


@app.command()
@_argument("dest", _TABLE)
@click.option(
    "--before",
    metavar="<str>",
    help="Compact days before this YYYY-MM-DD (default: all but the last two).",
)
@click.option(
    "--target-mb",
    type=int,
    default=128,
    show_default=True,
    metavar="<int>",
    help="File size to aim for, 1-512 MB.",
)
@_json_flag
@_prefect_option
@_profile_option
@_aws_region_option
def compact(
    dest: str,
    before: str | None,
    target_mb: int,
    as_json: bool,
    prefect: bool | None,
    profile: str | None,
    region: str | None,
) -> None:
    """Rewrite closed days' small files into large sorted files, each eventID once."""
    no_prefect = not _use_prefect(prefect)
    _use_aws(profile, region)
    try:
        if no_prefect:
            from datetime import date

            from flows.compaction import run_compact

            _loaded()
            result = run_compact(
                dest, before=date.fromisoformat(before) if before else None, target_mb=target_mb
            ).as_json()
        else:
            from flows.compact import compact as compact_flow

            _loaded()
            result = compact_flow(dest, before, target_mb)
    except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
        _fail(error, as_json)
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        _out().print(
            f"Compacted {result['partitions_compacted']} of {result['partitions_seen']} "
            f"partitions (before {result['before']}): {result['files_before']} files -> "
            f"{result['files_after']}, {result['bytes_after'] / 1e6:.1f} MB, "
            f"{result['duplicates_dropped']} duplicates dropped, in {result['seconds']:.1f} s.",
            highlight=False,
        )
        for problem in result["problems"][:10]:
            _out().print(f"  {problem['key']}: {problem['reason']}", highlight=False)
        for busy in result["partitions_busy"][:10]:
            _out().print(
                f"  {busy}: another writer held its lease; left for the next run", highlight=False
            )
    raise Exit(EXIT_PROBLEMS if result["problems_count"] else EXIT_OK)


class TableKind(StrEnum):
    events = "events"
    insights = "insights"


_kind_option = click.option(
    "--kind",
    type=click.Choice([k.value for k in TableKind]),
    default=TableKind.events.value,
    show_default=True,
    metavar="events|insights",
    help="The API events table, or the CloudTrail Insights events table.",
)
# --- redrive (issue 7) ----------------------------------------------------------------


@app.command()
@_argument("dest", _TABLE)
@_json_flag
@_prefect_option
@_profile_option
@_aws_region_option
def redrive(
    dest: str, as_json: bool, prefect: bool | None, profile: str | None, region: str | None
) -> None:
    """Re-drive the objects quarantined under DEST/_quarantine/ and convert what now converts."""
    no_prefect = not _use_prefect(prefect)
    _use_aws(profile, region)
    started = time.perf_counter()
    with _progress("re-driving", "quarantine files", hidden=as_json) as on_progress:
        try:
            summary = _run_redrive(dest, on_progress, no_prefect)
        except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
            _fail(error, as_json)
    _finish_run(summary, started, as_json, _print_redrive)


def _run_redrive(dest: str, on_progress: Any, no_prefect: bool) -> dict[str, Any]:
    if no_prefect:
        from flows.redriving import run_redrive

        _loaded()
        return run_redrive(dest, progress=on_progress).as_json()
    from flows.redrive import redrive as redrive_flow
    from flows.redrive import set_progress_hook

    _loaded()
    set_progress_hook(on_progress)
    try:
        result: dict[str, Any] = redrive_flow(dest)
    finally:
        set_progress_hook(None)
    return result


def _print_redrive(summary: dict[str, Any]) -> None:
    _out().print(
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


# --- verify (issue 11) -----------------------------------------------------------------


@app.command()
@_argument("source", _SOURCE)
@_argument("dest", _TABLE)
@_day_option("--start", "First delivery day (default: 6 days ago).")
@_day_option("--end", "Last delivery day (default: today).")
@click.option(
    "--repair", is_flag=True, help="Convert the log objects found not converted (exactly once)."
)
@click.option(
    "--signatures",
    is_flag=True,
    help="Also check each digest's RSA signature (cloudtrail:ListPublicKeys; S3 only).",
)
@_json_flag
@_prefect_option
@_profile_option
@_aws_region_option
def verify(
    source: str,
    dest: str,
    start: datetime | None,
    end: datetime | None,
    repair: bool,
    signatures: bool,
    as_json: bool,
    prefect: bool | None,
    profile: str | None,
    region: str | None,
) -> None:
    """Prove every log object of the delivery days is in DEST, by the digests; name what is not."""
    no_prefect = not _use_prefect(prefect)
    _use_aws(profile, region)
    started = time.perf_counter()
    first, last = (start.date() if start else None), (end.date() if end else None)
    try:
        if no_prefect:
            from flows.verification import run_verify

            _loaded()
            summary = run_verify(
                source, dest, start=first, end=last, repair=repair, signatures=signatures
            ).as_json()
        else:
            from flows.verify import verify as verify_flow

            _loaded()
            summary = verify_flow(
                source, dest, start=first, end=last, repair=repair, signatures=signatures
            )
    except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
        _fail(error, as_json)
    _finish_run(summary, started, as_json, _print_verify)


def _print_verify(summary: dict[str, Any]) -> None:
    source, table = summary["requests"]["source"], summary["requests"]["table"]
    _out().print(
        f"Verified delivery days {summary['start']}..{summary['end']}: "
        f"{summary.get('objects_seen', 0):,} log objects in "
        f"{summary.get('day_folders_listed', 0):,} day folders, "
        f"{summary.get('objects_converted', 0):,} converted "
        f"({summary.get('objects_quarantined', 0):,} with records quarantined).\n"
        f"Digests: {summary.get('digests_read', 0):,} read "
        f"(+{summary.get('backfill_digests_read', 0):,} backfill), naming "
        f"{summary.get('digest_log_files', 0):,} log files, "
        f"{summary.get('digest_log_files_verified', 0):,} of them matched by SHA-256.\n"
        f"Batches checked: {summary.get('batches_checked', 0):,} "
        f"({summary.get('files_verified', 0):,} files in place, "
        f"{summary.get('files_compacted', 0):,} compacted since).\n"
        f"S3 requests: {source['list']:,} LIST and {source['get']:,} GET on the logs, "
        f"{table['list']:,} LIST and {table['get']:,} GET on the table.",
        highlight=False,
    )
    if summary.get("repair"):
        repaired = summary["repair"]
        _out().print(
            f"Repaired: {repaired['objects_converted']:,} objects converted, "
            f"{repaired['events_written']:,} events written.",
            highlight=False,
        )
    _print_problems(summary)
    if not summary["problems_count"]:
        _out().print("Every log object of those days is accounted for.", highlight=False)


# --- query ----------------------------------------------------------------------------


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
@_argument("dest", _TABLE)
@_argument("sql", "One Athena (Trino) SQL statement.")
@click.option(
    "--format",
    "output",
    type=click.Choice([f.value for f in OutputFormat]),
    default=OutputFormat.table.value,
    show_default=True,
    metavar="table|csv|json",
    help="Rows as an aligned table, CSV or JSON lines (CSV and JSON are never cut).",
)
@_kind_option
@click.option(
    "--max-width",
    type=click.IntRange(min=0),
    default=80,
    show_default=True,
    metavar="N",
    help="Widest value in the aligned table: longer ones are cut and end in …; 0 = never cut.",
)
@_json_flag
@_profile_option
@_aws_region_option
def query(
    dest: str,
    sql: str,
    output: str,
    kind: str,
    max_width: int,
    as_json: bool,
    profile: str | None,
    region: str | None,
) -> None:
    """Run Athena SQL over the table locally (DuckDB); any table name means the --kind table."""
    _use_aws(profile, region)
    from flows.query import run_query
    from flows.render import cells_cut, render_csv, render_json_lines, render_table, rows_as_json

    _loaded()
    try:
        result = run_query(dest, sql, kind)
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json)
    rendered = {
        OutputFormat.table: lambda table: render_table(table, max_width),
        OutputFormat.csv: render_csv,
        OutputFormat.json: render_json_lines,
    }[OutputFormat(output)](result.table)
    sys.stdout.write(rendered)
    if as_json:
        summary = {
            "columns": result.table.column_names,
            "row_count": result.table.num_rows,
            "rows": rows_as_json(result.table),
            "seconds": round(result.seconds, 3),
            "duckdb_sql": result.sql,
        }
        sys.stdout.write(json.dumps(summary) + "\n")
    elif output == OutputFormat.table:
        cut = cells_cut(result.table, max_width)
        note = (
            f"; {cut} values cut at {max_width} characters (…): "
            "--max-width 0 or --format csv|json shows them whole"
            if cut
            else ""
        )
        _err().print(
            f"{result.table.num_rows} rows in {result.seconds:.2f} s{note}", highlight=False
        )


# --- hunt and report (issue 14) -------------------------------------------------------


@app.command()
@_argument("dest", _TABLE)
@_day_option("--since", "First event day (default: all).")
@_day_option("--until", "Last event day, included.")
@click.option(
    "--query",
    "query_names",
    multiple=True,
    metavar="<list[str]>",
    help="Ask only this question of the pack (repeatable).",
)
@_json_flag
@_profile_option
@_aws_region_option
def hunt(
    dest: str,
    since: datetime | None,
    until: datetime | None,
    query_names: tuple[str, ...],
    as_json: bool,
    profile: str | None,
    region: str | None,
) -> None:
    """Ask the hunting pack's security questions of the table; exit 3 when any finds events."""
    _use_aws(profile, region)
    from flows.hunting import run_hunt
    from flows.render import render_table
    from flows.report_html import finding_rows

    _loaded()
    try:
        run = run_hunt(
            dest,
            since=since.date() if since else None,
            until=until.date() if until else None,
            names=query_names,
        )
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json)
    if as_json:
        sys.stdout.write(json.dumps(run.as_json()) + "\n")
    else:
        import pyarrow as pa

        for finding in run.findings:
            h = finding.hunt
            _out().print(
                f"[bold]{h.name}[/bold] ({h.severity}; {', '.join(h.techniques)}): "
                f"{finding.rows.num_rows:,} events. {h.title}",
                highlight=False,
            )
            sys.stdout.write(render_table(pa.Table.from_pylist(finding_rows(finding, 5))))
        _out().print(
            f"{len(run.findings)} of {len(run.questions)} questions found events "
            f"({len(run.flagged_event_ids):,} events flagged) in {run.seconds:.1f} s.",
            highlight=False,
        )
        for problem in run.problems:
            _err().print(f"[yellow]{problem.key}[/yellow]: {problem.reason}", highlight=False)
    raise Exit(EXIT_PROBLEMS if run.findings or run.problems else EXIT_OK)


@app.command()
@_argument("dest", _TABLE)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    metavar="<path>",
    help="The HTML file to write.",
)
@_day_option("--since", "First event day (default: all).")
@_json_flag
@_profile_option
@_aws_region_option
def report(
    dest: str,
    out: Path,
    since: datetime | None,
    as_json: bool,
    profile: str | None,
    region: str | None,
) -> None:
    """Write one self-contained HTML page (works offline): the table's activity and the hunt."""
    _use_aws(profile, region)
    from flows.hunting import run_hunt
    from flows.report_html import summarise, write_report

    _loaded()
    try:
        run = run_hunt(dest, since=since.date() if since else None)
        summary = summarise(dest, run.since)
        path = write_report(out, summary, run)
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json)
    if as_json:
        result = {
            "out": str(path),
            "bytes": path.stat().st_size,
            "events": summary.events,
            "findings": [f.as_json() for f in run.findings],
        }
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        _out().print(
            f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {summary.events:,} events, "
            f"{len(run.findings)} of {len(run.questions)} questions found events.",
            highlight=False,
        )
    raise Exit(EXIT_OK)


_region_option = click.option(
    "--region",
    multiple=True,
    metavar="R",
    help="A region to project besides those present (repeatable), e.g. one with no data yet.",
)


@app.command()
@_argument("dest", _TABLE)
@click.option("--database", metavar="<str>", help="Qualify the table with this database.")
@click.option(
    "--table",
    default="cloudtrail_logs",
    show_default=True,
    metavar="<str>",
    help="The table's name.",
)
@_kind_option
@_region_option
@_profile_option
@_aws_region_only_option
def ddl(
    dest: str,
    database: str | None,
    table: str,
    kind: str,
    region: tuple[str, ...],
    profile: str | None,
    aws_region: str | None,
) -> None:
    """Print the CREATE EXTERNAL TABLE statement (Hive DDL, as Athena runs it) for DEST's table.

    Partitions are projected: the regions present (or the standard AWS regions
    for an empty table) plus --region ones, years through next year.
    """
    _use_aws(profile, aws_region)
    from flows.register import render_ddl

    _loaded()
    try:
        statement, problems, warnings = render_ddl(
            dest, table=table, database=database, kind=kind, regions=region
        )
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json=False)
    sys.stdout.write(statement + ";\n")
    for line in warnings + [f"{p.key}: {p.reason}" for p in problems]:
        _err().print(f"[yellow]warning:[/yellow] {line}", highlight=False)
    raise Exit(EXIT_PROBLEMS if problems else EXIT_OK)


@app.command()
@_argument("dest", "s3:// URL of the table (as for ingest).")
@click.option(
    "--database", required=True, metavar="<str>", help="Glue database (created if needed)."
)
@click.option("--table", required=True, metavar="<str>", help="Glue table name.")
@_kind_option
@_region_option
@click.option(
    "--athena-workgroup",
    metavar="WG",
    envvar="CTPARQUET_ATHENA_WORKGROUP",
    show_envvar=True,
    help="Make the changes by running DDL in this Athena workgroup, not with Glue's API.",
)
@click.option(
    "--athena-output",
    metavar="S3URL",
    envvar="CTPARQUET_ATHENA_OUTPUT",
    show_envvar=True,
    help="s3:// URL for query results, if the workgroup sets none.",
)
@_json_flag
@_profile_option
@_aws_region_only_option
def register(
    dest: str,
    database: str,
    table: str,
    kind: str,
    region: tuple[str, ...],
    athena_workgroup: str | None,
    athena_output: str | None,
    as_json: bool,
    profile: str | None,
    aws_region: str | None,
) -> None:
    """Create or update DEST's table in the Glue Data Catalog, with partition projection.

    Idempotent: a second run changes nothing. Partitions the projection would
    not cover (data Athena would not see) are listed, and the exit status is 3.
    """
    _use_aws(profile, aws_region)
    from flows.register import AthenaDDL, register_table

    _loaded()
    try:
        athena = AthenaDDL(athena_workgroup, output=athena_output) if athena_workgroup else None
        done = register_table(
            dest,
            database=database,
            table=table,
            kind=kind,
            regions=region,
            athena=athena,
        )
    except Exception as error:  # noqa: BLE001 - reported as the command's failure
        _fail(error, as_json)
    pack = _save_hunting_pack(athena_workgroup, database, table, done) if kind == "events" else None
    summary = done.as_json()
    summary["named_queries"] = pack
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        created = " (database created)" if done.database_created else ""
        _out().print(
            f"Glue table {done.database}.{done.table}: {done.action}{created} (via {done.via}).\n"
            f"Location: {done.location}\n"
            f"Projects {len(done.projection.regions)} regions, years "
            f"{done.projection.first_year}-{done.projection.last_year}.",
            highlight=False,
        )
        if pack:
            _out().print(
                "Hunting pack as Athena named queries: "
                + ", ".join(f"{len(names)} {what}" for what, names in pack.items()),
                highlight=False,
            )
        for warning in done.warnings:
            _err().print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        for problem in done.problems[:20]:
            _out().print(f"  {problem.key}: {problem.reason}", highlight=False)
    raise Exit(EXIT_PROBLEMS if done.problems else EXIT_OK)


def _save_hunting_pack(workgroup: str | None, database: str, table: str, done: Any) -> Any:
    """The hunting pack as named queries in the workgroup (``primary`` by default); a refusal
    is a warning: the table is registered all the same."""
    from botocore.exceptions import BotoCoreError, ClientError

    from flows.register import save_named_queries

    try:
        return save_named_queries(workgroup=workgroup or "primary", database=database, table=table)
    except (BotoCoreError, ClientError) as error:
        done.warnings.append(f"the hunting pack was not saved as Athena named queries: {error}")
        return None


@app.command()
@_argument("source", _SOURCE)
@_argument("dest", _NEW_TABLE)
@_day_option("--start", "First delivery day.", required=True, metavar="YYYY-MM-DD")
@_day_option("--end", "Last delivery day (included).", required=True, metavar="YYYY-MM-DD")
@click.option("--account", multiple=True, metavar="ID", help="Only this account (repeatable).")
@click.option("--region", multiple=True, metavar="R", help="Only this region's logs (repeatable).")
@click.option(
    "--dask",
    metavar="ADDRESS|local",
    envvar="CTPARQUET_DASK_ADDRESS",
    show_envvar=True,
    help="Run units on a Dask cluster, as Prefect tasks: a scheduler address "
    "(tcp://host:8786) or 'local' (a LocalCluster here). Default: threads here.",
)
@_json_flag
@_prefect_option
@_profile_option
@_aws_region_only_option
def backfill(
    source: str,
    dest: str,
    start: datetime,
    end: datetime,
    account: tuple[str, ...],
    region: tuple[str, ...],
    dask: str | None,
    as_json: bool,
    prefect: bool | None,
    profile: str | None,
    aws_region: str | None,
) -> None:
    """Convert the delivery days START..END of the trail under SOURCE into DEST (resumable)."""
    no_prefect = not _use_prefect(True if prefect is None and dask else prefect)
    _use_aws(profile, aws_region)
    started = time.perf_counter()
    with _progress("backfill", "units", hidden=as_json) as on_progress:
        try:
            summary = _run_backfill(
                source=source,
                dest=dest,
                start=start.date(),
                end=end.date(),
                accounts=list(account) or None,  # none given: every one
                regions=list(region) or None,
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
    if no_prefect:
        from flows.backfilling import run_backfill

        _loaded()
        return run_backfill(
            source, dest, start, end, accounts=accounts, regions=regions, progress=on_progress
        ).as_json()
    from flows.backfill import set_progress_hook, with_dask
    from flows.settings import Settings

    _loaded()
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
    if hidden or not _err().is_terminal:  # with --json, rich is not even imported
        yield _no_progress
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=_err(),
        transient=True,
        # Redrawn on each update, not by a thread of its own: ingest forks its workers
        # only from a process running one thread (flows.workers.fork_workers).
        auto_refresh=False,
    ) as bar:
        job = bar.add_task(label, total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(job, completed=done, total=total, refresh=True)

        yield on_progress


def _no_progress(done: int, total: int) -> None:
    """The progress updater where no bar is shown."""


def _fail(error: Exception, as_json: bool) -> NoReturn:
    message = f"{type(error).__name__}: {error}"
    _err().print(f"[red]failed:[/red] {message}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps({"error": message}) + "\n")
    raise Exit(EXIT_FAILED)


def _loaded() -> None:
    """A command's modules are imported: collect cycles again, never among what they made.

    Importing Polars, pyarrow and ours makes a few hundred thousand objects and no garbage;
    the cycle collector ran ~140 times over them meanwhile (0.1-0.15 s of start-up). Frozen,
    they are left out of every later collection too.
    """
    gc.freeze()
    gc.enable()


def main() -> None:
    """Console-script entry point."""
    gc.disable()  # until ``_loaded``: start-up makes objects, not garbage
    try:
        app(prog_name="ctparquet")
    finally:
        # At exit the interpreter's last collection walks every object the imports made
        # (Polars, pyarrow, pydantic: 0.2-0.3 s of CPU) to free memory the OS takes back
        # anyway. Frozen, they are skipped; files and leases are closed by then.
        gc.freeze()


if __name__ == "__main__":
    main()
