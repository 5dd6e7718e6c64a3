from __future__ import annotations

import importlib.metadata
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from _report_server import SECRET, serve

from c2cwsgiutils import testing, version
from c2cwsgiutils.scripts import genversion
from c2cwsgiutils.scripts.genversion import _get_package_version

GENVERSION = str(Path(sys.executable).parent / "c2cwsgiutils-genversion")
INCLUDES = ("c2cwsgiutils.version", "c2cwsgiutils.auth", "c2cwsgiutils.index")
VERSIONS = {"main": {"git_hash": "0123abc", "git_tag": "1.2.3"}, "packages": {"pyramid": "2.0", "é": "1"}}
AUTH = {"X-API-Key": "a-test-secret"}
WITH_SECRET = {"c2c.secret": "a-test-secret"}


@pytest.fixture
def versions_file(tmp_path):
    """A versions.json file with a tag, a hash and two packages."""
    path = tmp_path / "versions.json"
    path.write_text(json.dumps(VERSIONS), encoding="utf-8")
    return path


def test_served_from_env_path(app_factory, versions_file, monkeypatch):
    """``C2C_VERSIONS_PATH`` chooses the file, served as is on ``{base}/versions.json``, uncached."""
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(versions_file))
    app = app_factory(WITH_SECRET, includes=INCLUDES)
    response = app.get("/c2c/versions.json", headers=AUTH)
    assert response.json == VERSIONS
    assert response.content_type == "application/json"
    assert "no-cache" in response.headers["Cache-Control"]
    app.post("/c2c/versions.json", headers=AUTH, status=404)


def test_served_from_ini_path_with_base_path(app_factory, versions_file):
    """The ini key ``c2c.versions_path`` works too, under the configured base path."""
    app = app_factory(
        {"c2c.versions_path": str(versions_file), "c2c.base_path": "/admin", **WITH_SECRET}, includes=INCLUDES
    )
    assert app.get("/admin/versions.json", headers=AUTH).json["main"]["git_tag"] == "1.2.3"
    assert 'href="http://localhost/admin/versions.json"' in app.get("/admin", headers=AUTH).text


def test_read_once_at_startup(app_factory, versions_file, monkeypatch):
    """Changing the file after startup does not change what is served."""
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(versions_file))
    app = app_factory(WITH_SECRET, includes=INCLUDES)
    versions_file.write_text(json.dumps({"main": {"git_hash": "other"}}), encoding="utf-8")
    assert app.get("/c2c/versions.json", headers=AUTH).json["main"]["git_hash"] == "0123abc"


def test_absent_file_no_route(app_factory, tmp_path, monkeypatch):
    """Without the file there is no route, and the index shows no Versions section."""
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(tmp_path / "missing.json"))
    app = app_factory(WITH_SECRET, includes=INCLUDES)
    app.get("/c2c/versions.json", headers=AUTH, status=404)
    logged = app.get("/c2c", headers=AUTH).text
    assert "<h2>Debug</h2>" not in logged  # (no debug route in this application)
    assert "Logout" in logged
    assert "Versions" not in logged


def test_default_path_is_app_versions_json():
    """The default path is the reference one, ``/app/versions.json``, and the file is not public."""
    assert version.VersionSettings().path == "/app/versions.json"
    assert version.VersionSettings().public is False


def test_needs_the_secret(app_factory, versions_file):
    """Without the secret versions.json is a JSON 403; the header, parameter or login cookie open it."""
    app = app_factory(
        {"c2c.versions_path": str(versions_file), "c2c.enable_exception_handling": "1", **WITH_SECRET},
        includes=("c2cwsgiutils.pretty_json", "c2cwsgiutils.errors", *INCLUDES),
    )
    denied = app.get("/c2c/versions.json", status=403)
    assert denied.content_type == "application/json"
    assert denied.json["status"] == 403
    assert "secret" in denied.json["message"]
    assert "0123abc" not in denied.text
    app.get("/c2c/versions.json", headers={"X-API-Key": "wrong"}, status=403)
    assert app.get("/c2c/versions.json", headers=AUTH).json == VERSIONS
    assert app.get("/c2c/versions.json", params={"secret": "a-test-secret"}).json == VERSIONS
    app.post("/c2c", {"secret": "a-test-secret"})  # the index page's login form sets the cookie
    assert app.get("/c2c/versions.json").json == VERSIONS


def test_forbidden_without_any_authentication(app_factory, versions_file):
    """Without a secret nor a GitHub login configured, versions.json is always a 403."""
    app = app_factory({"c2c.versions_path": str(versions_file)}, includes=INCLUDES)
    app.get("/c2c/versions.json", status=403)
    app.get("/c2c/versions.json", headers=AUTH, status=403)


