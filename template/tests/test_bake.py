"""Bake the service template in every variant and run what a new user runs on the result."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import cruft
import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the project's venv (/work/main/.venv): no new venv per bake
VARIANT_SUFFIXES = (".gunicorn", ".waitress", ".postgresql", ".nopostgresql", ".redis", ".noredis")
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#|cookiecutter\.")
COMBINATIONS = list(itertools.product(("gunicorn", "waitress"), ("yes", "no"), ("yes", "no")))
MAKE_TIMEOUT_SECONDS = 120


def bake(output_dir: Path, **answers: str) -> Path:
    """Generate a project without prompts and return its folder."""
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(output_dir), extra_context=answers))


def generated_files(project: Path) -> list[Path]:
    """Return the files of a generated project."""
    return sorted(path for path in project.rglob("*") if path.is_file() and "__pycache__" not in path.parts)


def git(cwd: Path, *args: str) -> str:
    """Run git quietly in ``cwd`` and return its output."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    ("server", "postgresql", "redis"),
    COMBINATIONS,
    ids=[
        f"{server}-{'' if pg == 'yes' else 'no'}postgresql-{'' if redis == 'yes' else 'no'}redis"
        for server, pg, redis in COMBINATIONS
    ],
)
def test_bake_variant(tmp_path: Path, server: str, postgresql: str, redis: str) -> None:
    """Each variant keeps only its files, has no template syntax left, and its `make test` passes."""
    project = bake(
        tmp_path, project_name="Shop API", server=server, use_postgresql=postgresql, use_redis=redis
    )
    assert project.name == "shop-api"
    files = generated_files(project)
    names = {path.relative_to(project).as_posix() for path in files}

    leftovers = [name for name in names if name.endswith(VARIANT_SUFFIXES)]
    assert leftovers == []
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not TEMPLATE_SYNTAX.search(text), f"template syntax left in {path.relative_to(project)}"
    assert {"shop_api/__init__.py", "shop_api/views.py", "production.ini", "Dockerfile"} <= names
    assert ("gunicorn.conf.py" in names) == (server == "gunicorn")
    assert ({"alembic.ini", "shop_api/models.py", "tests/test_db.py"} <= names) == (postgresql == "yes")
    assert not any(name.startswith("alembic/") for name in names) or postgresql == "yes"
    compose = (project / "docker-compose.yaml").read_text(encoding="utf-8")
    assert ("db-replica:" in compose) == (postgresql == "yes")
    assert ("redis:" in compose) == (redis == "yes")
    assert ("redis==" in (project / "pyproject.toml").read_text(encoding="utf-8")) == (redis == "yes")
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM ${BASE_IMAGE}" in dockerfile
    assert "c2cwsgiutils-genversion" in dockerfile
    assert ('CMD ["gunicorn"' in dockerfile) == (server == "gunicorn")
    # The container drains on SIGTERM (the image's default, stated); development stops at once.
    assert "C2C_HEALTH_CHECK_DRAIN_SECONDS=5" in dockerfile
    override = (project / "docker-compose.override.yaml").read_text(encoding="utf-8")
    assert "C2C_HEALTH_CHECK_DRAIN_SECONDS=0" in override

    # What a new user runs first: ruff (check and format) and the unit tests, no container.
    result = subprocess.run(
        ["make", "test", f"PYTHON={PYTHON}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "All checks passed!" in result.stdout
    assert re.search(r"\d+ passed", result.stdout)
    assert " failed" not in result.stdout


def test_unit_tests_on_postgresql(tmp_path: Path, postgresql_server: Any) -> None:
    """The generated unit tests also pass on a real PostgreSQL through the `SQLALCHEMY_URL` seam."""
    project = bake(tmp_path, project_name="Shop API", use_redis="no")
    result = subprocess.run(
        ["make", "unit", f"PYTHON={PYTHON}"],
        cwd=project,
        env={**os.environ, "SQLALCHEMY_URL": postgresql_server.url_rw},
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "skipped" not in result.stdout
    assert re.search(r"\d+ passed", result.stdout)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (
            {"package_name": "1shop"},
            "ERROR: package_name '1shop' is not a valid lower-case Python identifier",
        ),
        (
            {"package_name": "class"},
            "ERROR: package_name 'class' is not a valid lower-case Python identifier",
        ),
        ({"package_name": "Shop"}, "ERROR: package_name 'Shop' is not a valid lower-case Python identifier"),
        ({"package_name": "json"}, "ERROR: package_name 'json' would shadow an existing module"),
        (
            {"project_slug": "Shop API!", "package_name": "shop_api"},
            "ERROR: project_slug 'Shop API!' is invalid",
        ),
        ({"server": "uwsgi"}, "ERROR: server must be one of gunicorn, waitress, got 'uwsgi'"),
        ({"use_postgresql": "maybe"}, "ERROR: use_postgresql must be 'yes' or 'no', got 'maybe'"),
        ({"use_redis": "y"}, "ERROR: use_redis must be 'yes' or 'no', got 'y'"),
        (
            {"project_name": 'Say "hi"', "project_slug": "say-hi", "package_name": "say_hi"},
            "ERROR: project_name and description must not contain double quotes",
        ),
        ({"base_image": "Not An Image"}, "ERROR: base_image 'Not An Image' is not a valid image reference"),
    ],
    ids=lambda value: (
        "-".join(f"{key}={val}" for key, val in value.items()) if isinstance(value, dict) else ""
    ),
)
def test_invalid_answer_stops_generation(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], answers: dict[str, str], message: str
) -> None:
    """A wrong answer stops the generation with one clear line and leaves nothing behind."""
    output = tmp_path / "output"
    output.mkdir()
    with pytest.raises(FailedHookException):
        bake(output, **answers)
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1
    assert errors[0].startswith(message)
    assert list(output.iterdir()) == []


