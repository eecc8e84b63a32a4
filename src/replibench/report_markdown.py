"""``leaderboard.md``: the leaderboard as GitHub-readable Markdown, one section per family.

Only values that follow from the metrics and the references are printed (no wall times, dates or
commits), so the file changes exactly when a number, a row or a paper reference changes — CI opens
a leaderboard pull request on that, not on every rerun.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from replibench.report import REPRODUCED, SMOKE, is_missing, status_kind


def format_number(value: Any, digits: int = 4) -> str:
    """``digits`` significant digits (0.3851, 55.91, 0.002341); ``–`` for a missing value."""
    if is_missing(value):
        return "–"
    return f"{value:.{digits}g}"


def format_ours(row: dict[str, Any]) -> str:
    """Mean, and ± sample std over seeds (2 significant digits) when there are several."""
    text = format_number(row["ours"])
    if row["seeds"] > 1 and not is_missing(row["ours"]):
        text += f" ± {format_number(row['ours_std'], 2)}"
    return text


def format_steps(row: dict[str, Any]) -> str:
    steps = row["steps"]
    text = row["preset"] if is_missing(steps) else f"{row['preset']}, {int(steps)} steps"
    if not is_missing(row["max_steps"]) and row["max_steps"]:
        text += f" (cap {int(row['max_steps'])})"
    return text


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _link(path: Path, base: Path | None) -> str:
    return Path(os.path.relpath(path, base)).as_posix() if base is not None else Path(path).as_posix()


def family_summary(part) -> str:
    counts = part["status"].map(status_kind).value_counts()
    rows = f"{len(part)} row{'' if len(part) == 1 else 's'}"
    return (f"{rows}: {counts.get('reproduced', 0)} reproduced, {counts.get('not-reproduced', 0)} not "
            f"reproduced, {counts.get('not-a-reproduction', 0)} not reproductions (smoke or generated data), "
            f"{counts.get('no-paper', 0)} without a published number.")


def leaderboard_markdown(board, plots: dict[str, list], missing: dict[str, list[dict[str, Any]]] | None = None,
                         base: Path | None = None) -> str:
    """GitHub-readable leaderboard grouped by family, with the family's figures linked (paths
    relative to ``base``, the folder the Markdown file is written to) and its sources listed."""
    missing = missing or {}
    lines = ["# replibench leaderboard", "",
             "Ours = mean ± sample std over seeds (n = seeds). Δ = ours − paper. A row is *reproduced* when",
             "|Δ| is within the stated tolerance (tol.) **and** it comes from a `paper`-preset run on official",
             f"data; `smoke` rows (\"{SMOKE}\") check the pipeline, not the paper, and never count.",
             "Rows marked * are derived by the family from other rows (e.g. ETT's mean over the four horizons).",
             "The same table, sortable and with every run's provenance: `leaderboard.html`.", ""]
    families = sorted(set(board["family"]) | set(missing))
    lines += ["| family | rows | reproduced rows | paper numbers without a run |", "|---|---|---|---|"]
    for family in families:
        part = board[board["family"] == family]
        lines.append(f"| [{family}](#{family}) | {len(part)} | {int((part['status'] == REPRODUCED).sum())} "
                     f"| {len(missing.get(family, []))} |")
    lines.append("")
    for family in families:
        part = board[board["family"] == family]
        lines += [f"## {family}", "", family_summary(part), ""]
        for plot in plots.get(family, []):
            lines.append(f"* [{plot.title}]({_link(plot.path, base)})")
        if plots.get(family):
            lines.append("")
            lines += [f"![{plot.title}]({_link(plot.path, base)})" for plot in plots[family] if not plot.match]
            lines.append("")
        sources: dict[tuple, int] = {}
        table = ["| dataset | task | variant | model | metric | ours | n | paper | Δ | tol. | status | preset | ref |",
                 "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in part.to_dict("records"):
            reference = ""
            if isinstance(row["paper"], str):
                key = (row["paper"], row["table"], row["source"], row["averaging"])
                reference = f"[{sources.setdefault(key, len(sources) + 1)}]"
            variant = row["variant"] + ("*" if row["derived"] else "")
            table.append(" | ".join(["", row["dataset"], row["task"], variant, row["model"],
                                     f"{row['metric']} ({row['direction']})", format_ours(row), str(row["seeds"]),
                                     format_number(row["paper_value"]), format_number(row["delta"], 3),
                                     row["tolerance_text"] if isinstance(row["paper"], str) else "–",
                                     row["status"], format_steps(row), reference, ""]).strip())
        lines += table + [""]
        for (paper, table_name, source, averaging), number in sources.items():
            lines.append(f"{number}. {_cell(paper)}, {_cell(table_name)} ({_cell(source)}); "
                         f"averaging: {_cell(averaging)}")
        if sources:
            lines.append("")
        if missing.get(family):
            files = ", ".join(sorted({f"`{entry['reference_file']}`" for entry in missing[family]}))
            lines += [f"{len(missing[family])} paper numbers of {files} have no run in this table "
                      "(the `paper` preset runs them).", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
