"""The backfill flow: history on demand, one (account, region, delivery day) unit per task.

What the ``cloudtrail-backfill`` deployment runs, and ``ctparquet backfill`` with a
Prefect API (or ``--prefect``); without one the CLI runs ``run_backfill``
(``flows.backfilling``), the same units with no Prefect imported. Units are
planned as there, then converted as Prefect tasks, at most ``backfill_concurrency``
at a time. On the default task runner each task's thread hands its unit to a
worker thread (one per core, at most ``backfill_concurrency``: memory follows the
cores, docs/adr/0017). On a Dask cluster (prefect-dask,
``CTPARQUET_DASK_ADDRESS`` or ``--dask``) the unit runs in the Dask worker itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, date, datetime
from typing import Any

from prefect import Flow, flow, get_run_logger, task
from prefect.cache_policies import NONE as NO_CACHE
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.backfilling import BackfillRangeError, UnitProgress, plan_units, run_backfill
from flows.incremental import new_summary
from flows.ingest import open_storages, publish_report
from flows.listing import DayFolder
from flows.report import RunSummary
from flows.settings import Settings
from flows.workers import run_unit, unit_pool
from transforms.errors import Problem

__all__ = [
    "BackfillRangeError",
    "UnitProgress",
    "backfill",
    "plan_units",
    "run_backfill",
    "set_progress_hook",
    "with_dask",
]

_unit_pool: Executor | None = None
"""The flow's worker threads, on the default (threads) task runner; None on Dask."""


def run_unit_task(
    source_url: str, dest_url: str, unit: DayFolder, settings: Settings, now: datetime
) -> RunSummary:
    """A unit as a task: on a worker thread if the flow has a pool (threads), else here."""
    pool = _unit_pool  # a Dask worker never has one: the unit runs in that worker process
    if pool is None:
        return run_unit(source_url, dest_url, unit, settings, now)
    return pool.submit(run_unit, source_url, dest_url, unit, settings, now).result()


_convert_unit = task(
    name="backfill-unit",
    cache_policy=NO_CACHE,  # Resumability lives in the table's state, not in Prefect's cache.
    retries=2,
    retry_delay_seconds=10,
    task_run_name="{unit.trail.account}/{unit.trail.region}/{unit.day}",
)(run_unit_task)

_progress_hook: UnitProgress | None = None


def set_progress_hook(progress: UnitProgress | None) -> None:
    """Let the CLI watch a flow run in this process (a callback can't be a flow parameter)."""
    global _progress_hook
    _progress_hook = progress


def _progress() -> UnitProgress | None:
    # A function, not the global itself, in the flow's body: a Dask task runner pickles the
    # flow function with the globals it names, and the CLI's callback holds a terminal.
    return _progress_hook


def task_runner(address: str | None, settings: Settings) -> TaskRunner[Any]:
    """Threads in this process (no address), a LocalCluster ('local'), or a Dask scheduler."""
    if not address:
        return ThreadPoolTaskRunner(max_workers=settings.backfill_concurrency)
    from prefect_dask.task_runners import DaskTaskRunner  # noqa: PLC0415 - imports dask: only when asked

    if address == "local":
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": settings.dask_local_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            },
        )
    return DaskTaskRunner(address=address)


def with_dask(address: str | None, settings: Settings | None = None) -> Flow[..., dict[str, Any]]:
    """The backfill flow on the task runner ``address`` names (see ``task_runner``)."""
    settings = settings or Settings()  # read from the environment
    return backfill.with_options(task_runner=task_runner(address, settings))


def _default_runner() -> TaskRunner[Any]:
    settings = Settings()  # read from the environment
    return task_runner(settings.dask_address, settings)


@flow(name="cloudtrail-backfill", log_prints=False, task_runner=_default_runner())
def backfill(  # noqa: PLR0917 - a flow's parameters, named by the deployment
    source: str,
    dest: str,
    start: date,
    end: date,
    accounts: list[str] | None = None,
    regions: list[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Convert the delivery days ``start``..``end`` (inclusive) of a trail into the table.

    ``accounts`` and ``regions`` narrow the units (default: every one discovered).
    Runs each (account, region, day) as a task; a rerun converts only what is
    missing. ``now``: the run's clock, for tests (default: the current time).
    """
    logger = get_run_logger()
    settings = Settings()  # read from the environment
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    source_store, dest_store = open_storages(source, dest, settings)
    units = plan_units(source_store, start, end, accounts=accounts, regions=regions)
    logger.info(
        "%d units: %d trail folders x %d days", len(units), len({u.trail for u in units}),
        len({u.day for u in units}),
    )  # fmt: skip
    summary = new_summary(source_store, dest_store)
    progress = _progress()
    if progress:
        progress(0, len(units))
    failed: list[BaseException] = []
    done = 0

    def collect(future: PrefectFuture[RunSummary], unit: DayFolder) -> None:
        nonlocal done
        result = future.result(raise_on_failure=False)
        if isinstance(result, RunSummary):
            summary.merge(result)
        else:
            failed.append(result)
            summary.problems.append(Problem(source_store.url(unit.path), f"unit failed: {result}"))
        done += 1
        if progress:
            progress(done, len(units))

    context = FlowRunContext.get()
    on_threads = context is not None and isinstance(context.task_runner, ThreadPoolTaskRunner)
    if on_threads and units:
        _set_unit_pool(unit_pool(settings, len(units)))
    try:
        _submit_all(units, (source, dest, settings, now), collect)
    finally:
        pool = _set_unit_pool(None)
        if pool is not None:
            pool.shutdown()

    summary.source_requests.update(source_store.requests())
    summary.table_requests.update(dest_store.requests())
    summary.seconds = time.perf_counter() - started
    logger.info(
        "%d units (%d failed): converted %d objects, wrote %d events in %d partitions",
        len(units), len(failed), summary.objects_converted, summary.events_written,
        len(summary.partitions),
    )  # fmt: skip
    publish_report(summary, "backfill")
    if units and len(failed) == len(units):
        raise failed[0]
    summary.units, summary.units_failed = len(units), len(failed)
    return summary.as_json()


def _set_unit_pool(pool: Executor | None) -> Executor | None:
    """Install the flow's worker threads (or none); the ones installed before."""
    global _unit_pool
    before, _unit_pool = _unit_pool, pool
    return before


def _submit_all(
    units: list[DayFolder],
    run: tuple[str, str, Settings, datetime],
    collect: Callable[[PrefectFuture[RunSummary], DayFolder], None],
) -> None:
    """Submit every unit, at most ``backfill_concurrency`` in flight; collect each as it ends."""
    source, dest, settings, now = run
    in_flight: list[PrefectFuture[RunSummary]] = []
    unit_of: dict[int, DayFolder] = {}
    for unit in units:
        while len(in_flight) >= settings.backfill_concurrency:
            finished = next(as_completed(in_flight))
            in_flight.remove(finished)
            collect(finished, unit_of.pop(id(finished)))
        future = _convert_unit.submit(source, dest, unit, settings, now)
        unit_of[id(future)] = unit
        in_flight.append(future)
    for finished in as_completed(list(in_flight)):
        collect(finished, unit_of.pop(id(finished)))
