"""Start the demo with gunicorn and print the URLs to open (what `make run` does)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
# The defaults of the base image's environment (see the library README), for a laptop.
_ENV_DEFAULTS = {
    "DEVELOPMENT": "0",
    "LOG_TYPE": "console",
    "LOG_LEVEL": "INFO",
    "OTHER_LOG_LEVEL": "WARNING",
    "GUNICORN_LOG_LEVEL": "INFO",
    "SQL_LOG_LEVEL": "WARNING",
    "C2CWSGIUTILS_LOG_LEVEL": "INFO",
}


def main() -> None:
    """Prepare the demo's files, print its URLs and replace this process by gunicorn."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8080")
    var = HERE / "var"
    var.mkdir(exist_ok=True)
    bin_dir = Path(sys.executable).parent
    git = shutil.which("git")
    git_hash = "unknown"
    if git:
        found = subprocess.run(
            [git, "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, check=False
        )
        git_hash = found.stdout.strip() or git_hash
    subprocess.run(
        [str(bin_dir / "c2cwsgiutils-genversion"), "--output", str(var / "versions.json"), git_hash],
        check=True,
    )
    os.environ.setdefault("C2C_VERSIONS_PATH", str(var / "versions.json"))
    os.environ.setdefault("SQLALCHEMY_URL", f"sqlite:///{var / 'demo.sqlite'}")
    os.environ.setdefault("C2C_SECRET", "demo")
    for name, value in _ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    base = f"http://{host}:{port}/api"
    print(
        f"""
c2cwsgiutils demo, served by gunicorn on {host}:{port} (Ctrl-C stops it)
  index page:    {base}/c2c   (log in with the secret in C2C_SECRET, 'demo' by default)
  health check:  {base}/c2c/health_check
  versions:      {base}/c2c/versions.json   (after logging in on the index page)
  hello service: {base}/hello
""",
        flush=True,
    )
    gunicorn = str(bin_dir / "gunicorn")
    os.chdir(HERE)
    os.execv(
        gunicorn,
        [
            gunicorn,
            "--config",
            str(HERE / "gunicorn.conf.py"),
            "--paste",
            str(HERE / "production.ini"),
            "--bind",
            f"{host}:{port}",
        ],
    )


if __name__ == "__main__":
    main()
