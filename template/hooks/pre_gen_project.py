"""Check the answers before anything is written: one clear line per problem, exit status 1."""

import json
import keyword
import re
import sys

# Rendered by cookiecutter: the answers as JSON, so that this file is also plain Python.
ANSWERS = json.loads(r"""{{ cookiecutter | jsonify }}""")

SLUG_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
PACKAGE_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
IMAGE_RE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$")
SERVERS = ("gunicorn", "waitress")
YES_NO = ("yes", "no")


def problems(answers: dict[str, str]) -> list[str]:
    """Return the list of problems with the answers (empty when they are all valid)."""
    result: list[str] = []
    if not answers["project_name"].strip():
        result.append("project_name must not be empty")
    if any(char in answers["project_name"] + answers["description"] for char in '"\\\n'):
        result.append("project_name and description must not contain double quotes, backslashes or newlines")
    if not SLUG_RE.match(answers["project_slug"]):
        result.append(
            f"project_slug {answers['project_slug']!r} is invalid: use lower-case letters, digits and "
            "single dashes, starting with a letter (e.g. 'my-service')"
        )
    package = answers["package_name"]
    if not PACKAGE_RE.match(package) or keyword.iskeyword(package):
        result.append(
            f"package_name {package!r} is not a valid lower-case Python identifier (e.g. 'my_service')"
        )
    elif package in sys.stdlib_module_names or package in ("c2cwsgiutils", "tests", "alembic"):
        result.append(f"package_name {package!r} would shadow an existing module: choose another name")
    if answers["server"] not in SERVERS:
        result.append(f"server must be one of {', '.join(SERVERS)}, got {answers['server']!r}")
    result.extend(
        f"{name} must be 'yes' or 'no', got {answers[name]!r}"
        for name in ("use_postgresql", "use_redis")
        if answers[name] not in YES_NO
    )
    if not IMAGE_RE.match(answers["base_image"]):
        result.append(f"base_image {answers['base_image']!r} is not a valid image reference")
    return result


def main() -> None:
    """Print every problem on stderr and stop the generation if there is one."""
    found = problems(ANSWERS)
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    if found:
        sys.exit(1)


main()
