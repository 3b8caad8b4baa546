"""The report people look at: one self-contained HTML page drawn from the table.

``summarise`` asks the table (Athena SQL, through the same path as ``ctparquet
query``) for events per day and region, the top event sources, names, principals
and source IPs, error codes over time, and the principals and regions first seen
in the window; ``render_html`` draws them with plotly (its JavaScript inlined once,
so the page works offline, no CDN) beside the hunt's findings and their rows.
``render_markdown`` gives the same summary for the hunt flow's artifact.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.query import query_storage
from flows.render import rows_as_json
from flows.storage import Storage
from schemas.hunts import BEGINNING, sql_literal

if TYPE_CHECKING:  # flows.hunting imports this module to publish the summary
    import plotly.graph_objects as go

    from flows.hunting import Finding, HuntRun

TOP = 15
FINDING_ROWS_SHOWN = 50
ROW_COLUMNS = (
    "eventtime",
    "eventname",
    "arn",
    "sourceipaddress",
    "awsregion",
    "recipientaccountid",
    "errorcode",
    "detail",
    "eventid",
)

Rows = list[dict[str, Any]]


@dataclass
class TableSummary:
    """What the table says about the window, ready to draw."""

    dest: str
    since: datetime
    events: int = 0
    first_event: str | None = None
    last_event: str | None = None
    per_day_region: Rows = field(default_factory=list)
    sources: Rows = field(default_factory=list)
    names: Rows = field(default_factory=list)
    errors_per_day: Rows = field(default_factory=list)
    principals: Rows = field(default_factory=list)
    source_ips: Rows = field(default_factory=list)
    new_principals: Rows = field(default_factory=list)
    new_regions: Rows = field(default_factory=list)


_PRINCIPAL = "coalesce(useridentity.arn, useridentity.invokedby, useridentity.type, 'unknown')"


def summarise(dest_url: str, since: datetime | None = None) -> TableSummary:
    """The table's figures for events at or after ``since`` (all events when None)."""
    dest = Storage(dest_url)
    start = since or BEGINNING
    in_window = f"eventtimestamp >= {sql_literal(start)}"

    def rows(sql: str) -> Rows:
        found: Rows = query_storage(dest, sql).table.to_pylist()
        return found

    summary = TableSummary(dest=dest_url, since=start)
    [totals] = rows(
        "SELECT count(*) AS events, CAST(min(eventtimestamp) AS VARCHAR) AS first_event, "
        f"CAST(max(eventtimestamp) AS VARCHAR) AS last_event FROM cloudtrail_logs WHERE {in_window}"
    )
    summary.events = totals["events"]
    summary.first_event, summary.last_event = totals["first_event"], totals["last_event"]
    day = "date_format(eventtimestamp, '%Y-%m-%d')"
    summary.per_day_region = rows(
        f"SELECT {day} AS day, awsregion AS region, count(*) AS events FROM cloudtrail_logs "
        f"WHERE {in_window} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    summary.sources = _top(rows, "eventsource", in_window)
    summary.names = _top(rows, "eventname", in_window)
    summary.principals = _top(rows, _PRINCIPAL, in_window)
    summary.source_ips = _top(rows, "sourceipaddress", in_window)
    summary.errors_per_day = rows(
        f"SELECT {day} AS day, errorcode, count(*) AS events FROM cloudtrail_logs "
        f"WHERE {in_window} AND errorcode IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
    )
    # First seen over the whole table, so "new" means new, not just new in the window.
    for attribute, expression in (("new_principals", _PRINCIPAL), ("new_regions", "awsregion")):
        setattr(
            summary,
            attribute,
            rows(
                f"SELECT value, CAST(first_seen AS VARCHAR) AS first_seen, events FROM ("
                f"SELECT {expression} AS value, min(eventtimestamp) AS first_seen, "
                f"count(*) AS events FROM cloudtrail_logs GROUP BY 1) "
                f"WHERE first_seen >= {sql_literal(start)} ORDER BY first_seen DESC, value "
                f"LIMIT 30"
            ),
        )
    return summary


def _top(rows: Any, expression: str, in_window: str) -> Rows:
    result: Rows = rows(
        f"SELECT {expression} AS value, count(*) AS events FROM cloudtrail_logs "
        f"WHERE {in_window} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {TOP}"
    )
    return result


def finding_rows(finding: Finding, limit: int = FINDING_ROWS_SHOWN) -> Rows:
    """A finding's first rows, JSON-ready."""
    return rows_as_json(finding.rows.slice(0, limit))


# --- The page ----------------------------------------------------------------------------


def charts(summary: TableSummary) -> list[tuple[str, go.Figure]]:
    """The page's figures, each with its heading."""
    import plotly.graph_objects as go  # noqa: PLC0415 - plotly only to draw

    figures = [
        ("Events per day by region", _stacked(summary.per_day_region, "region")),
        ("Error codes over time", _stacked(summary.errors_per_day, "errorcode")),
        ("Top event sources", _ranked(summary.sources)),
        ("Top event names", _ranked(summary.names)),
        ("Top principals", _ranked(summary.principals)),
        ("Top source IPs", _ranked(summary.source_ips)),
    ]
    new_per_day: dict[str, int] = {}
    for row in summary.new_principals:
        new_per_day[row["first_seen"][:10]] = new_per_day.get(row["first_seen"][:10], 0) + 1
    new = go.Figure(go.Bar(x=sorted(new_per_day), y=[new_per_day[d] for d in sorted(new_per_day)]))
    new.update_xaxes(type="category")
    figures.append(("New principals per day (first seen)", _styled(new)))
    return figures


def _stacked(rows: Rows, series: str) -> go.Figure:
    import plotly.graph_objects as go  # noqa: PLC0415 - plotly only to draw

    figure = go.Figure()
    for name in sorted({str(r[series]) for r in rows}):
        picked = [r for r in rows if str(r[series]) == name]
        figure.add_trace(
            go.Bar(name=name, x=[r["day"] for r in picked], y=[r["events"] for r in picked])
        )
    figure.update_layout(barmode="stack")
    figure.update_xaxes(type="category")  # days, not a continuous time axis
    return _styled(figure)


def _ranked(rows: Rows) -> go.Figure:
    import plotly.graph_objects as go  # noqa: PLC0415 - plotly only to draw

    ordered = list(reversed(rows))
    figure = go.Figure(
        go.Bar(
            x=[r["events"] for r in ordered],
            y=[_short(str(r["value"])) for r in ordered],
            orientation="h",
        )
    )
    return _styled(figure)


def _styled(figure: go.Figure) -> go.Figure:
    figure.update_layout(
        height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10}, template="plotly_white"
    )
    figure.update_yaxes(automargin=True)
    return figure


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def render_html(summary: TableSummary, hunt: HuntRun, *, generated: datetime | None = None) -> str:
    """The whole report as one HTML document with plotly's JavaScript inlined once."""
    when = (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>CloudTrail report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>CloudTrail report</h1>",
        f"<p class=meta>{html.escape(summary.dest)} · events since "
        f"{summary.since:%Y-%m-%d} · {summary.events:,} events "
        f"({html.escape(summary.first_event or '-')} to "
        f"{html.escape(summary.last_event or '-')}) · generated {when}</p>",
        _findings_overview(hunt),
        '<div class="grid">',
    ]
    for index, (title, figure) in enumerate(charts(summary)):
        div = figure.to_html(
            full_html=False,
            include_plotlyjs=index == 0,
            div_id=f"chart-{index}",
            config={"displayModeBar": False, "responsive": True},
        )
        parts.append(f'<section class="chart"><h2>{html.escape(title)}</h2>{div}</section>')
    parts.append("</div>")
    parts.append(_first_seen_tables(summary))
    parts.append(_findings_detail(hunt))
    parts.append("</body></html>")
    return "\n".join(parts)


