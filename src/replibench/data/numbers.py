"""Strict parsing of numbers read from text files.

Python's ``float`` accepts more than a data file should hold: ``"1_000"`` (digit grouping, read as
1000), surrounding spaces, ``"infinity"`` and ``"nan"`` spelled many ways. A raw file that holds
those was edited or corrupted; readers refuse such cells instead of guessing.
"""

from __future__ import annotations

import re

#: a plain decimal: optional sign, digits with an optional fraction (or a leading-dot fraction),
#: optional exponent — what CSV writers (pandas, numpy, spreadsheets) produce
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_decimal(text: str) -> float:
    """``text`` as a float when it is a plain decimal (:data:`DECIMAL`); else ``ValueError``
    saying what was found (underscores, spaces, ``inf``/``nan`` and hex are refused)."""
    if not DECIMAL.fullmatch(text):
        raise ValueError(f"{text!r} is not a plain decimal number")
    return float(text)
