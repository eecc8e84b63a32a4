"""replibench: reproduce published ML results end to end and publish them as a leaderboard.

The package holds all logic; Snakemake rules only call its CLI (``replibench --help``).
Heavy libraries (torch, pymatgen, e3nn) are imported inside the functions that need them so
that ``replibench --help`` and ``snakemake -n`` stay fast.
"""

__version__ = "0.1.0"
