"""The table of the log records written by the ``SQLAlchemyHandler``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func

__all__ = ["create_log_table"]


def create_log_table(metadata: MetaData, tablename: str = "logs", tableargs: Any = None) -> Table:
    """Declare the log table: ``id, logger, level, trace, msg, created_at``.

    Args:
        metadata: the metadata the table belongs to.
        tablename: the name of the table.
        tableargs: extra arguments of the table, as the ``__table_args__`` of a declarative class:
            a dictionary of keyword arguments (e.g. ``{"schema": "logs"}``), or a tuple of
            positional arguments (constraints, indexes) whose last item may be such a dictionary.

    Returns:
        The table.
    """
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if isinstance(tableargs, Mapping):
        kwargs = dict(tableargs)
    elif isinstance(tableargs, tuple | list):
        args = tuple(tableargs)
        if args and isinstance(args[-1], Mapping):
            args, kwargs = args[:-1], dict(args[-1])
    elif tableargs is not None:
        raise TypeError(f"tableargs must be a dictionary or a tuple, not {type(tableargs).__name__}")
    return Table(
        tablename,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("logger", Text),
        Column("level", Text),
        Column("trace", Text),
        Column("msg", Text),
        Column("created_at", DateTime(timezone=True), server_default=func.now()),
        *args,
        **kwargs,
    )
