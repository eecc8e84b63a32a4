"""ETT (Electricity Transformer Temperature): ETTh1, ETTh2 (hourly), ETTm1, ETTm2 (15-minute).

Source: zhouhaoyi/ETDataset, pinned at commit ``1d16c8f`` (the March-2021 commit ``450ea77``
swapped the two m-files, so anything unpinned may hold them swapped). Licence CC BY-ND 4.0: we
keep verbatim copies and a format conversion to Parquet (a "technical modification"), never
modified values. Cite Informer (Zhou et al., AAAI 2021) as the upstream README asks.

Protocol constants (TSLib ``Dataset_ETT_hour`` / ``Dataset_ETT_minute``, the loaders behind the
TimesNet paper) live here as named functions: the 12/4/4-month row borders and the train-only
z-score scaler. Preprocessing keeps every row of the file; the borders are applied by the tasks.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from replibench.data.checksum import sha256_file
from replibench.data.numbers import parse_decimal
from replibench.data.download import RemoteFile
from replibench.data.tables import Rejects, write_data_card, write_parquet_atomic
from replibench.errors import DataError

FAMILY = "ett"
CHANNELS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
COLUMNS = ("date", *CHANNELS)
LICENSE = "CC-BY-ND-4.0"
CITATION = (
    "Zhou et al., Informer: Beyond Efficient Transformer for Long Sequence Time-Series "
    "Forecasting, AAAI 2021 (data: github.com/zhouhaoyi/ETDataset)"
)
_COMMIT = "1d16c8f4f943005d613b5bc962e9eeb06058cf07"
_BASE = f"https://raw.githubusercontent.com/zhouhaoyi/ETDataset/{_COMMIT}/ETT-small"


def _remote(name: str, size: int, sha256: str) -> RemoteFile:
    return RemoteFile(name=name, url=f"{_BASE}/{name}", mirror_path=f"ett/{name}", size=size,
                      checksum=f"sha256:{sha256}", license=LICENSE)


REMOTE_FILES: dict[str, RemoteFile] = {
    f.name: f
    for f in (
        _remote("ETTh1.csv", 2589657, "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066"),
        _remote("ETTh2.csv", 2417960, "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b"),
        _remote("ETTm1.csv", 10360719, "6ce1759b1a18e3328421d5d75fadcb316c449fcd7cec32820c8dafda71986c9e"),
        _remote("ETTm2.csv", 9677236, "db973ca252c6410a30d0469b13d696cf919648d0f3fd588c60f03fdbdbadd1fd"),
    )
}


@dataclass(frozen=True)
class EttDataset:
    """One ETT file: its config name, raw file and sampling interval."""

    name: str  # config name, e.g. "etth1"
    display_name: str  # "ETTh1"
    raw_file: str  # "ETTh1.csv"
    minutes_per_step: int  # 60 (hourly) or 15
    expected_rows: int  # data rows (header excluded) in the pinned file
    family: str = FAMILY

    @property
    def remote_files(self) -> list[RemoteFile]:
        return [REMOTE_FILES[self.raw_file]]

    def preprocess(self, raw_files: list[Path], out_dir: Path, *, workers: int = 1,
                   options: dict | None = None) -> dict:
        """Dataset contract: raw files (in ``remote_files`` order) → Parquet folder; see :func:`preprocess`."""
        if len(raw_files) != 1:
            raise DataError(f"{self.name}: expected 1 raw file ({self.raw_file}), got {len(raw_files)}")
        return preprocess(raw_files[0], out_dir, dataset=self.name)


ETTH1 = EttDataset("etth1", "ETTh1", "ETTh1.csv", 60, 17420)
ETTH2 = EttDataset("etth2", "ETTh2", "ETTh2.csv", 60, 17420)
ETTM1 = EttDataset("ettm1", "ETTm1", "ETTm1.csv", 15, 69680)
ETTM2 = EttDataset("ettm2", "ETTm2", "ETTm2.csv", 15, 69680)
DATASETS: dict[str, EttDataset] = {d.name: d for d in (ETTH1, ETTH2, ETTM1, ETTM2)}


def dataset_by_name(name: str) -> EttDataset:
    """Look up ``etth1`` / ``ETTh1`` (case-insensitive), with a clear error otherwise."""
    key = name.lower()
    if key not in DATASETS:
        raise DataError(f"unknown ETT dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[key]


def split_borders_ett(dataset: str, seq_len: int) -> dict[str, tuple[int, int]]:
    """Row ranges ``[start, end)`` of train/val/test, as TSLib's ETT loaders cut them.

    12/4/4 "months" of 30 days: 8640/2880/2880 hourly rows (×4 for 15-minute data). Val and test
    start ``seq_len`` rows early so that their first window's input overlaps the previous split;
    only the targets are disjoint. Rows after the test end are never used.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    steps_per_hour = 60 // dataset_by_name(dataset).minutes_per_step
    month = 30 * 24 * steps_per_hour
    train_end, val_end, test_end = 12 * month, 16 * month, 20 * month
    return {
        "train": (0, train_end),
        "val": (train_end - seq_len, val_end),
        "test": (val_end - seq_len, test_end),
    }


def num_windows(segment_rows: int, seq_len: int, pred_len: int) -> int:
    """Windows in a segment with every window counted (no ``drop_last``): ``n - L - H + 1``."""
    return max(0, segment_rows - seq_len - pred_len + 1)


# -- preprocessing ---------------------------------------------------------------------------

