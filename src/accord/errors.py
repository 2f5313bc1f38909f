"""Errors a user can act on. Each carries a hint that says what to do next.

Messages never contain record values (names, dates, free text): only column names, row numbers
and counts, so that they are safe to log and to show on a shared screen.
"""

from __future__ import annotations


class AccordError(Exception):
    """An error the user can fix. The CLI prints it without a traceback and exits with ``exit_code``."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class StandardError(AccordError):
    """The data standard file is malformed."""


class MappingError(AccordError):
    """A mapping file is malformed or does not fit the export it is applied to."""


class InputFileError(AccordError):
    """An input file cannot be read as a table at all; the whole batch is rejected."""


class KeyMissingError(AccordError):
    """A secret needed for protection is missing or unreadable."""


class ContributionError(AccordError):
    """A contribution fails verification (tampered, truncated, wrong standard)."""


class StoreError(AccordError):
    """The hub store cannot do what was asked."""


class ParameterError(AccordError):
    """A privacy parameter (epsilon, delta, rho, a budget figure) is not a finite number in range."""


class ReleaseRefused(AccordError):
    """A release cannot be made within the requested privacy parameters."""

    exit_code = 3


class LedgerTampered(ReleaseRefused):
    """The hub's audit, release or ledger entries no longer match their tamper-evident chain."""