@pytest.mark.parametrize("how", ["env", "ini"])
def test_public_setting_serves_without_the_secret(app_factory, versions_file, monkeypatch, how):
    """``C2C_VERSIONS_PUBLIC`` / ``c2c.versions_public`` give the 6.0 behaviour: no secret needed."""
    settings = {"c2c.versions_path": str(versions_file), **WITH_SECRET}
    if how == "env":
        monkeypatch.setenv("C2C_VERSIONS_PUBLIC", "true")
    else:
        settings["c2c.versions_public"] = "true"
    app = app_factory(settings, includes=INCLUDES)
    assert app.get("/c2c/versions.json").json == VERSIONS
    assert "<h2>Versions</h2>" in app.get("/c2c").text


def test_index_shows_versions_only_where_the_link_answers(app_factory, versions_file):
    """The index page's Versions section is for logged-in users unless versions.json is public."""
    app = app_factory({"c2c.versions_path": str(versions_file), **WITH_SECRET}, includes=INCLUDES)
    assert "versions.json" not in app.get("/c2c").text
    logged = app.post("/c2c", {"secret": "a-test-secret"}).text
    assert (
        '<h2>Versions</h2><p><a class="btn btn-primary" href="http://localhost/c2c/versions.json"' in logged
    )
    assert app.get("/c2c/versions.json").json == VERSIONS  # the link works with the login cookie


def test_version_health_check_does_not_need_the_secret(app_factory, versions_file):
    """The level-2 ``version`` check and health+json's ``releaseId`` read the file, not the protected view."""
    from c2cwsgiutils.health_check import HealthCheck

    def configure(config):
        HealthCheck(config).add_version_check()

    app = app_factory(
        {"c2c.versions_path": str(versions_file), **WITH_SECRET},
        includes=("c2cwsgiutils.pyramid",),
        configure=configure,
    )
    app.get("/c2c/versions.json", status=403)
    report = app.get("/c2c/health_check", params={"max_level": "2"}).json
    assert report["successes"]["version"]["result"] == {"version": "0123abc"}
    health = app.get("/c2c/health_check", headers={"Accept": "application/health+json"}).json
    assert health["releaseId"] == "0123abc"


@pytest.mark.server
@pytest.mark.parametrize("public", [False, True])
def test_through_gunicorn(tmp_path, public):
    """Through gunicorn: a JSON 403 without the secret, 200 with it; 200 for all with the public setting."""
    pytest.importorskip("gunicorn")
    env = {"C2C_VERSIONS_PUBLIC": "1"} if public else {}
    with serve(tmp_path, env) as url:
        anonymous = requests.get(url + "/c2c/versions.json", timeout=30)
        authenticated = requests.get(url + "/c2c/versions.json", headers={"X-API-Key": SECRET}, timeout=30)
        level_3 = requests.get(url + "/c2c/health_check", params={"max_level": "3"}, timeout=30)
    assert authenticated.status_code == 200
    assert authenticated.json()["main"] == {"git_hash": "0123abc", "git_tag": "1.2.3"}
    assert "no-cache" in authenticated.headers["Cache-Control"]
    if public:
        assert anonymous.status_code == 200
        assert anonymous.json() == authenticated.json()
    else:
        assert anonymous.status_code == 403
        assert anonymous.headers["Content-Type"] == "application/json"
        assert (
            anonymous.json()["message"] == "Missing or invalid secret (parameter, X-API-Key header or cookie)"
        )
    assert level_3.json()["successes"]["version"]["result"] == {"version": "0123abc"}


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ({"git_hash": "0123abc", "git_tag": "1.2.3"}, "Starting version 1.2.3 (0123abc)"),
        ({"git_hash": "0123abc"}, "Starting version 0123abc"),
    ],
)
def test_starting_version_log(tmp_path, monkeypatch, main, expected):
    """The version is logged when the application starts."""
    path = tmp_path / "versions.json"
    path.write_text(json.dumps({"main": main, "packages": {}}), encoding="utf-8")
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(path))
    with testing.capture_logs("c2cwsgiutils.version", logging.INFO) as records:
        testing.make_app({}, includes=("c2cwsgiutils.version",))
    assert expected in [record.getMessage() for record in records]


def test_get_version(versions_file, tmp_path, monkeypatch):
    """``get_version`` gives the git hash, from an application's registry or from the file."""
    from pyramid.config import Configurator

    monkeypatch.setenv("C2C_VERSIONS_PATH", str(versions_file))
    assert version.get_version() == "0123abc"
    config = Configurator(settings={})
    config.include("c2cwsgiutils.version")
    versions_file.unlink()
    assert version.get_version(config.registry) == "0123abc"
    assert version.get_versions(config.registry) == VERSIONS
    assert version.get_version() is None
    assert version.get_version(Configurator(settings={}).registry) is None
    assert version.get_versions(Configurator(settings={}).registry) is None


