"""A client of a MapFish Print v3 service, for acceptance tests."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests

from c2cwsgiutils.acceptance import utils
from c2cwsgiutils.acceptance.connection import CacheExpected, Connection

__all__ = ["PrintConnection"]

_LOG = logging.getLogger(__name__)


class PrintConnection(Connection):
    """A connection to MapFish Print (``base_url`` is the print root, e.g. ``http://print:8080/print``)."""

    def wait_ready(self, timeout: float = 60, app: str = "default") -> None:
        """Wait until the print service answers the capabilities of ``app``.

        Raises:
            AssertionError: ``Timeout: <last error>`` when not ready in time.
        """
        utils.retry_timeout(lambda: self.get_capabilities(app), timeout=timeout)

    def get_capabilities(self, app: str) -> Any:
        """Return the capabilities of a print application."""
        return self.get_json(f"{app}/capabilities.json", cors=False, cache_expected=CacheExpected.DONT_CARE)

    def get_example_requests(self, app: str) -> dict[str, Any]:
        """Return the example requests of a print application, by name, as decoded JSON."""
        examples = self.get_json(
            f"{app}/exampleRequest.json", cors=False, cache_expected=CacheExpected.DONT_CARE
        )
        return {
            name: json.loads(value) if isinstance(value, str) else value for name, value in examples.items()
        }

    def get_pdf(self, app: str, request: Any, timeout: float = 60) -> requests.Response:
        """Render ``request`` with a print application and return the response holding the PDF.

        Raises:
            AssertionError: When the job fails or is not done within ``timeout`` seconds.
        """
        job = self.post_json(
            f"{app}/report.pdf", json=request, cors=False, cache_expected=CacheExpected.DONT_CARE
        )
        ref = job["ref"]
        deadline = time.monotonic() + timeout
        while True:
            status = self.get_json(f"status/{ref}.json", cors=False, cache_expected=CacheExpected.DONT_CARE)
            if status.get("done"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"Timeout waiting for the print job {ref}: {status}")
            time.sleep(0.5)
        assert status.get("status", "finished") == "finished", f"Print job {ref} failed: {status}"
        download_url = job.get("downloadURL") or f"report/{ref}"
        if download_url.startswith("/"):
            download_url = requests.compat.urljoin(self.base_url, download_url)
        response = self.get_raw(download_url, cors=False, cache_expected=CacheExpected.DONT_CARE)
        _LOG.info("Print job %s of %s: %d bytes", ref, app, len(response.content))
        return response

    def get_apps(self) -> list[str]:
        """Return the names of the print applications."""
        apps: list[str] = self.get_json("apps.json", cors=False, cache_expected=CacheExpected.DONT_CARE)
        return apps
