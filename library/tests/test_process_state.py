"""One reset puts the library's process-global state back as a fresh process has it."""

from __future__ import annotations

import requests.adapters
from prometheus_client import CollectorRegistry

from c2cwsgiutils import _metrics, _post_import, _versions, redis_utils, testing
from c2cwsgiutils.request_tracking import _requests


def test_reset_removes_wrappers_hooks_registries_and_clients(redis_url, monkeypatch):
    """After an application was built and used, the reset leaves nothing of it in the process."""
    import redis.client

    monkeypatch.setenv("C2C_REDIS_URL", redis_url)
    original_send = requests.adapters.HTTPAdapter.send
    original_execute = redis.client.Redis.execute_command
    registry = CollectorRegistry()
    _metrics.use_registry(registry)
    app = testing.make_test_app({}, includes=("c2cwsgiutils.pyramid",))
    app.get("/nothing", status=404)
    _post_import.when_imported("c2cwsgiutils_never_imported", lambda module: None)
    master, _, _ = redis_utils.get()
    assert master is not None
    assert requests.adapters.HTTPAdapter.send is not original_send
    assert redis.client.Redis.execute_command is not original_execute
    _versions.check()

    testing.reset_process_state()

    assert requests.adapters.HTTPAdapter.send is original_send
    assert redis.client.Redis.execute_command is original_execute
    assert not _requests.is_installed()
    assert _post_import.pending == {}
    assert _metrics.get().registry is not registry
    assert redis_utils._STATE.clients == (None, None, None)
    assert not _versions._checked
