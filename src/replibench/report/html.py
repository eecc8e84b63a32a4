"""``leaderboard.html``: one static page, sortable and filterable, with every row's provenance.

The page needs no server and fetches nothing: CSS and JavaScript are inlined from
``report/assets/``, a Content-Security-Policy forbids every other source, and figures are linked
by relative paths to the PNGs written beside it. The table is rendered here (it reads without
JavaScript); the script only sorts, filters and opens a row's details. Each leaderboard row is one
``<tbody>``: the visible row plus a hidden row with the paper reference, the per-seed values, each
run's provenance (commit, settings and data hashes, device, wall time, GPU-hours, SLURM job) and
links to the row's figures.
"""

from __future__ import annotations

import json
import os
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from replibench.report.claims import claims_html
from replibench.report.format import (RULE, SUMMARY_CLASSES, SUPERSEDED_COLUMNS, SUPERSEDED_INTRO, SUPERSEDED_TITLE,
                                      family_summary, format_hours, format_number, format_ours, format_steps,
                                      format_view_cell, is_missing, status_kind, superseded_cells)

CSP = ("default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")

#: (header, data-type) of the table's columns, in order
COLUMNS = (("family", "text"), ("dataset", "text"), ("task", "text"), ("variant", "text"), ("model", "text"),
           ("metric", "text"), ("ours", "number"), ("n", "number"), ("paper", "number"), ("Δ", "number"),
           ("Δ %", "number"), ("tol.", "text"), ("status", "text"), ("preset", "text"), ("runs", "text"))
FILTERS = ("family", "dataset", "model", "preset", "status", "origins")


def _asset(name: str) -> str:
    return resources.files("replibench.report").joinpath("assets", name).read_text(encoding="utf-8")


def _number(value: Any) -> str:
    """The sort value of a numeric cell: full precision, empty when missing."""
    return "" if is_missing(value) else repr(float(value))


def _href(path: str | Path, base: Path) -> str:
    return escape(Path(os.path.relpath(path, base)).as_posix(), quote=True)


def _cell(text: str, value: str | None = None, css: str = "") -> str:
    value = text if value is None else value
    klass = f' class="{css}"' if css else ""
    return f'<td{klass} data-value="{escape(value, quote=True)}">{escape(text)}</td>'


