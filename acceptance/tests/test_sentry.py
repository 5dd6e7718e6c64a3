"""Sentry: errors of every server reach the (loopback) Sentry receiver, with tags and the request id."""

from __future__ import annotations

import json
import uuid

import requests
from c2cwsgiutils.acceptance import utils
from c2cwsgiutils.acceptance.connection import Connection
from conftest import Stack


def test_error_reaches_sentry(stack: Stack, app: Connection, app_name: str) -> None:
    tag = uuid.uuid4().hex
    app.get_json("api/error", params={"tag": tag}, expected_status=500)

    def received() -> dict[str, object]:
        envelopes = requests.get(stack.url("sentry", 8000) + "events", timeout=10).json()
        for envelope in envelopes:
            for item in envelope["items"]:
                if isinstance(item, dict) and tag in json.dumps(item) and "exception" in item:
                    return item
        raise AssertionError(f"no event with {tag} among {len(envelopes)} envelopes")

    event = utils.retry_timeout(received, timeout=60)
    assert event["environment"] == "acceptance"
    assert event["tags"]["service"] == app_name
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
