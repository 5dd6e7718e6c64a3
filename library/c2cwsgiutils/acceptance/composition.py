"""Drive a Docker Compose project from acceptance tests.

Typical use in a ``conftest.py``::

    pytest_plugins = ["c2cwsgiutils.acceptance.pytest_plugin"]


    @pytest.fixture(scope="session")
    def composition(request):
        composition = Composition(request, "myapp", "docker-compose.yaml")
        composition.up()
        return composition

Each run uses a unique project name ``<project_name>-<pid>-<random>``; leftovers of runs whose
process is gone (a crashed or killed run) are removed before a new project starts. Both
``docker compose`` (v2) and ``docker-compose`` (v1) are supported; v2 is used when available.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Self

__all__ = ["Composition", "cleanup_leftovers", "compose_command"]

_LOG = logging.getLogger(__name__)
_PROJECT_LABEL = "com.docker.compose.project"
_ACTIVE: list[Composition] = []


def _docker() -> str:
    return os.environ.get("DOCKER") or shutil.which("docker") or "docker"


def compose_command(docker: str | None = None) -> list[str]:
    """Return the compose command line prefix: ``docker compose`` if the v2 plugin works, else v1.

    Args:
        docker: The docker CLI to try the v2 plugin with (default: ``$DOCKER`` or ``docker``).

    Raises:
        RuntimeError: When neither is available.
    """
    docker = docker or _docker()
    try:
        _call([docker, "compose", "version"], check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pass
    else:
        return [docker, "compose"]
    v1 = shutil.which("docker-compose")
    if v1 is None:
        raise RuntimeError("Neither 'docker compose' (v2) nor 'docker-compose' (v1) is available")
    return [v1]


def _call(
    command: Sequence[str],
    *,
    check: bool,
    timeout: float,
    env: Mapping[str, str] | None = None,
    input_: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 # an argument list built by the test suite, no shell
        list(command), capture_output=True, text=True, check=check, timeout=timeout, env=env, input=input_
    )


def _normalize(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower()) or "project"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_leftovers(project_name: str, docker: str | None = None) -> list[str]:
    """Remove containers, networks and volumes of earlier runs whose process is gone.

    Only projects named ``<project_name>-<pid>-<random>`` whose pid is not alive are removed.

    Args:
        project_name: The base project name given to :class:`Composition`.
        docker: The docker CLI.

    Returns:
        The names of the removed projects.
    """
    docker = docker or _docker()
    pattern = re.compile(rf"^{re.escape(_normalize(project_name))}-(\d+)-[0-9a-f]+$")
    kinds = {
        "container": ["ps", "-a"],
        "network": ["network", "ls"],
        "volume": ["volume", "ls"],
    }
    found: dict[str, dict[str, list[str]]] = {}
    for kind, list_command in kinds.items():
        result = _call(
            [docker, *list_command, "--filter", f"label={_PROJECT_LABEL}", "--format", "{{json .}}"],
            check=True,
            timeout=60,
        )
        for line in result.stdout.splitlines():
            entry = json.loads(line)
            labels = dict(item.split("=", 1) for item in entry.get("Labels", "").split(",") if "=" in item)
            project = labels.get(_PROJECT_LABEL, "")
            match = pattern.match(project)
            if match and not _pid_alive(int(match.group(1))):
                ident = entry.get("ID") or entry.get("Name")
                found.setdefault(project, {}).setdefault(kind, []).append(ident)
    for project, objects in found.items():
        _LOG.warning("Removing leftovers of the compose project %s: %s", project, objects)
        if objects.get("container"):
            _call([docker, "rm", "-f", "-v", *objects["container"]], check=False, timeout=120)
        if objects.get("network"):
            _call([docker, "network", "rm", *objects["network"]], check=False, timeout=60)
        if objects.get("volume"):
            _call([docker, "volume", "rm", *objects["volume"]], check=False, timeout=60)
    return sorted(found)


class Composition:
    """A compose project under the control of a test suite."""

    def __init__(
        self,
        request: Any,
        project_name: str,
        composition_file: str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
        compose: Sequence[str] | None = None,
        cleanup: bool = True,
        docker: str | None = None,
    ) -> None:
        """Prepare the project (nothing starts before :meth:`up`).

        Args:
            request: The pytest ``request`` of the fixture (``None`` outside pytest); when given,
                :meth:`down` is registered as its finalizer.
            project_name: The base of the unique project name.
            composition_file: The compose file.
            env: Extra environment variables for the compose commands.
            compose: The compose command prefix (default: detected by :func:`compose_command`).
            cleanup: Remove leftovers of crashed runs of the same base name first.
            docker: The docker CLI (default: ``$DOCKER``, else ``docker`` on the ``PATH``).
        """
        self.docker = docker or _docker()
        self.base_name = _normalize(project_name)
        self.project_name = f"{self.base_name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.composition_file = os.fspath(composition_file)
        self.compose = list(compose) if compose is not None else compose_command(self.docker)
        self.env = {**os.environ, **(env or {})}
        self._cleanup = cleanup
        if request is not None:
            request.addfinalizer(self.down)

    def _run(
        self, *args: str, check: bool = True, timeout: float = 300, input_: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        command = [*self.compose, "--project-name", self.project_name, "--file", self.composition_file, *args]
        _LOG.debug("Running %s", command)
        result = _call(command, check=False, timeout=timeout, env=self.env, input_=input_)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} failed with code {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def up(self, *services: str, timeout: float = 120, build: bool = False) -> None:
        """Start the services (all by default) and wait until they run and are healthy.

        Args:
            *services: The services to start.
            timeout: The time budget to become healthy, in seconds.
            build: Build the images first.

        Raises:
            AssertionError: When a service exits, is unhealthy, or not ready in time (with its logs).
        """
        if self._cleanup:
            cleanup_leftovers(self.base_name, self.docker)
        if self not in _ACTIVE:
            _ACTIVE.append(self)
        self._run("up", "--detach", *(["--build"] if build else []), *services, timeout=max(timeout, 300))
        self.wait_healthy(*services, timeout=timeout)

    def _ps_all(self) -> list[str]:
        # v1 lists stopped containers by default, v2 only with --all
        return ["--all"] if self.compose[-1] == "compose" else []

    def _states(self, *services: str) -> dict[str, dict[str, Any]]:
        ids = self._run("ps", "-q", *self._ps_all(), *services).stdout.split()
        if not ids:
            return {}
        result = _call([self.docker, "inspect", "--format", "{{json .}}", *ids], check=True, timeout=60)
        states = {}
        for line in result.stdout.splitlines():
            info = json.loads(line)
            states[info["Name"].lstrip("/")] = info["State"]
        return states

    def wait_healthy(self, *services: str, timeout: float = 120) -> None:
        """Wait until every container of the services runs and, if it has a healthcheck, is healthy.

        A container that exited with status 0 is a one-shot job that completed (a migration, as
        compose's ``service_completed_successfully``): it is not waited for.

        Raises:
            AssertionError: When a container exits with another status or turns unhealthy, or on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            states = self._states(*services)
            waiting = []
            for name, state in states.items():
                health = (state.get("Health") or {}).get("Status")
                if state.get("Status") == "exited" and state.get("ExitCode") == 0:
                    continue
                if state.get("Status") == "exited" or health == "unhealthy":
                    raise AssertionError(
                        f"Container {name} is {health or state.get('Status')} "
                        f"(exit code {state.get('ExitCode')}):\n{self.logs()}"
                    )
                if state.get("Status") != "running" or health not in (None, "healthy"):
                    waiting.append(f"{name}: {health or state.get('Status')}")
            if states and not waiting:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"Timeout waiting for {waiting or 'containers'}:\n{self.logs()}")
            time.sleep(0.5)

    def down(self) -> None:
        """Stop and remove the containers, networks and volumes of the project."""
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        self._run("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)

    def exec(self, service: str, *command: str, user: str | None = None, input_: str | None = None) -> str:
        """Run a command in the running container of a service and return its output.

        Raises:
            AssertionError: When the command fails.
        """
        return self._run(
            "exec", "-T", *(["--user", user] if user else []), service, *command, input_=input_
        ).stdout

    def run(self, service: str, *command: str, input_: str | None = None) -> str:
        """Run a command in a new container of a service (removed afterwards) and return its output.

        Raises:
            AssertionError: When the command fails.
        """
        return self._run("run", "--rm", "-T", service, *command, input_=input_).stdout

    def stop(self, service: str, timeout: int = 10) -> None:
        """Stop a service."""
        self._run("stop", "--timeout", str(timeout), service)

    def start(self, service: str, wait: bool = True, timeout: float = 120) -> None:
        """Start a stopped service and, by default, wait until it is healthy."""
        self._run("start", service)
        if wait:
            self.wait_healthy(service, timeout=timeout)

    def restart(self, service: str, wait: bool = True, timeout: float = 120) -> None:
        """Restart a service and, by default, wait until it is healthy."""
        self._run("restart", service)
        if wait:
            self.wait_healthy(service, timeout=timeout)

    def kill(self, service: str, signal: str = "SIGKILL") -> None:
        """Send a signal to a service's containers."""
        self._run("kill", "-s", signal, service)

    def logs(self, *services: str) -> str:
        """Return the logs of the services (all by default)."""
        result = self._run("logs", "--no-color", *services, check=False)
        return result.stdout + result.stderr

    def ps(self) -> str:
        """Return the ``ps`` listing of the project."""
        result = self._run("ps", *self._ps_all(), check=False)
        return result.stdout + result.stderr

    def port(self, service: str, port: int, protocol: str = "tcp") -> int:
        """Return the host port published for a container port of a service.

        Raises:
            AssertionError: When the port is not published.
        """
        output = self._run("port", "--protocol", protocol, service, str(port)).stdout.strip()
        if not output or ":" not in output:
            raise AssertionError(f"Port {port}/{protocol} of {service} is not published")
        return int(output.splitlines()[0].rsplit(":", 1)[1])

    def services(self) -> list[str]:
        """Return the names of the services of the composition."""
        return self._run("config", "--services").stdout.split()

    def report(self) -> str:
        """Return the ``ps`` listing and every service's logs, for a failure report."""
        return f"$ ps\n{self.ps()}\n$ logs\n{self.logs()}"

    def __enter__(self) -> Self:
        """Start the project."""
        self.up()
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Remove the project."""
        self.down()


def active_compositions() -> list[Composition]:
    """Return the compositions that are up."""
    return list(_ACTIVE)
