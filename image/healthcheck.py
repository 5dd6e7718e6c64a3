"""Docker HEALTHCHECK of the c2cwsgiutils image, with the image's Python (no curl needed).

Requests ``http://127.0.0.1:$HEALTHCHECK_PORT$C2C_BASE_PATH/health_check?max_level=$HEALTHCHECK_MAX_LEVEL``
and exits 0 on a 200 response, 1 otherwise (the reason on stdout, shown by ``docker inspect``).

Environment: ``HEALTHCHECK_PORT`` (8080), ``C2C_BASE_PATH`` (``/c2c``), ``HEALTHCHECK_MAX_LEVEL``
(0: liveness, the service answers, no check runs; 1 also runs the vital checks such as the
database), ``HEALTHCHECK_TIMEOUT`` (2 seconds), ``HEALTHCHECK_URL`` (the whole URL, overrides the rest).
"""

import os
import sys
import urllib.error
import urllib.request

_OK = 200


def main() -> int:
    """Run the check and return the exit status."""
    url = os.environ.get("HEALTHCHECK_URL") or (
        "http://127.0.0.1:{port}{base}/health_check?max_level={level}".format(
            port=os.environ.get("HEALTHCHECK_PORT") or "8080",
            base=(os.environ.get("C2C_BASE_PATH") or "/c2c").rstrip("/"),
            level=os.environ.get("HEALTHCHECK_MAX_LEVEL") or "0",
        )
    )
    timeout = float(os.environ.get("HEALTHCHECK_TIMEOUT") or 2)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310  # fixed local URL
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (OSError, ValueError) as error:
        sys.stdout.write(f"{url}: {error}\n")
        return 1
    sys.stdout.write(f"{url}: {status}\n")
    return 0 if status == _OK else 1


if __name__ == "__main__":
    sys.exit(main())
