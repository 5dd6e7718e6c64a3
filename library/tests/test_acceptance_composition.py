"""Composition drives a real compose project: up, exec, run, logs, stop/start, ports, down, leftovers.

Needs a Docker daemon and ``debian:bookworm-slim`` in the local Docker (``make image`` imports it).
Without a daemon the tests skip, or fail when ``REQUIRE_DOCKER=1`` (as in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap

import pytest

from c2cwsgiutils.acceptance import composition as composition_module
from c2cwsgiutils.acceptance.composition import Composition, cleanup_leftovers

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
# A DOCKER_CONFIG directory whose cli-plugins/ has the compose v2 plugin (.ci/run installs it:
# Debian 12 ships compose v1 only), so that both compose versions are tested.
COMPOSE_V2_CONFIG = os.environ.get("C2C_COMPOSE_V2_CONFIG")

COMPOSE_FILE = textwrap.dedent(
    """\
    version: "2.4"
    services:
      worker:
        image: debian:bookworm-slim
        command: ["sh", "-c", "echo hello from worker; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        ports: ["127.0.0.1::8080"]
        healthcheck:
          test: ["CMD", "true"]
          interval: 1s
          timeout: 2s
          retries: 3
      other:
        image: debian:bookworm-slim
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    """
)


def _docker_ready() -> bool:
    try:
        subprocess.run([DOCKER, "info"], capture_output=True, check=True, timeout=30)
        subprocess.run(
            [DOCKER, "image", "inspect", "debian:bookworm-slim"], capture_output=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@pytest.fixture(scope="module")
def compose_file(tmp_path_factory):
    if not _docker_ready():
        message = f"no Docker daemon answers ({DOCKER} info) or debian:bookworm-slim is missing (make image)"
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path_factory.mktemp("compose") / "docker-compose.yaml"
    path.write_text(COMPOSE_FILE)
    return path


def _missing(message):
    if os.environ.get("REQUIRE_DOCKER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module", params=["v1", "v2"])
def cli(request):
    """The compose command of each version, as ``Composition`` keyword arguments."""
    if request.param == "v1":
        v1 = shutil.which("docker-compose")
        if v1 is None:
            _missing("docker-compose (compose v1) is not installed")
        return {"compose": [v1]}
    if not COMPOSE_V2_CONFIG:
        _missing(
            "C2C_COMPOSE_V2_CONFIG names no DOCKER_CONFIG with the compose v2 plugin (.ci/run installs it)"
        )
    return {"compose": [DOCKER, "compose"], "env": {"DOCKER_CONFIG": COMPOSE_V2_CONFIG}}


def test_each_compose_version_is_the_one_used(cli):
    """The v2 plugin answers as v2 (``docker compose version``), v1 as v1."""
    output = subprocess.run(
        [*cli["compose"], "version"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **cli.get("env", {})},
    ).stdout
    assert ("version 2." if cli["compose"][-1] == "compose" else "version 1.") in output


@pytest.fixture(scope="module")
def composition(request, compose_file, cli):
    result = Composition(request, "c2ctest", compose_file, docker=DOCKER, **cli)
    result.up(timeout=60)
    return result


def _containers(project):
    output = subprocess.run(
        [DOCKER, "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return output.split()


def test_up_is_healthy_and_unique(composition):
    """Starting the project returns once the containers run and are healthy, under a unique project name."""
    assert composition.project_name.startswith(f"c2ctest-{os.getpid()}-")
    states = composition._states()
    assert len(states) == 2
    assert all(state["Status"] == "running" for state in states.values())
    assert composition in composition_module.active_compositions()
    assert sorted(composition.services()) == ["other", "worker"]


def test_exec_run_logs(composition):
    """The exec and run methods return the command output; logs contain what the services printed."""
    assert composition.exec("worker", "sh", "-c", "echo $((6 * 7))").strip() == "42"
    assert composition.exec("worker", "cat", input_="piped").strip() == "piped"
    assert composition.run("other", "echo", "one-off").strip() == "one-off"
    assert "hello from worker" in composition.logs("worker")
    with pytest.raises(AssertionError, match="failed with code 3"):
        composition.exec("worker", "sh", "-c", "exit 3")


def test_port_lookup(composition):
    """The port lookup gives the published host port; an unpublished port is an error."""
    port = composition.port("worker", 8080)
    assert 0 < port < 65536
    with pytest.raises(AssertionError):
        composition.port("worker", 9999)


def test_stop_start_restart_kill(composition):
    """A service can be stopped, started, restarted and killed."""
    composition.stop("other", timeout=5)
    assert "exited" in {s["Status"] for s in composition._states("other").values()}
    composition.start("other", timeout=30)
    assert {s["Status"] for s in composition._states("other").values()} == {"running"}
    composition.restart("worker", timeout=30)
    assert {s["Health"]["Status"] for s in composition._states("worker").values()} == {"healthy"}
    composition.kill("other")
    assert {s["ExitCode"] for s in composition._states("other").values()} == {137}
    composition.start("other", timeout=30)
    assert "worker" in composition.ps()


def test_unhealthy_service_fails_up_with_logs(compose_file, cli, tmp_path):
    """Starting fails quickly with the logs when a service turns unhealthy."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        COMPOSE_FILE.replace('test: ["CMD", "true"]', 'test: ["CMD", "false"]').replace(
            "retries: 3", "retries: 1"
        )
    )
    bad = Composition(None, "c2ctestbad", path, docker=DOCKER, **cli)
    try:
        with pytest.raises(AssertionError, match=r"(?s)unhealthy.*hello from worker"):
            bad.up(timeout=30)
    finally:
        bad.down()
    assert _containers(bad.project_name) == []


