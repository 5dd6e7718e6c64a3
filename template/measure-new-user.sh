#!/bin/bash
# Time what a new user does with the template: from `cookiecutter` to a 200 on /c2c/health_check
# of the service running in containers (`make --jobs=3 up`: images built, compose stack started).
#   template/measure-new-user.sh                 # Docker's build cache as it is (warm layers)
#   DOCKER_BUILD_ARGS=--no-cache template/measure-new-user.sh   # every image layer rebuilt
# Needs the base image (make image). Env: DOCKER (default /usr/bin/docker), IMAGE (base image,
# default c2cwsgiutils:latest), PYTHON (with cookiecutter, default .venv/bin/python), PORT (18080).
# The stack (compose project c2ctpl-newuser) and its images are removed at the end.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
DOCKER=${DOCKER:-/usr/bin/docker}
IMAGE=${IMAGE:-c2cwsgiutils:latest}
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}
PORT=${PORT:-18080}
TIMEOUT_SECONDS=${TIMEOUT_SECONDS:-900}
WORK=$(mktemp -d /tmp/c2ctpl-newuser.XXXXXX)
PROJECT=$WORK/c2ctpl-newuser
export DOCKER PORT DOCKER_BUILD_ARGS="${DOCKER_BUILD_ARGS:-}"

cleanup() {
    if [ -d "$PROJECT" ]; then
        (cd "$PROJECT" && make --no-print-directory down >/dev/null 2>&1 || true)
        "$DOCKER" image rm --force c2ctpl-newuser:latest c2ctpl-newuser-postgres:latest \
            c2ctpl-newuser-redis:latest >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

start=$(date +%s.%N)
"$PYTHON" -m cookiecutter --no-input --output-dir "$WORK" "$HERE" project_name="c2ctpl newuser" \
    base_image="$IMAGE"
(cd "$PROJECT" && make --jobs=3 up) >"$WORK/up.log" 2>&1 || {
    tail -40 "$WORK/up.log"
    exit 1
}
up_done=$(date +%s.%N)
deadline=$(($(date +%s) + TIMEOUT_SECONDS))
until [ "$(curl --silent --output /dev/null --write-out '%{http_code}' \
    "http://127.0.0.1:$PORT/c2c/health_check?max_level=2")" = 200 ]; do
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "No 200 on /c2c/health_check?max_level=2 within $TIMEOUT_SECONDS s" >&2
        exit 1
    fi
    sleep 0.2
done
end=$(date +%s.%N)
curl --silent "http://127.0.0.1:$PORT/c2c/health_check?max_level=2"
echo
printf 'cookiecutter + make --jobs=3 up: %.1f s; first 200 on the health check (level 2): %.1f s\n' \
    "$(echo "$up_done - $start" | bc)" "$(echo "$end - $start" | bc)"
