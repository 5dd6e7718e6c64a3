"""HTML building blocks of the index page: escaping helpers, style sheet and icon.

The public helpers are re-exported by :mod:`c2cwsgiutils.index`.
"""

from __future__ import annotations

import base64
import urllib.parse

from markupsafe import Markup, escape

__all__ = ["ICON", "STYLE", "button", "form", "input_", "link", "paragraph", "section"]

_SAFE_SCHEMES = frozenset({"", "http", "https", "mailto"})
_ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#0969da"/>'
    '<path d="M9 11h14M9 16h14M9 21h9" stroke="#fff" stroke-width="3" stroke-linecap="round"/></svg>'
)
# Base64, so that the page holds no ``http://`` string at all (the SVG namespace is not a resource).
ICON = "data:image/svg+xml;base64," + base64.b64encode(_ICON_SVG.encode()).decode()
STYLE = Markup("""
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;
--accent:#0969da;--on-accent:#fff;--field:#f6f8fa}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--accent:#4493f8;--on-accent:#0d1117;--field:#151b23}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:64rem;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.8rem;margin:.5rem 0 1rem}
h2{font-size:1.3rem;margin:.5rem 0}
hr{border:0;border-top:1px solid var(--line);margin:1.25rem 0}
a{color:var(--accent)}
p{margin:.5rem 0}
form{display:flex;flex-wrap:wrap;align-items:flex-end;gap:.5rem 1rem;margin:.5rem 0}
label{display:flex;flex-direction:column;font-size:.875rem;color:var(--muted)}
input{font:inherit;color:var(--fg);background:var(--field);border:1px solid var(--line);
border-radius:.375rem;padding:.3rem .5rem;min-width:12rem}
.btn{display:inline-block;font:inherit;line-height:1.5;padding:.3rem .85rem;border-radius:.375rem;
border:1px solid var(--accent);cursor:pointer;text-decoration:none;margin:.15rem .35rem .15rem 0}
.btn-primary{background:var(--accent);color:var(--on-accent)}
.btn-secondary{background:transparent;color:var(--accent)}
input:focus-visible,.btn:focus-visible,a:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
""")


def _url(url: str) -> Markup:
    """Escape a URL for an attribute; a non-web scheme (``javascript:``...) becomes ``#``."""
    if not isinstance(url, Markup):
        try:
            scheme = urllib.parse.urlsplit(url.strip()).scheme.lower()
        except ValueError:  # e.g. an invalid IPv6 host
            return Markup("#")
        if scheme not in _SAFE_SCHEMES:
            return Markup("#")
    return escape(url)


def _join(content: tuple[str, ...]) -> Markup:
    return Markup("").join(escape(part) for part in content)


def section(title: str, *content: str, sep: bool = True) -> Markup:
    """Return a section: a ``<h2>`` title followed by its content.

    Args:
        title: the title (plain text is escaped).
        content: the content (plain text is escaped, ``Markup`` is kept).
        sep: add a horizontal rule after the section.

    Returns:
        The HTML of the section.
    """
    html = Markup("<section><h2>{}</h2>{}</section>").format(title, _join(content))
    return html + Markup("<hr>") if sep else html


def paragraph(*content: str, title: str | None = None) -> Markup:
    """Return a paragraph, optionally starting with a bold title.

    Args:
        content: the content (plain text is escaped, ``Markup`` is kept).
        title: the bold title.

    Returns:
        The HTML of the paragraph.
    """
    prefix = Markup("<strong>{}:</strong> ").format(title) if title is not None else Markup("")
    return Markup("<p>{}{}</p>").format(prefix, _join(content))


def link(url: str, label: str, cssclass: str = "btn btn-primary", target: str = "_blank") -> Markup:
    """Return a link (shown as a button by default).

    Args:
        url: the URL (only ``http``, ``https``, ``mailto`` and relative URLs are kept).
        label: the text of the link.
        cssclass: the CSS classes.
        target: the target window (``_blank`` opens a new tab).

    Returns:
        The HTML of the link.
    """
    rel = Markup(' rel="noopener noreferrer"') if target == "_blank" else Markup("")
    return Markup('<a class="{}" href="{}" target="{}"{}>{}</a>').format(
        cssclass, _url(url), target, rel, label
    )


def form(url: str, *content: str, method: str = "get", target: str = "_blank") -> Markup:
    """Return a form that submits its inputs to ``url``.

    Args:
        url: the action URL (only ``http``, ``https`` and relative URLs are kept).
        content: the inputs and buttons (plain text is escaped, ``Markup`` is kept).
        method: the HTTP method.
        target: the target window.

    Returns:
        The HTML of the form.
    """
    return Markup('<form action="{}" method="{}" target="{}">{}</form>').format(
        _url(url), method, target, _join(content)
    )


def input_(name: str, label: str | None = None, type_: str | None = None, value: str | int = "") -> Markup:
    """Return a form field with its label.

    Args:
        name: the parameter name.
        label: the label (default: the name, capitalized, without underscores; none if hidden).
        type_: the input type (default: ``number`` for an ``int`` value, else ``text``).
        value: the initial value.

    Returns:
        The HTML of the field.
    """
    if type_ is None:
        type_ = "number" if isinstance(value, int) else "text"
    field = Markup('<input name="{}" type="{}" value="{}">').format(name, type_, value)
    if type_ == "hidden":
        return field
    if label is None:
        label = name.replace("_", " ").capitalize()
    return Markup("<label>{} {}</label>").format(label, field)


def button(label: str) -> Markup:
    """Return a submit button.

    Args:
        label: the text of the button.

    Returns:
        The HTML of the button.
    """
    return Markup('<button class="btn btn-primary" type="submit">{}</button>').format(label)
