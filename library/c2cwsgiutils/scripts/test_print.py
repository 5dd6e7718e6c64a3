"""``c2cwsgiutils-test-print``: render every example request of a MapFish Print service as PDF.

Usage::

    c2cwsgiutils-test-print --url URL [--app A] [--referrer R] [--verbose] [config_uri]

Waits for the print service, then for the given application (or every application except
``default``) fetches the capabilities and the example requests and renders each as a PDF, logging
its size. Exits with 1 when a rendering fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from c2cwsgiutils.acceptance.print import PrintConnection

__all__ = ["main"]

_LOG = logging.getLogger("c2cwsgiutils.test_print")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Test all the example requests of a MapFish Print service")
    parser.add_argument("config_uri", nargs="?", help="ini file that configures logging (optional)")
    parser.add_argument("--url", required=True, help="the print root URL, e.g. http://print:8080/print")
    parser.add_argument("--app", help="only this print application")
    parser.add_argument("--referrer", help="the Referer header to send")
    parser.add_argument("--verbose", action="store_true", help="log the requests")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for print and each PDF")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command.

    Raises:
        SystemExit: With 1 when a PDF cannot be rendered.
    """
    args = _parser().parse_args(argv)
    if args.config_uri:
        from c2cwsgiutils import setup_process

        setup_process.init(args.config_uri)
    else:
        logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s %(name)s %(message)s")
    if args.verbose:
        logging.getLogger("c2cwsgiutils").setLevel(logging.DEBUG)
    connection = PrintConnection(args.url, args.referrer or "http://localhost/")
    if args.referrer:
        connection.session.headers["Referer"] = args.referrer
    connection.wait_ready(timeout=args.timeout, app=args.app or "default")
    apps = [args.app] if args.app else [app for app in connection.get_apps() if app != "default"]
    failures = 0
    for app in apps:
        capabilities = connection.get_capabilities(app)
        _LOG.debug("Capabilities of %s: %s", app, capabilities)
        for name, request in connection.get_example_requests(app).items():
            try:
                pdf = connection.get_pdf(app, request, timeout=args.timeout)
            except Exception:
                failures += 1
                _LOG.exception("%s/%s: failed", app, name)
            else:
                _LOG.info("%s/%s: %d bytes", app, name, len(pdf.content))
    if failures:
        _LOG.error("%d example request(s) failed", failures)
        sys.exit(1)


if __name__ == "__main__":
    main()
