"""Which SELECTs the SQL profiler may run a second time (``EXPLAIN ANALYZE`` executes them).

Rolling back the profiler's savepoint undoes the changes to tables, not what PostgreSQL does
outside the transaction: sequence values, advisory locks, notifications, dblink calls, sleeps.
So a statement is analysed only when both rules below find nothing; otherwise it gets a plain
``EXPLAIN`` (the plan without running it) and the log line says why. When in doubt, the rules
say "not safe": the cost is a plan without timings, never a side effect run twice.

1. The statement's text (cheap, no round trip): no call to a function known to have effects
   outside the transaction (``nextval``, ``setval``, ``pg_advisory*``, ``dblink*``,
   ``pg_notify``, ``txid_current*``, ``pg_*_backend``, ``lo_*``, ``set_config``,
   ``pg_sleep*``, ...), no ``FOR UPDATE``/``FOR SHARE``, no ``INTO``, and none of the words
   ``INSERT``, ``UPDATE``, ``DELETE``, ``MERGE`` anywhere (a data-modifying ``WITH``). Words in
   string literals and comments count too.
2. PostgreSQL's own plan: ``EXPLAIN (VERBOSE)`` (planned, not run) shows every function the
   statement calls once views are expanded and SQL functions inlined; none of them may be
   ``VOLATILE`` in ``pg_proc`` (user functions are, unless declared otherwise), and the plan
   may neither lock nor modify rows.

Functions declared ``STABLE`` or ``IMMUTABLE`` are trusted, as PostgreSQL trusts them, and so
are the functions behind operators and casts (the plan does not name them).
"""

from __future__ import annotations

import re
from typing import Any

_CALL = r'"?\s*\('
_KNOWN = re.compile(
    r"\b("
    r"nextval|setval|setseed|set_config|dblink\w*|lo_\w+|txid_current\w*|pg_current_xact_id\w*|"
    r"pg_(?:try_)?advisory\w*|pg_notify|pg_\w*_backend|pg_sleep\w*|pg_log_\w+|pg_export_snapshot|"
    r"pg_reload_conf|pg_rotate_logfile\w*|pg_switch_wal|pg_promote|pg_create_restore_point|"
    r"pg_\w*backup\w*|pg_stat_reset\w*|pg_\w*replication_\w+|pg_logical_emit_message|pg_file_\w+|"
    r"pg_import_system_collations"
    r")" + _CALL,
    re.IGNORECASE,
)
_LOCKS = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?UPDATE\b|\bFOR\s+(?:KEY\s+)?SHARE\b", re.IGNORECASE)
_MODIFIES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|INTO)\b", re.IGNORECASE)
# In an EXPLAIN (VERBOSE, COSTS OFF) plan: a function call is a name (quoted when it must be)
# followed by a parenthesis; relation names are never followed by one without the costs.
_PLAN_CALL = re.compile(r'(?:"((?:[^"]|"")+)"|([^\W\d][\w$]*))\s*\(')
_PLAN_WRITES = re.compile(r"^\s*(?:->\s*)?(LockRows|(?:Insert|Update|Delete|Merge) on )", re.MULTILINE)


def by_text(statement: str) -> str | None:
    """Why ``statement`` must not be analysed, from its text alone; None if nothing was found."""
    known = _KNOWN.search(statement)
    if known is not None:
        return f"it calls {known.group(1).lower()}(), which has effects a rollback does not undo"
    if _LOCKS.search(statement):
        return "it locks rows (FOR UPDATE/SHARE)"
    modifies = _MODIFIES.search(statement)
    if modifies is not None:
        return f"it contains {modifies.group(1).upper()}, it may write"
    return None


def by_plan(cursor: Any, statement: str, parameters: Any) -> str | None:
    """Why ``statement`` must not be analysed, from PostgreSQL's plan and catalog; None if safe.

    Runs in the profiler's savepoint, on the statement's connection: ``EXPLAIN (VERBOSE)`` plans
    without executing, and the ``pg_proc`` query reads the catalog.
    """
    cursor.execute("EXPLAIN (VERBOSE, COSTS OFF) " + statement, parameters)
    plan = "\n".join(str(row[0]) for row in cursor.fetchall())
    writes = _PLAN_WRITES.search(plan)
    if writes is not None:
        return f"its plan has a {writes.group(1).strip()} node"
    names = {quoted.replace('""', '"') if quoted else bare for quoted, bare in _PLAN_CALL.findall(plan)}
    if not names:
        return None
    # The names are embedded as literals (the DBAPI's parameter style depends on the driver):
    # one holding a quote or a backslash cannot be, so it counts as unsafe.
    odd = sorted(name for name in names if "'" in name or "\\" in name)
    if odd:
        return f"it calls {odd[0]!r}, a function whose volatility is not checked"
    literals = ", ".join(f"'{name}'" for name in sorted(names))
    cursor.execute(
        "SELECT DISTINCT proname::text FROM pg_catalog.pg_proc "  # noqa: S608  # the literals cannot hold a quote
        f"WHERE provolatile = 'v' AND proname::text IN ({literals}) ORDER BY 1"
    )
    volatile = [str(row[0]) for row in cursor.fetchall()]
    if volatile:
        return "it calls the VOLATILE function(s) " + ", ".join(f"{name}()" for name in volatile)
    return None
