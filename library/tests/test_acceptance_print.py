"""PrintConnection talks to a fake MapFish Print v3 service on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from _http_server import serve

from c2cwsgiutils.acceptance.print import PrintConnection


class _FakePrint:
    def __init__(self):
        self.ready = threading.Event()
        self.polls = 0
        self.jobs = {}
        self.examples = {"simple": {"layout": "A4"}}
        self.referers = set()

    def __call__(self, request, method, body):  # noqa: PLR0911 # one branch per fake endpoint
        path = request.path.removeprefix("/print/")
        self.referers.add(request.headers.get("Referer"))
        if not self.ready.is_set():
            return 503, {}, b"starting"
        json_headers = {"Content-Type": "application/json"}
        if path == "apps.json":
            return 200, json_headers, b'["default", "a4"]'
        if path.endswith("/capabilities.json"):
            return 200, json_headers, json.dumps({"app": path.split("/")[0]}).encode()
        if path.endswith("/exampleRequest.json"):
            return (
                200,
                json_headers,
                json.dumps({k: json.dumps(v) for k, v in self.examples.items()}).encode(),
            )
        if path.endswith("/report.pdf") and method == "POST":
            ref = f"ref{len(self.jobs)}"
            self.jobs[ref] = json.loads(body)
            answer = {
                "ref": ref,
                "statusURL": f"/print/status/{ref}.json",
                "downloadURL": f"/print/report/{ref}",
            }
            return 200, json_headers, json.dumps(answer).encode()
        if path.startswith("status/"):
            self.polls += 1
            ref = path.removeprefix("status/").removesuffix(".json")
            failed = self.jobs[ref].get("fail", False)
            done = self.polls % 2 == 0
            status = "error" if failed else ("finished" if done else "running")
            return 200, json_headers, json.dumps({"done": done, "status": status}).encode()
        if path.startswith("report/"):
            return 200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 fake"
        return 404, {}, b"not found"


@pytest.fixture
def fake_print():
    fake = _FakePrint()
    with serve(fake) as url:
        yield fake, PrintConnection(url + "/print", "http://example.test")


def test_wait_ready_and_metadata(fake_print):
    """wait_ready waits for the capabilities; apps, capabilities and examples are decoded."""
    fake, connection = fake_print
    threading.Timer(0.3, fake.ready.set).start()
    connection.wait_ready(timeout=10, app="a4")
    assert connection.get_apps() == ["default", "a4"]
    assert connection.get_capabilities("a4") == {"app": "a4"}
    assert connection.get_example_requests("a4") == {"simple": {"layout": "A4"}}


def test_get_pdf_polls_until_done(fake_print):
    """get_pdf submits the job, polls its status and downloads the PDF; a failed job is an error."""
    fake, connection = fake_print
    fake.ready.set()
    response = connection.get_pdf("a4", {"layout": "A4"}, timeout=10)
    assert response.content.startswith(b"%PDF")
    assert fake.jobs["ref0"] == {"layout": "A4"}
    with pytest.raises(AssertionError, match="failed"):
        connection.get_pdf("a4", {"fail": True}, timeout=10)


def test_wait_ready_times_out(fake_print):
    """wait_ready fails with the last error when print never answers."""
    _, connection = fake_print
    with pytest.raises(AssertionError, match=r"Timeout: .*status 503"):
        connection.wait_ready(timeout=0.6)


def test_test_print_script_renders_every_app(fake_print, caplog):
    """c2cwsgiutils-test-print renders each example of each app except default, logging sizes."""
    from c2cwsgiutils.scripts import test_print

    fake, connection = fake_print
    fake.ready.set()
    with caplog.at_level(logging.INFO, logger="c2cwsgiutils.test_print"):
        test_print.main(["--url", connection.base_url, "--referrer", "http://ref.test/", "--timeout", "10"])
    assert [r.getMessage() for r in caplog.records] == ["a4/simple: 13 bytes"]
    assert list(fake.jobs.values()) == [{"layout": "A4"}]
    assert fake.referers == {"http://ref.test/"}


def test_test_print_script_fails_on_a_broken_example(fake_print):
    """c2cwsgiutils-test-print exits with 1 when an example cannot be rendered."""
    from c2cwsgiutils.scripts import test_print

    fake, connection = fake_print
    fake.ready.set()
    fake.examples["broken"] = {"fail": True}
    with pytest.raises(SystemExit) as exit_info:
        test_print.main(["--url", connection.base_url, "--app", "a4", "--timeout", "10"])
    assert exit_info.value.code == 1
    assert len(fake.jobs) == 2
