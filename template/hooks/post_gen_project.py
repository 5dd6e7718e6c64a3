"""Keep the files of the chosen variants, remove the others.

A file or folder whose name ends with ``.<variant>`` (for example ``views.py.postgresql`` or
``gunicorn.conf.py.gunicorn``) belongs to that variant: it is renamed without the suffix when the
variant is chosen, removed otherwise. So the generated code is plain Python, without template logic.
"""

import json
import os
import shutil
from pathlib import Path

# Rendered by cookiecutter: the answers as JSON, so that this file is also plain Python.
ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")
SERVER = ANSWERS["server"]
POSTGRESQL = ANSWERS["use_postgresql"] == "yes"
REDIS = ANSWERS["use_redis"] == "yes"

CHOSEN = {
    "gunicorn": SERVER == "gunicorn",
    "waitress": SERVER == "waitress",
    "postgresql": POSTGRESQL,
    "nopostgresql": not POSTGRESQL,
    "redis": REDIS,
    "noredis": not REDIS,
}


def prune(root: Path) -> None:
    """Rename the chosen variant files and remove the others, deepest paths first."""
    paths = sorted(root.rglob("*"), key=lambda path: len(path.parts), reverse=True)
    for path in paths:
        variant = path.suffix[1:]
        if variant not in CHOSEN:
            continue
        if CHOSEN[variant]:
            path.rename(path.with_suffix(""))
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def remove_empty_folders(root: Path) -> None:
    """Remove the folders left empty by :func:`prune` (``docker/`` without PostgreSQL nor Redis)."""
    for path in sorted(root.rglob("*"), key=lambda path: len(path.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


prune(Path(os.getcwd()))
remove_empty_folders(Path(os.getcwd()))