def test_invalid_file_fails_at_startup(tmp_path, monkeypatch):
    """A versions.json that is not a JSON object is a startup error, not a broken view."""
    path = tmp_path / "versions.json"
    path.write_text("[1, 2]", encoding="utf-8")
    monkeypatch.setenv("C2C_VERSIONS_PATH", str(path))
    with pytest.raises(TypeError, match="JSON object"):
        testing.make_app({}, includes=("c2cwsgiutils.version",))


def _genversion(*args, cwd):
    return subprocess.run(
        [GENVERSION, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_genversion_script_with_tag_and_output(tmp_path, app_factory, monkeypatch):
    """The real console script writes the tag, hash and installed packages; the view serves them."""
    output = tmp_path / "out" / "versions.json"
    output.parent.mkdir()
    result = _genversion("--output", str(output), "v1.2", "abc123", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = output.read_text(encoding="utf-8")
    assert text.startswith('{\n  "main": {\n    "git_hash": "abc123",')
    data = json.loads(text)
    assert data["main"] == {"git_hash": "abc123", "git_tag": "v1.2"}
    assert data["packages"]["pyramid"] == importlib.metadata.version("pyramid")
    assert data["packages"]["c2cwsgiutils"] == importlib.metadata.version("c2cwsgiutils")
    assert "PyYAML" in data["packages"]  # the name as pip shows it
    assert not (tmp_path / "versions.json").exists()

    monkeypatch.setenv("C2C_VERSIONS_PATH", str(output))
    assert app_factory(WITH_SECRET, includes=INCLUDES).get("/c2c/versions.json", headers=AUTH).json == data


def test_genversion_script_default_output(tmp_path):
    """Without ``--output``, the file is ``./versions.json``, and without a tag there is no git_tag."""
    result = _genversion("abc123", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "versions.json").read_text(encoding="utf-8"))
    assert data["main"] == {"git_hash": "abc123"}
    assert list(tmp_path.iterdir()) == [tmp_path / "versions.json"]


@pytest.mark.parametrize("args", [(), ("a", "b", "c")])
def test_genversion_script_bad_arguments(tmp_path, args):
    """Wrong arguments give the usage and exit code 2, and write nothing."""
    result = _genversion(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: c2cwsgiutils-genversion [-h] [--output PATH] [GIT_TAG] GIT_HASH")
    assert "error:" in result.stderr
    assert not list(tmp_path.iterdir())


def test_genversion_unwritable_output(tmp_path, capsys):
    """An output in a missing directory is a one-line error with exit code 1."""
    with pytest.raises(SystemExit) as exit_info:
        genversion.main(["--output", str(tmp_path / "missing" / "versions.json"), "abc"])
    assert exit_info.value.code == 1
    assert "cannot write" in capsys.readouterr().err


class _Distribution:
    def __init__(self, name, version_):
        self.metadata = {"Name": name}
        self.version = version_


def test_get_packages_first_wins_and_sorted():
    """A distribution found twice keeps the first version; names are sorted case-insensitively."""
    packages = genversion.get_packages(
        [
            _Distribution("zope.event", "5"),
            _Distribution("PyYAML", "6"),
            _Distribution("pyyaml", "5"),
            _Distribution("", "1"),
            _Distribution("Zope-Event", "4"),
            _Distribution("alembic", "1"),
        ]
    )
    assert packages == {"alembic": "1", "PyYAML": "6", "zope.event": "5"}
    assert list(packages) == ["alembic", "PyYAML", "zope.event"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("pyramid==2.0.2", ("pyramid", "2.0.2")),
        ("c2cwsgiutils===6.2.0.dev0", ("c2cwsgiutils", "6.2.0.dev0")),
        ("zope.sqlalchemy==3.1\n", ("zope.sqlalchemy", "3.1")),
        ("# Editable install with no version control (c2cwsgiutils==6.2.0)", ("c2cwsgiutils", "6.2.0")),
        ("# Editable Git install with no remote (my-app==1.0)", ("my-app", "1.0")),
        ("-e git+https://github.com/camptocamp/c2cwsgiutils@abc#egg=c2cwsgiutils", (None, None)),
        ("pkg @ file:///tmp/pkg", (None, None)),
        ("", (None, None)),
        ("# a comment", (None, None)),
    ],
)
def test_get_package_version(line, expected):
    """The pip freeze line parser kept for compatibility understands the three pip formats."""
    assert _get_package_version(line) == expected


def test_genversion_main_in_process(tmp_path, capsys):
    """``main(argv)`` writes the file, and three positional arguments are a usage error."""
    output = tmp_path / "versions.json"
    genversion.main(["--output", str(output), "tag", "hash"])
    assert json.loads(output.read_text(encoding="utf-8"))["main"] == {"git_hash": "hash", "git_tag": "tag"}
    assert oct(output.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(SystemExit) as exit_info:
        genversion.main(["a", "b", "c"])
    assert exit_info.value.code == 2
    assert "expected [GIT_TAG] GIT_HASH" in capsys.readouterr().err
