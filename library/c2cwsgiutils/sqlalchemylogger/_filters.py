"""Logging filters on the message of a record, by regular expression."""

from __future__ import annotations

import logging
import re

__all__ = ["ContainsExpression", "DoesNotContainExpression"]


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # arguments that do not match the format: the handler reports it later
        return str(record.msg)


class ContainsExpression(logging.Filter):
    """Keep only the records whose message matches a regular expression (:func:`re.search`).

    The message is the one that is stored: ``record.msg`` with its arguments substituted.

    Args:
        expression: the regular expression.
    """

    def __init__(self, expression: str) -> None:
        """Compile the expression."""
        super().__init__()
        self.regex = re.compile(expression)

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether the record's message matches."""
        return self.regex.search(_message(record)) is not None


class DoesNotContainExpression(ContainsExpression):
    """Drop the records whose message matches a regular expression (:func:`re.search`).

    Args:
        expression: the regular expression.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether the record's message does not match."""
        return not super().filter(record)
