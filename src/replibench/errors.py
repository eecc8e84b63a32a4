"""Errors a user can act on. Each message names the file, the row or key, what was expected and
what was found; the CLI prints them without a traceback."""

from __future__ import annotations


class ReplibenchError(Exception):
    """Base class: the CLI prints ``str(error)`` and exits with status 2."""


class ConfigError(ReplibenchError):
    """The configuration does not match the schema or the registries."""


class DataError(ReplibenchError):
    """An input file is missing, malformed, or violates the dataset's protocol."""


class ChecksumError(DataError):
    """A downloaded file does not have the published checksum."""


class UnsafeArchiveError(DataError):
    """An archive member would escape the target folder or is a link/device."""
