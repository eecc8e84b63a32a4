"""Bring your own predictions: score external files with exactly our protocol and metric code.

One generic command, ``replibench metrics <family> <task> [options]``: the task declares its
options and scores the files (:meth:`replibench.families.task.Task.score_file`, implemented in
``families/<family>/byo.py``); this module keeps what they share and reaches a family only through
the registry. The formats are documented in the README ("Bring your own predictions").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replibench.errors import DataError


def read_predictions_parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise DataError(f"{path}: prediction file not found")
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: not a readable Parquet file: {error}") from error


def score_file(family: str, task: str, argv: list[str]) -> dict[str, Any]:
    """``replibench metrics <family> <task> [options]``: parse ``argv`` with the options the task
    declares and score its files with the task's own code (:meth:`Task.score_file`)."""
    import argparse

    from replibench.errors import ConfigError
    from replibench.registry import resolve

    family_object = resolve("family", family)
    if task not in family_object.tasks:
        raise ConfigError(f"{family} has no task {task!r}; its tasks: {', '.join(family_object.tasks)}")
    task_object = resolve("task", task)
    if task_object.score_file_help is None:
        scorable = [name for name in family_object.tasks if resolve("task", name).score_file_help]
        raise ConfigError(f"{family}/{task} does not score files from outside the pipeline; "
                          f"tasks that do: {', '.join(scorable) or 'none'}")
    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):  # a ConfigError: one line on stderr, exit status 2, no SystemExit
            raise ConfigError(f"{message}\n{self.format_usage().rstrip()}")

    parser = _Parser(prog=f"replibench metrics {family} {task}", description=task_object.score_file_help)
    task_object.add_score_file_arguments(parser)
    return task_object.score_file(vars(parser.parse_args(argv)))
