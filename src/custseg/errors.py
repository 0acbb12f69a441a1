"""The error tree: every error custseg raises on purpose derives from :class:`CustsegError`.

Messages say what is wrong, the value seen and the fix, on one line, so the CLI can print them
as they are.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CustsegError",
    "CustsegWarning",
    "EmptyDataError",
    "InputError",
    "ModelFileError",
    "OutputError",
    "SchemaError",
]


class CustsegError(Exception):
    """Base of every error custseg raises on purpose."""


class InputError(CustsegError, ValueError):
    """The input cannot be read or lacks what is needed."""


class SchemaError(InputError):
    """A required column is missing or of the wrong kind."""


class EmptyDataError(InputError):
    """Nothing is left to segment."""


class ConfigError(CustsegError, ValueError):
    """An option or config value is invalid."""


class OutputError(CustsegError, OSError):
    """The outputs cannot be written where asked."""


class ModelFileError(InputError):
    """A saved model file is missing, corrupt or not a custseg model."""

    #: The problem alone, without the fix (a file reader adds its own).
    problem: str | None = None


class CustsegWarning(UserWarning):
    """Something was done that the user should know about (a fallback, a dropped option)."""