def _findings_overview(hunt: HuntRun) -> str:
    if not hunt.findings:
        return (
            f"<h2>Hunt</h2><p>{len(hunt.questions)} questions asked: no findings.</p>"
            + _problems(hunt)
        )
    rows = "".join(
        f'<tr><td><a href="#hunt-{f.hunt.name}">{html.escape(f.hunt.name)}</a></td>'
        f"<td>{html.escape(f.hunt.title)}</td>"
        f'<td class="sev-{f.hunt.severity}">{f.hunt.severity}</td>'
        f"<td>{', '.join(f.hunt.techniques)}</td><td class=num>{f.rows.num_rows:,}</td></tr>"
        for f in sorted(hunt.findings, key=_by_severity)
    )
    return (
        f"<h2>Hunt: {len(hunt.findings)} of {len(hunt.questions)} questions found events</h2>"
        "<table><tr><th>question</th><th>title</th><th>severity</th><th>ATT&amp;CK</th>"
        f"<th>events</th></tr>{rows}</table>" + _problems(hunt)
    )


def _by_severity(finding: Any) -> tuple[int, str]:
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    return order.get(finding.hunt.severity, 9), finding.hunt.name


def _problems(hunt: HuntRun) -> str:
    if not hunt.problems:
        return ""
    items = "".join(
        f"<li>{html.escape(p.key)}: {html.escape(p.reason)}</li>" for p in hunt.problems
    )
    return f"<p>Questions that could not run:</p><ul>{items}</ul>"


