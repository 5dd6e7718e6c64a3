"""The index page: ``{base}`` (and ``{base}/``) lists the enabled tools with links and forms.

The page is self-contained (inline style sheet and icon, no CDN, no script), follows the
browser's light or dark preference and is served with ``no-cache``. Every dynamic value is
HTML-escaped; the helpers (:func:`section`, :func:`paragraph`, :func:`link`, :func:`form`,
:func:`input_`, :func:`button`) escape their plain ``str`` arguments and pass
:class:`markupsafe.Markup` through, so they compose safely.

A section is shown only when the route of its tool is registered. The capabilities register
their routes under these names, which this page looks up when it is rendered:

============================  ===========================================
route name                    path
============================  ===========================================
``c2c_health_check``          ``{base}/health_check``
``c2c_versions``              ``{base}/versions.json``
``c2c_debug_stacks``          ``{base}/debug/stacks``
``c2c_debug_headers``         ``{base}/debug/headers``
``c2c_debug_memory_maps``     ``{base}/debug/memory_maps``
``c2c_debug_memory``          ``{base}/debug/memory``
``c2c_debug_show_refs``       ``{base}/debug/show_refs.dot``
``c2c_debug_memory_diff``     ``{base}/debug/memory_diff``
``c2c_debug_sleep``           ``{base}/debug/sleep``
``c2c_debug_time``            ``{base}/debug/time``
``c2c_debug_error``           ``{base}/debug/error``
``c2c_db_maintenance``        ``{base}/db/maintenance``
``c2c_logging_level``         ``{base}/logging/level``
``c2c_sql_profiler``          ``{base}/sql_profiler``
``c2c_github_login``          ``{base}/github-login``
``c2c_github_logout``         ``{base}/github-logout``
============================  ===========================================

The administration sections (debug, DB maintenance, logging, SQL profiler and
:data:`additional_auth`) are shown only to authenticated users
(:func:`c2cwsgiutils.auth.check_access`); so is the "Versions" section, unless versions.json is
public (``C2C_VERSIONS_PUBLIC``). The page also holds the login form (secret) or the GitHub
login link.

Extension points, for the application's own tools (module-level, as in the reference; assign or
append to them when the application is configured)::

    from c2cwsgiutils import index

    index.additional_title = "<h2>My service</h2>"
    index.additional_noauth.append(index.paragraph(index.link("/api/doc", "API documentation")))
    index.additional_auth.append(index.paragraph(index.link("/api/admin", "Administration")))

:data:`additional_title` then every :data:`additional_auth` snippet (authenticated users only),
then every :data:`additional_noauth` snippet (everybody) are shown after the library's sections,
before the authentication section. They hold **trusted HTML written by the application's
developers**: it is inserted as is (not escaped), so never put request or user data in them
without building it with the helpers (or :func:`markupsafe.escape`).

Unlike the reference implementation, the page is not registered when the base path is empty.

.. versionadded:: 6.0
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from c2cwsgiutils import _settings
from c2cwsgiutils._index_html import ICON, STYLE, button, form, input_, link, paragraph, section

__all__ = [
    "additional_auth",
    "additional_noauth",
    "additional_title",
    "button",
    "form",
    "includeme",
    "input_",
    "link",
    "paragraph",
    "section",
]

_LOG = logging.getLogger(__name__)

additional_title: str | None = None
"""Trusted HTML (developer-provided, inserted unescaped) shown after the library's sections, to everybody."""
additional_noauth: list[str] = []
"""Trusted HTML snippets (developer-provided, inserted unescaped) shown to everybody."""
additional_auth: list[str] = []
"""Trusted HTML snippets (developer-provided, inserted unescaped) shown to authenticated users only."""

# The page holds no script; it must not be framed (login form) nor leak its URL.
_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_DEBUG_LINKS = (
    ("c2c_debug_stacks", "Stack traces"),
    ("c2c_debug_headers", "HTTP headers"),
    ("c2c_debug_memory_maps", "Mapped memory"),
    ("c2c_debug_time", "Time"),
)


