"""Build a generated project's images and run its `make acceptance` on a real compose stack.

Needs a Docker daemon and the c2cwsgiutils base image (``$IMAGE``, built by ``make image``, which
``make template-test`` runs first). Without them the tests are skipped, or fail when
``REQUIRE_DOCKER=1`` (CI). Every image and compose project is named ``c2ctpl-...`` and removed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
DOCKER = os.environ.get("DOCKER") or shutil.which("docker") or "docker"
BASE_IMAGE = os.environ.get("IMAGE") or "c2cwsgiutils:latest"
REQUIRE_DOCKER = os.environ.get("REQUIRE_DOCKER") == "1"
ACCEPTANCE_TIMEOUT_SECONDS = 1200


def docker_answers(*args: str) -> bool:
    """Tell whether a docker command succeeds."""
    try:
        return subprocess.run([DOCKER, *args], capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.fixture(scope="module")
def docker_ready() -> None:
    """Skip (or fail with REQUIRE_DOCKER=1) without a Docker daemon or without the base image."""
    problem = None
    if shutil.which("docker-compose") is None and not docker_answers("compose", "version"):
        problem = "neither 'docker compose' nor 'docker-compose' is installed"
    elif not docker_answers("info"):
        problem = f"no Docker daemon answers ({DOCKER} info)"
    elif not docker_answers("image", "inspect", BASE_IMAGE):
        problem = f"the base image {BASE_IMAGE} is missing (make image builds it)"
    if problem is None:
        return
    if REQUIRE_DOCKER:
        pytest.fail(f"REQUIRE_DOCKER=1 but {problem}")
    pytest.skip(problem)


@pytest.fixture
def images() -> Iterator[dict[str, str]]:
    """Return unique names for the stack's images, removed after the test."""
    tag = uuid.uuid4().hex[:10]
    names = {
        "APP_IMAGE": f"c2ctpl-app:{tag}",
        "POSTGRES_IMAGE": f"c2ctpl-postgres:{tag}",
        "REDIS_IMAGE": f"c2ctpl-redis:{tag}",
    }
    yield names
    subprocess.run(
        [DOCKER, "image", "rm", "--force", *names.values()], capture_output=True, timeout=300, check=False
    )


def bake_repository(output_dir: Path, **answers: str) -> Path:
    """Generate a project and commit it, as a new user would (its git hash goes in versions.json)."""
    project = Path(
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output_dir), extra_context=answers)
    )
    for command in (["init", "--quiet"], ["add", "."], ["commit", "--quiet", "--message=Generated"]):
        subprocess.run(["git", *command], cwd=project, check=True, capture_output=True, timeout=60)
    return project


def make_acceptance(project: Path, images: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the project's `make acceptance` (images built in parallel) and return the result."""
    env = {key: value for key, value in os.environ.items() if key not in ("IMAGE", "SQLALCHEMY_URL")}
    return subprocess.run(
        [
            "make",
            "--jobs=3",
            "acceptance",
            f"PYTHON={sys.executable}",
            f"DOCKER={DOCKER}",
            f"C2CWSGIUTILS_IMAGE={BASE_IMAGE}",
            *(f"{name}={value}" for name, value in images.items()),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=ACCEPTANCE_TIMEOUT_SECONDS,
        check=False,
    )


def run_acceptance(project: Path, images: dict[str, str]) -> str:
    """Run the project's `make acceptance` and return its output, asserting that it passed."""
    result = make_acceptance(project, images)
    assert result.returncode == 0, (result.stdout + result.stderr)[-12000:]
    return result.stdout


@pytest.mark.usefixtures("docker_ready")
def test_full_stack_acceptance(tmp_path: Path, images: dict[str, str]) -> None:
    """The full combination (gunicorn, PostgreSQL primary + replica, Redis): its acceptance tests pass."""
    project = bake_repository(tmp_path, project_name="c2ctpl full")
    output = run_acceptance(project, images)
    passed = re.search(r"(\d+) passed", output)
    assert passed, output[-6000:]
    # health check levels, versions, 404, the items service on primary and replica, CORS, 400
    assert int(passed.group(1)) >= 10
    assert "skipped" not in output
    assert " failed" not in output
    # The stack is removed at the end: no container of its images is left.
    for image in images.values():
        listing = subprocess.run(
            [DOCKER, "ps", "--all", "--quiet", "--filter", f"ancestor={image}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert listing.stdout.split() == []


@pytest.mark.usefixtures("docker_ready")
def test_minimal_stack_acceptance(tmp_path: Path, images: dict[str, str]) -> None:
    """The minimal combination (waitress, no DB, no Redis): tests pass; a failure report has the logs."""
    project = bake_repository(
        tmp_path, project_name="c2ctpl minimal", server="waitress", use_postgresql="no", use_redis="no"
    )
    assert not (project / "docker").exists()
    output = run_acceptance(project, images)
    assert re.search(r"\d+ passed", output), output[-6000:]
    assert "skipped" not in output
    assert " failed" not in output

    # A failing acceptance test: its report shows the stack's containers and their logs.
    (project / "acceptance_tests" / "test_teapot.py").write_text(
        '''"""A test that fails."""


def test_teapot(connection):
    """The service is not a teapot."""
    connection.get_json("hello", expected_status=418)
''',
        encoding="utf-8",
    )
    result = make_acceptance(project, images)
    assert result.returncode != 0
    assert "FAILED acceptance_tests/test_teapot.py::test_teapot" in result.stdout
    report = result.stdout[result.stdout.index("compose c2ctpl-minimal-") :]
    assert "$ ps" in report
    assert "(healthy)" in report
    assert "Starting server in PID 1." in report  # waitress's line in the service's logs