def _first_seen_tables(summary: TableSummary) -> str:
    parts = ['<div class="grid">']
    for title, rows in (
        ("Principals seen for the first time", summary.new_principals),
        ("Regions seen for the first time", summary.new_regions),
    ):
        body = "".join(
            f"<tr><td>{html.escape(str(r['value']))}</td><td>{html.escape(r['first_seen'])}</td>"
            f"<td class=num>{r['events']:,}</td></tr>"
            for r in rows
        )
        parts.append(
            f"<section><h2>{title}</h2><table><tr><th>first seen</th><th>when</th>"
            f"<th>events</th></tr>{body}</table></section>"
        )
    parts.append("</div>")
    return "".join(parts)


def _findings_detail(hunt: HuntRun) -> str:
    parts = []
    for finding in sorted(hunt.findings, key=_by_severity):
        h = finding.hunt
        rows = finding_rows(finding, FINDING_ROWS_SHOWN)
        head = "".join(f"<th>{c}</th>" for c in ROW_COLUMNS)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in ROW_COLUMNS)
            + "</tr>"
            for r in rows
        )
        more = finding.rows.num_rows - len(rows)
        parts.append(
            f'<section id="hunt-{h.name}"><h2>{html.escape(h.title)} '
            f'<span class="sev-{h.severity}">{h.severity}</span></h2>'
            f"<p><code>{h.name}</code> · {', '.join(h.techniques)} · "
            f"{html.escape(h.description)}<br><em>{html.escape(h.why)}</em></p>"
            f"<table><tr>{head}</tr>{body}</table>"
            + (
                f"<p>and {more:,} more rows (<code>ctparquet hunt --query {h.name}</code>)</p>"
                if more > 0
                else ""
            )
            + "</section>"
        )
    return "".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px}.meta{color:#666;margin:0 0 12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}
section{border:1px solid #e3e3e3;border-radius:6px;padding:8px 12px;margin-bottom:12px}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{border-bottom:1px solid #eee;padding:3px 6px;text-align:left;vertical-align:top;
word-break:break-all}
.num{text-align:right}.sev-critical{color:#fff;background:#8b0000;padding:0 4px}
.sev-high{color:#fff;background:#d9480f;padding:0 4px}
.sev-medium{background:#ffd43b;padding:0 4px}.sev-low{background:#dee2e6;padding:0 4px}
"""


# --- The same summary for the hunt flow's artifact --------------------------------------


def render_markdown(summary: TableSummary, hunt: HuntRun) -> str:
    """The report's figures and the findings as Markdown (a Prefect artifact)."""
    lines = [
        "# CloudTrail hunt",
        "",
        f"`{summary.dest}`: {summary.events:,} events since {summary.since:%Y-%m-%d} "
        f"({summary.first_event or '-'} to {summary.last_event or '-'}); "
        f"{len(hunt.findings)} of {len(hunt.questions)} questions found events.",
        "",
        "| question | severity | ATT&CK | events |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {f.hunt.title} (`{f.hunt.name}`) | {f.hunt.severity} | "
        f"{', '.join(f.hunt.techniques)} | {f.rows.num_rows:,} |"
        for f in sorted(hunt.findings, key=_by_severity)
    ]
    for title, rows in (
        ("Top event sources", summary.sources),
        ("Top event names", summary.names),
        ("Top principals", summary.principals),
        ("Top source IPs", summary.source_ips),
        ("Principals seen for the first time", summary.new_principals[:10]),
        ("Regions seen for the first time", summary.new_regions[:10]),
    ):
        lines += ["", f"## {title}", "", "| | events |", "|---|---|"]
        lines += [f"| `{r['value']}` | {r['events']:,} |" for r in rows[:10]]
    errors: dict[str, int] = {}
    for row in summary.errors_per_day:
        errors[str(row["errorcode"])] = errors.get(str(row["errorcode"]), 0) + row["events"]
    lines += ["", "## Error codes", "", "| code | events |", "|---|---|"]
    lines += [f"| `{c}` | {n:,} |" for c, n in sorted(errors.items(), key=lambda i: -i[1])[:10]]
    return "\n".join(lines) + "\n"


def write_report(out: Path | str, summary: TableSummary, hunt: HuntRun) -> Path:
    """Write the page to ``out`` (a local file) and return its path."""
    path = Path(out)
    path.write_text(render_html(summary, hunt), encoding="utf-8")
    return path