class _Page:
    """What one rendering needs: the request and which routes exist."""

    def __init__(self, request: Any) -> None:
        from pyramid.interfaces import IRoutesMapper

        self.request = request
        self._mapper = request.registry.queryUtility(IRoutesMapper)

    def has(self, route_name: str) -> bool:
        return self._mapper is not None and self._mapper.get_route(route_name) is not None

    def url(self, route_name: str, **query: str) -> str:
        # Absolute and built from the request, so it is right behind proxies (client_info).
        return str(
            self.request.route_url(route_name, _query=query) if query else self.request.route_url(route_name)
        )


def _health_check(page: _Page) -> list[Markup]:
    if not page.has("c2c_health_check"):
        return []
    return [
        section(
            "Health checks",
            form(page.url("c2c_health_check"), input_("max_level", value=1), input_("checks"), button("Run")),
        )
    ]


def _versions(page: _Page, authenticated: bool) -> list[Markup]:
    from c2cwsgiutils import version

    if not page.has("c2c_versions"):
        return []
    # Shown only when its link answers: versions.json needs the secret unless it is public.
    if not authenticated and not _settings.get(page.request.registry, version.VersionSettings).public:
        return []
    return [section("Versions", paragraph(link(page.url("c2c_versions"), "Get")))]


def _debug(page: _Page) -> list[Markup]:
    content: list[str] = []
    links = [link(page.url(name), label) for name, label in _DEBUG_LINKS if page.has(name)]
    if links:
        content.append(paragraph(*links))
    forms: list[tuple[str, str, Callable[[], list[Markup]]]] = [
        (
            "c2c_debug_memory",
            "Dump memory usage",
            lambda: [input_("limit", value=30), input_("analyze_type")],
        ),
        (
            "c2c_debug_show_refs",
            "Object refs",
            lambda: [
                input_("analyze_type", value="gunicorn.app.wsgiapp.WSGIApplication"),
                input_("max_depth", value=3),
                input_("too_many", value=10),
                input_("min_size_kb", type_="number"),
            ],
        ),
        (
            "c2c_debug_memory_diff",
            "Memory impact of a page",
            lambda: [input_("path"), input_("limit", value=30)],
        ),
        ("c2c_debug_sleep", "Sleep", lambda: [input_("time", value=1)]),
        ("c2c_debug_error", "Generate an HTTP error", lambda: [input_("status", value=500)]),
    ]
    content.extend(
        form(page.url(name), *fields(), button(label)) for name, label, fields in forms if page.has(name)
    )
    return [section("Debug", *content)] if content else []


def _db_maintenance(page: _Page) -> list[Markup]:
    if not page.has("c2c_db_maintenance"):
        return []
    url = page.url("c2c_db_maintenance")
    return [
        section(
            "DB maintenance",
            paragraph(
                link(url, "Get if readonly"),
                link(page.url("c2c_db_maintenance", readonly="true"), "Set readonly=true"),
                link(page.url("c2c_db_maintenance", readonly="false"), "Set readonly=false"),
            ),
        )
    ]


def _logging(page: _Page) -> list[Markup]:
    if not page.has("c2c_logging_level"):
        return []
    url = page.url("c2c_logging_level")
    return [
        section(
            "Logging",
            form(url, input_("name", value="c2cwsgiutils"), button("Get")),
            form(url, input_("name", value="c2cwsgiutils"), input_("level", value="INFO"), button("Set")),
            paragraph(link(url, "List overrides")),
        )
    ]


def _sql_profiler(page: _Page) -> list[Markup]:
    if not page.has("c2c_sql_profiler"):
        return []
    return [
        section(
            "SQL profiler",
            paragraph(
                link(page.url("c2c_sql_profiler"), "Status"),
                link(page.url("c2c_sql_profiler", enable="1"), "Enable"),
                link(page.url("c2c_sql_profiler", enable="0"), "Disable"),
            ),
        )
    ]


