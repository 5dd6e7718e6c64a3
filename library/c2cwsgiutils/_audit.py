"""The audit log of the administration views: one line per action, with who asked it."""

from __future__ import annotations

import logging
from typing import Any

_LOG = logging.getLogger("c2cwsgiutils.audit")


def who(request: Any) -> str:
    """Describe the author of a request: client address and kind of authentication."""
    from c2cwsgiutils import auth

    kind = auth.auth_type(request.registry.settings).name
    user = ""
    try:
        is_user, details = auth.is_auth_user(request)
        if is_user and details:
            user = f" {details.get('login')}"
    except Exception:  # the audit line must not fail the action it describes
        _LOG.debug("Could not get the user of the request", exc_info=True)
    return f"{request.client_addr} ({kind}{user})"


def log(request: Any, what: str, result: str) -> None:
    """Write the audit line of one administration action."""
    _LOG.info("Admin action by %s: %s: %s", who(request), what, result)