def _runs(run_ids: list[str], runs: dict[str, dict[str, Any]], base: Path) -> str:
    """Each run's provenance as a small definition list (hashes in full: they are what one checks)."""
    blocks = []
    for run_id in run_ids:
        run = runs.get(run_id)
        if run is None:
            continue
        data = json.loads(run["data_sha256"]) if isinstance(run["data_sha256"], str) else {}
        commit = run["commit"] or "–"
        if run.get("commit_dirty") is True:
            commit += " (with uncommitted changes)"
        facts = [
            ("commit", f"<code>{escape(commit)}</code>"),
            ("settings sha256", f"<code>{escape(str(run['config_sha256']))}</code>"),
            ("data sha256", "<br>".join(f"{escape(name)}: <code>{escape(digest)}</code>"
                                        for name, digest in sorted(data.items())) or "–"),
            ("lock sha256", f"<code>{escape(str(run['lock_sha256'] or '–'))}</code>"),
            ("device", escape(str(run["device"]))),
            ("wall time", f"train {escape(format_number(run['train_wall_s']))} s, evaluate "
                          f"{escape(format_number(run.get('evaluate_wall_s')))} s"),
            ("GPU-hours", escape(format_number(run["gpu_hours"], 3))),
            ("CPU-hours", escape(format_number(run.get("cpu_hours"), 3))),
            ("origin", escape(str(run.get("origin") or "–"))),
            ("SLURM job", escape(str(run["slurm_job_id"] or "–"))),
            ("created", escape(str(run.get("created") or "–"))),
            ("metrics", f'<a href="{_href(run["metrics_path"], base)}">metrics.json</a>'),
        ]
        blocks.append(f'<div class="run"><h4>run <code>{escape(run_id)}</code></h4><dl>'
                      + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl></div>")
    return '<div class="runs">' + "".join(blocks) + "</div>"


def _details(row: dict[str, Any], runs: dict[str, dict[str, Any]], plots: list, base: Path) -> str:
    facts = []
    if isinstance(row["paper"], str):
        facts += [("paper", f"{row['paper']}, {row['table']}"), ("source", row["source"]),
                  ("averaging", row["averaging"]), ("tolerance", row["tolerance_text"])]
        if not is_missing(row.get("band")):
            facts.append(("reproduced if", f"|Δ| ≤ {format_number(row['band'], 3)} (set by the {row['band_from']})"))
        if isinstance(row.get("note"), str):
            facts.append(("note", row["note"]))
    else:
        facts.append(("paper", "no published number for this row"))
    facts += [("unit", f"{row['unit']} ({'lower' if row['direction'] == 'min' else 'higher'} is better)"),
              ("data", row["data_origin"]), ("training", format_steps(row))]
    if row["derived"]:
        facts.append(("derived", "computed by the family from the runs below (not trained on its own)"))
    seeds = ", ".join(f"{seed}: {format_number(value, 6)}" for seed, value in zip(row["seed_list"], row["seed_values"]))
    facts.append(("per seed", seeds))
    html = ["<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts) + "</dl>"]
    run_ids = sorted({part for joined in row["run_ids"] for part in joined.split(";")})
    html.append(_runs(run_ids, runs.get(row["preset"], {}), base))
    own = [plot for plot in plots if plot.belongs_to(row)]
    if own:
        html.append('<ul class="plots">' + "".join(
            f'<li><a href="{_href(plot.path, base)}">{escape(plot.title)}</a></li>' for plot in own) + "</ul>")
    return "".join(html)


def _row(index: int, row: dict[str, Any], runs: dict[str, dict[str, Any]], plots: list, base: Path) -> str:
    kind = status_kind(row["status"])
    has_paper = isinstance(row["paper"], str)
    cells = [
        _cell(row["family"]), _cell(row["dataset"]), _cell(row["task"]),
        _cell(row["variant"] + ("*" if row["derived"] else ""), row["variant"]), _cell(row["model"]),
        _cell(f"{row['metric']} ({row['direction']})", row["metric"]),
        _cell(format_ours(row), _number(row["ours"]), "num"), _cell(str(row["seeds"]), str(row["seeds"]), "num"),
        _cell(format_number(row["paper_value"]), _number(row["paper_value"]), "num"),
        _cell(format_number(row["delta"], 3), _number(row["delta"]), "num"),
        _cell("–" if is_missing(row["delta_relative"]) else f"{row['delta_relative'] * 100:+.1f} %",
              _number(row["delta_relative"]), "num"),
        _cell(row["band_text"] if has_paper else "–"),
        f'<td data-value="{escape(row["status"], quote=True)}">'
        f'<span class="badge {kind}">{escape(row["status"])}</span></td>',
        _cell(format_steps(row), row["preset"], "wrap"),
        _cell(f"{row['origins'] or '–'}: {row['devices'] or '–'}; {format_hours(row['gpu_hours'])} GPU-h, "
              f"{format_hours(row['cpu_hours'])} CPU-h", css="wrap runs"),
    ]
    attributes = " ".join(f'data-{name}="{escape(str(row[name]), quote=True)}"' for name in FILTERS)
    return (f'<tbody class="entry" {attributes}>'
            f'<tr class="row" id="row-{index}" tabindex="0" aria-expanded="false" aria-controls="details-{index}">'
            + "".join(cells) + "</tr>"
            f'<tr class="details" id="details-{index}" hidden><td colspan="{len(COLUMNS)}">'
            + _details(row, runs, plots, base) + "</td></tr></tbody>")


SEPARATOR = '<span class="sep"> | </span>'


def _view_cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return '<td class="cell empty"></td>'
    paper, ours, delta = format_view_cell(cell)
    return (f'<td class="cell {cell["kind"]}" title="{escape(cell["status"], quote=True)}; tol. '
            f'{escape(cell["band_text"], quote=True)}"><span class="paper">{escape(paper)}</span>{SEPARATOR}'
            f'<span class="ours">{escape(ours)}</span>{SEPARATOR}<span class="delta">{escape(delta)}</span></td>')


def views_html(views: list[dict[str, Any]]) -> str:
    """The summary per paper table and each table laid out as the paper prints it, cells coloured by status."""
    if not views:
        return ""
    head = "".join(f"<th>{escape(name)}</th>" for _, name in SUMMARY_CLASSES)
    parts = ['<h2 id="paper-tables">The papers\' tables</h2>',
             f'<table class="summary views"><thead><tr><th>paper table</th><th>paper numbers</th>{head}'
             "<th>GPU-h</th><th>CPU-h</th><th>of which recorded</th></tr></thead><tbody>"]
    for view in views:
        counts = "".join(f'<td class="num{f" {kind}" if view["counts"][kind] else ""}">{view["counts"][kind]}</td>'
                         for kind, _ in SUMMARY_CLASSES)
        parts.append(f'<tr><td><a href="#{escape(view["anchor"], quote=True)}">{escape(view["title"])}</a></td>'
                     f'<td class="num">{view["paper_numbers"]}</td>{counts}'
                     f'<td class="num">{format_hours(view["gpu_hours"])}</td>'
                     f'<td class="num">{format_hours(view["cpu_hours"])}</td>'
                     f'<td class="num">{format_hours(view["recorded_gpu_hours"])} GPU-h, '
                     f'{format_hours(view["recorded_cpu_hours"])} CPU-h</td></tr>')
    parts.append("</tbody></table>")
    parts.append(f'<p class="legend">Each cell: <span class="paper">paper</span>{SEPARATOR}<span class="ours">ours</span>'
                 f'{SEPARATOR}<span class="delta">Δ</span>, coloured by status: '
                 + " ".join(f'<span class="badge {kind}">{name}</span>' for kind, name in
                            (("reproduced", "reproduced"), ("not-reproduced", "not reproduced"),
                             ("not-a-reproduction", "smoke run or generated data"), ("not-run", "not yet run"),
                             ("no-value", "no value"), ("no-paper", "no published number")))
                 + ". Hover a cell for its status and tolerance.</p>")
    for view in views:
        columns = "".join(f"<th>{escape(label)}</th>" for label in view["column_labels"])
        body = []
        for r, label in enumerate(view["row_labels"]):
            cells = "".join(_view_cell(view["cells"].get((r, c))) for c in range(len(view["column_labels"])))
            body.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
        parts.append(f'<h3 id="{escape(view["anchor"], quote=True)}">{escape(view["title"])}</h3>'
                     f'<p class="papers">{escape("; ".join(view["papers"]))}</p>'
                     f'<div class="scroll"><table class="paper-table"><thead><tr><th></th>{columns}</tr></thead>'
                     f'<tbody>{"".join(body)}</tbody></table></div>')
    return "".join(parts)


def _select(name: str, values: list[str]) -> str:
    options = "".join(f'<option value="{escape(v, quote=True)}">{escape(v)}</option>' for v in values)
    return (f'<label>{name}<select id="filter-{name}" data-filter="{name}">'
            f'<option value="">all</option>{options}</select></label>')


def superseded_html(rows: list[dict[str, Any]]) -> str:
    """Earlier recordings of runs recorded again (``report.superseded_rows``): listed, not counted."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(name)}</th>" for name in SUPERSEDED_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{escape(text)}</td>" for text in superseded_cells(row))
                   + f'<td><a href="{escape(row["path"], quote=True)}">json</a></td></tr>' for row in rows)
    intro = escape(SUPERSEDED_INTRO).replace("`replibench record --replace`",
                                             "<code>replibench record --replace</code>")
    return (f'<h2 id="superseded">{escape(SUPERSEDED_TITLE)}</h2><p>{intro}</p>'
            f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def leaderboard_html(board, results, plots: dict[str, list], missing: dict[str, list[dict[str, Any]]],
                     base: Path, views: list[dict[str, Any]] | None = None,
                     superseded: list[dict[str, Any]] | None = None,
                     claims: list[dict[str, Any]] | None = None) -> str:
    """The whole page. ``results`` is the tidy results table (for each run's provenance),
    ``plots`` the :class:`~replibench.report.plots.PlotRef` per family, ``base`` the page's folder,
    ``views`` the papers' tables (:func:`replibench.report.paper_views`)."""
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for record in results.drop_duplicates(["run_id", "preset"]).to_dict("records"):
        runs.setdefault(record["preset"], {})[record["run_id"]] = record
    records = board.to_dict("records")
    families = sorted(set(board["family"]) | set(missing))
    summary = ["<table class=\"summary\"><thead><tr><th>family</th><th>rows</th><th>summary</th>"
               "<th>paper numbers not run</th></tr></thead><tbody>"]
    for family in families:
        part = board[board["family"] == family]
        summary.append(f'<tr><td><a href="#plots-{escape(family, quote=True)}">{escape(family)}</a></td>'
                       f"<td>{len(part)}</td><td>{escape(family_summary(part))}</td>"
                       f"<td>{len(missing.get(family, []))}</td></tr>")
    summary.append("</tbody></table>")
    controls = "".join(_select(name, sorted({str(r[name]) for r in records})) for name in FILTERS)
    head = "".join(f'<th data-type="{kind}" aria-sort="none"><button type="button">{escape(name)}</button></th>'
                   for name, kind in COLUMNS)
    body = "".join(_row(index, row, runs, plots.get(row["family"], []), base) for index, row in enumerate(records))
    gallery = []
    for family in families:
        gallery.append(f'<h3 id="plots-{escape(family, quote=True)}">{escape(family)}</h3><div class="gallery">')
        for plot in plots.get(family, []):
            href = _href(plot.path, base)
            gallery.append(f'<figure><a href="{href}"><img src="{href}" alt="{escape(plot.title, quote=True)}" '
                           f'loading="lazy"></a><figcaption>{escape(plot.title)}</figcaption></figure>')
        gallery.append("</div>")
        if missing.get(family):
            names = ("dataset", "task", "variant", "model", "metric")
            items = "".join(f"<li>{escape(' / '.join(str(e[k]) for k in names))} = {escape(format_number(e['value']))}"
                            "</li>" for e in missing[family])
            gallery.append(f"<details><summary>{len(missing[family])} paper numbers without a run in this table"
                           f"</summary><ul>{items}</ul></details>")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>replibench leaderboard</title>
<style>
{_asset("leaderboard.css")}</style>
</head>
<body>
<h1>replibench leaderboard</h1>
<p class="lead">Ours = mean ± sample std over seeds (n). Δ = ours − paper. {escape(RULE).replace("*reproduced*",
"<em>reproduced</em>").replace("`paper`", "<code>paper</code>")} <code>smoke</code> rows check the pipeline and never
count. Rows marked * are derived by the family from other rows. runs: device and origin (local: this
<code>snakemake</code>; recorded: committed under <code>recorded/</code>). Click a column to sort, click a row for its
paper reference, per-seed values, provenance and figures.</p>
{"".join(summary)}
{views_html(views or [])}
<h2 id="all-rows">All rows</h2>
<div id="controls">{controls}<label>search<input id="filter-text" type="search" placeholder="any text in a row"></label>
<span id="shown-count">{len(records)} of {len(records)} rows</span></div>
<table id="leaderboard">
<thead><tr>{head}</tr></thead>
{body}
</table>
{claims_html(claims or [])}
{superseded_html(superseded or [])}
<h2 id="plots">Figures</h2>
{"".join(gallery)}
<script>
{_asset("leaderboard.js")}</script>
</body>
</html>
"""