def _authentication(page: _Page, auth_type: Any, authenticated: bool) -> list[Markup]:
    from c2cwsgiutils import auth

    index_url = page.url("c2c_index")
    if auth_type is auth.AuthenticationType.SECRET:
        if authenticated:
            fields = [input_("secret", type_="hidden"), button("Logout")]
        else:
            fields = [input_("secret", label="Secret", type_="password"), button("Login")]
        return [section("Authentication", form(index_url, *fields, method="post", target="_self"), sep=False)]
    if auth_type is auth.AuthenticationType.GITHUB:
        is_user, user = auth.is_auth_user(page.request)
        if is_user and user is not None and page.has("c2c_github_logout"):
            name = user.get("name") or user.get("login") or ""
            return [
                section(
                    "Authentication",
                    paragraph(
                        link(user.get("url", ""), name, cssclass="", target="_self"), title="Logged as"
                    ),
                    paragraph(
                        link(page.url("c2c_github_logout", came_from=index_url), "Logout", target="_self")
                    ),
                    sep=False,
                )
            ]
        if page.has("c2c_github_login"):
            login = link(
                page.url("c2c_github_login", came_from=index_url), "Login with GitHub", target="_self"
            )
            return [section("Authentication", paragraph(login), sep=False)]
    return []


def _render(request: Any, auth_type: Any) -> str:
    from c2cwsgiutils import auth

    page = _Page(request)
    # Computed first: in SECRET mode this handles the login/logout posted by the form.
    authenticated = auth.check_access(request)
    body: list[Markup] = [*_health_check(page), *_versions(page, authenticated)]
    if authenticated:
        body += [*_debug(page), *_db_maintenance(page), *_logging(page), *_sql_profiler(page)]
    # The extension points are trusted HTML provided by the application's developers.
    if additional_title:
        body.append(Markup(additional_title))  # noqa: S704  # trusted, developer-provided HTML
    if authenticated:
        body.extend(Markup(html) for html in additional_auth)  # noqa: S704  # trusted, developer-provided HTML
    body.extend(Markup(html) for html in additional_noauth)  # noqa: S704  # trusted, developer-provided HTML
    body.extend(_authentication(page, auth_type, authenticated))
    return str(
        Markup(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            '<title>c2cwsgiutils tools</title><link rel="icon" href="{}"><style>{}</style></head>'
            "<body><main><h1>c2cwsgiutils tools</h1>\n{}\n</main></body></html>\n"
        ).format(ICON, STYLE, Markup("\n").join(body))
    )


def includeme(config: Any) -> None:
    """Register the index page (``c2c_index`` and ``c2c_index_slash``), unless the base path is empty."""
    from pyramid.response import Response

    from c2cwsgiutils import auth

    core = _settings.get(config.registry, _settings.CoreSettings)
    if core.base_path == "":
        _LOG.info("The base path is empty: no index page")
        return
    # Resolved once, when the application is built.
    auth_type = auth.auth_type(config.get_settings())
    if core.secret:
        _LOG.warning(
            "The secret authentication (C2C_SECRET) is less safe than the GitHub OAuth login "
            "(C2C_AUTH_GITHUB_*): prefer the GitHub login in production"
        )

    def index_view(request: Any) -> Any:
        response = Response(_render(request, auth_type), content_type="text/html", charset="utf-8")
        response.headers.update(_HEADERS)
        return response

    methods = ("GET", "POST")
    config.add_route("c2c_index", core.base_path, request_method=methods)
    config.add_route("c2c_index_slash", core.base_path + "/", request_method=methods)
    for route_name in ("c2c_index", "c2c_index_slash"):
        config.add_view(index_view, route_name=route_name, http_cache=0)