@pytest.mark.parametrize(("status", "fails"), [(0, False), (3, True)])
def test_a_one_shot_job_that_succeeds_is_done_and_one_that_fails_stops_up(
    compose_file, cli, tmp_path, status, fails
):
    """A job exiting with 0 (a migration) is complete, not a failure; another status fails with its logs.

    The job ends at once; the worker's health check takes a second: up() sees the job's exit status.
    """
    path = tmp_path / "job.yaml"
    path.write_text(
        COMPOSE_FILE
        + f"""  job:
        image: debian:bookworm-slim
        command: ["sh", "-c", "echo job ran; exit {status}"]
    """
    )
    job = Composition(None, "c2ctestjob", path, docker=DOCKER, **cli)
    try:
        if fails:
            with pytest.raises(AssertionError, match=r"(?s)exit code 3.*job ran"):
                job.up(timeout=60)
        else:
            job.up(timeout=60)
            assert "job ran" in job.logs()
    finally:
        job.down()


def test_down_and_leftover_cleanup(compose_file, cli):
    """Stopping removes everything; leftovers of a dead process are removed, a live one's are kept."""
    leftover = Composition(None, "c2ctestleft", compose_file, docker=DOCKER, **cli)
    leftover.project_name = "c2ctestleft-999999999-deadbeef"  # a pid that cannot exist
    leftover._run("up", "--detach", "other")
    alive = Composition(None, "c2ctestleft", compose_file, cleanup=False, docker=DOCKER, **cli)
    alive.up("other", timeout=30)
    try:
        assert _containers(leftover.project_name)
        assert cleanup_leftovers("c2ctestleft", DOCKER) == [leftover.project_name]
        assert _containers(leftover.project_name) == []
        assert _containers(alive.project_name)
    finally:
        leftover.down()
        alive.down()
    assert _containers(alive.project_name) == []


class _FakeComposition:
    project_name = "fake-1-abc"

    def report(self):
        return "$ ps\nworker running\n$ logs\nworker | boom"


class _Outcome:
    def __init__(self, report):
        self.report = report

    def get_result(self):
        return self.report


class _Report:
    def __init__(self, failed):
        self.failed = failed
        self.sections = []


def test_plugin_attaches_logs_to_failures_only(monkeypatch):
    """The pytest plugin adds ps and logs of active compositions to failing reports only."""
    from c2cwsgiutils.acceptance import pytest_plugin

    monkeypatch.setattr(composition_module, "_ACTIVE", [_FakeComposition()])
    for failed in (True, False):
        report = _Report(failed)
        hook = pytest_plugin.pytest_runtest_makereport(None, None)
        next(hook)
        with pytest.raises(StopIteration):
            hook.send(_Outcome(report))
        if failed:
            assert report.sections == [("compose fake-1-abc", "$ ps\nworker running\n$ logs\nworker | boom")]
        else:
            assert report.sections == []
