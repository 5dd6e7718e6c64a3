"""A pytest plugin that attaches compose logs and ``ps`` to the report of a failing test.

Enable it with ``pytest_plugins = ["c2cwsgiutils.acceptance.pytest_plugin"]`` in a ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from c2cwsgiutils.acceptance.composition import active_compositions

__all__ = ["pytest_runtest_makereport"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """On a failing test, add every active composition's ``ps`` and logs as report sections."""
    del item, call
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for composition in active_compositions():
        try:
            text = composition.report()
        except Exception as error:
            text = f"Cannot get the logs: {error}"
        report.sections.append((f"compose {composition.project_name}", text))
