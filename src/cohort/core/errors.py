"""Errors that stop a run with one readable message (never a traceback for the user)."""


class CohortError(Exception):
    """A fault the user must fix; its message names the file, key, row or column."""


class ConfigError(CohortError):
    """The study configuration is invalid."""


class ContractError(CohortError):
    """The raw extract breaks the data contract at file level (missing file or column, unreadable)."""