def parquet_schema():  # -> pa.Schema
    """Explicit schema of ``series.parquet``: the timestamp and the seven float64 channels."""
    import pyarrow as pa

    return pa.schema(
        [pa.field("date", pa.timestamp("ms"), nullable=False)]
        + [pa.field(name, pa.float64(), nullable=False) for name in CHANNELS]
    )


def read_ett_csv(path: Path, rejects: Rejects) -> tuple[list, list[list[float]]]:
    """Parse an ETT CSV row by row; unparseable rows go to ``rejects`` with their line number.

    Returns ``(dates, values)`` of the rows that parsed. A wrong header or an empty file is a
    :class:`DataError` (nothing can be parsed from it).
    """
    import datetime as dt

    source = path.name
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: file is empty; expected a header {','.join(COLUMNS)}")
        if tuple(h.strip() for h in header) != COLUMNS:
            missing = [c for c in COLUMNS if c not in header]
            raise DataError(
                f"{path}: line 1: header {header} does not match the ETT columns {list(COLUMNS)}"
                + (f" (missing {missing})" if missing else "")
            )
        dates, values = [], []
        line_number = last_good_line = 1
        for line_number, row in enumerate(reader, start=2):
            raw = ",".join(row)
            if len(row) != len(COLUMNS):
                rejects.add(source=source, row=line_number, raw=raw,
                            reason=f"expected {len(COLUMNS)} fields, found {len(row)}")
                continue
            try:
                stamp = dt.datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S")
            except ValueError:
                rejects.add(source=source, row=line_number, raw=raw,
                            reason=f"date {row[0]!r} is not YYYY-MM-DD HH:MM:SS")
                continue
            parsed = []
            for column, cell in zip(CHANNELS, row[1:]):
                try:
                    number = parse_decimal(cell)  # not float(): it reads "1_000" as 1000
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    rejects.add(source=source, row=line_number, raw=raw,
                                reason=f"column {column}: {cell!r} is not a finite number")
                    break
                parsed.append(number)
            else:
                dates.append(stamp)
                values.append(parsed)
                last_good_line = line_number
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        terminated = handle.read(1) == b"\n"
    if not terminated and dates and line_number == last_good_line:
        # a cut transfer can end inside a number that still parses: the missing newline tells
        dates.pop()
        values.pop()
        rejects.add(source=source, row=line_number, raw=raw,
                    reason="last line is not terminated by a newline: the file looks truncated")
    if not dates and not len(rejects):
        raise DataError(f"{path}: no data rows after the header")
    return dates, values


def check_regular_series(path: Path, dates: list, minutes_per_step: int, rejects: Rejects) -> None:
    """The protocol counts rows, so every row must be present and evenly spaced.

    A rejected row or a gap would shift every later window; refuse with the reasons instead.
    """
    import datetime as dt

    if len(rejects):
        raise DataError(
            f"{path}: {len(rejects)} row(s) could not be parsed (written to rejects.parquet); the ETT "
            f"protocol counts rows, so a series with missing rows cannot be used:\n{rejects.summary()}"
        )
    step = dt.timedelta(minutes=minutes_per_step)
    for index in range(1, len(dates)):
        if dates[index] - dates[index - 1] != step:
            raise DataError(
                f"{path}: line {index + 2}: timestamp {dates[index]} follows {dates[index - 1]}; "
                f"expected a regular {minutes_per_step}-minute step"
            )


def preprocess(raw_file: Path, out_dir: Path, *, dataset: str) -> dict:
    """CSV → ``series.parquet`` (every row, explicit schema) + ``rejects.parquet`` + ``card.json``.

    Rejects and the card are written before any protocol check fails, so a user can see which
    rows were refused and why.
    """
    import pyarrow as pa

    spec = dataset_by_name(dataset)
    raw_file, out_dir = Path(raw_file), Path(out_dir)
    if not raw_file.is_file():
        raise DataError(f"{raw_file}: raw file not found (run the download step first)")
    rejects = Rejects()
    dates, values = read_ett_csv(raw_file, rejects)
    rejects.write(out_dir / "rejects.parquet")
    print(f"{raw_file.name}: {len(dates)} rows parsed, {len(rejects)} rejected")
    check_regular_series(raw_file, dates, spec.minutes_per_step, rejects)
    columns = {"date": pa.array(dates, type=pa.timestamp("ms"))}
    for index, name in enumerate(CHANNELS):
        columns[name] = pa.array([row[index] for row in values], type=pa.float64())
    write_parquet_atomic(pa.table(columns), out_dir / "series.parquet", schema=parquet_schema())
    remote = REMOTE_FILES[spec.raw_file]
    borders = split_borders_ett(spec.name, seq_len=96)
    return write_data_card(
        out_dir / "card.json",
        dataset=spec.name,
        family=FAMILY,
        sources=[{"name": remote.name, "url": remote.url, "sha256": sha256_file(raw_file),
                  "published_checksum": remote.checksum}],
        rows={"series": len(dates)},
        rejected_rows=len(rejects),
        license=LICENSE,
        citation=CITATION,
        notes={
            "display_name": spec.display_name,
            "minutes_per_step": spec.minutes_per_step,
            "split_borders_seq_len_96": {k: list(v) for k, v in borders.items()},
            "unused_tail_rows": len(dates) - borders["test"][1],
            "expected_rows_in_pinned_file": spec.expected_rows,
        },
    )