def test_invalid_answer_on_the_command_line(tmp_path: Path) -> None:
    """The cookiecutter command exits non-zero and prints the problem."""
    output = tmp_path / "output"
    output.mkdir()
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "cookiecutter",
            "--no-input",
            "--output-dir",
            str(output),
            str(TEMPLATE),
            "server=uwsgi",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "ERROR: server must be one of gunicorn, waitress, got 'uwsgi'" in result.stderr
    assert list(output.iterdir()) == []


def test_cruft_update_brings_template_changes(tmp_path: Path) -> None:
    """`cruft check` sees a later template change and `cruft update` brings it into the project."""
    repository = tmp_path / "repository"
    shutil.copytree(
        TEMPLATE,
        repository / "template",
        ignore=shutil.ignore_patterns("tests", "__pycache__", ".ruff_cache"),
    )
    git(repository, "init", "--quiet", "--initial-branch=main")
    git(repository, "add", ".")
    git(repository, "commit", "--quiet", "--message=Template")

    project = cruft.create(
        str(repository),
        output_dir=tmp_path / "projects",
        directory="template",
        extra_context={"project_name": "Shop API", "use_postgresql": "no", "use_redis": "no"},
    )
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["directory"] == "template"
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", ".")
    git(project, "commit", "--quiet", "--message=Generated")
    assert cruft.check(project)

    readme = repository / "template" / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(
        readme.read_text(encoding="utf-8") + "\nA line added by the template.\n", encoding="utf-8"
    )
    git(repository, "commit", "--quiet", "--all", "--message=Template change")
    assert not cruft.check(project)

    assert cruft.update(project, skip_apply_ask=True)
    assert "A line added by the template." in (project / "README.md").read_text(encoding="utf-8")
    assert not (project / "gunicorn.conf.py.gunicorn").exists()
    assert cruft.check(project)
    assert os.path.isfile(project / "shop_api" / "views.py")
