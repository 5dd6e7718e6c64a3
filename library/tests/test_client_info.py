from __future__ import annotations

import ipaddress
import json
import logging

import pytest
import webob
import webtest
from hypothesis import given
from hypothesis import strategies as st
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import ITweens

from c2cwsgiutils import _client_info, testing
from c2cwsgiutils.client_info import Filter, filter_factory


def _echo_app(environ, start_response):
    request = webob.Request(environ)
    body = {
        "client_addr": request.client_addr,
        "host": request.host,
        "scheme": request.scheme,
        "server_name": environ.get("SERVER_NAME"),
        "host_url": request.host_url,
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]


def _client(peer="192.0.2.1", **kwargs):
    return webtest.TestApp(Filter(_echo_app, **kwargs), extra_environ={"REMOTE_ADDR": peer})


def _get(client, headers=None, **environ):
    return client.get("/", headers=headers or {}, extra_environ=environ).json


def _process(environ, trusted_proxies=None):
    seen = {}

    def app(env, start_response):
        seen.update(env)
        return []

    Filter(app, trusted_proxies=trusted_proxies)(environ, lambda *_: None)
    return seen


# --- Forwarded --------------------------------------------------------------------------------


def test_forwarded_sets_address_host_scheme_and_server_name():
    """``for``, ``host``, ``proto`` and ``by`` of Forwarded become the request's values."""
    result = _get(_client(), {"Forwarded": "for=198.51.100.7;proto=https;by=203.0.113.43;host=example.com"})
    assert result["client_addr"] == "198.51.100.7"
    assert result["scheme"] == "https"
    assert result["host"] == "example.com"
    assert result["host_url"] == "https://example.com"
    assert result["server_name"] == "203.0.113.43"
    assert result["headers"]["HTTP_ORIGINAL_FORWARDED"] == (
        "for=198.51.100.7;proto=https;by=203.0.113.43;host=example.com"
    )
    assert result["headers"]["HTTP_ORIGINAL_HOST"] == "localhost:80"


def test_forwarded_left_most_element_without_trusted_proxies():
    """Without trusted proxies the left-most element describes the client (reference behaviour)."""
    result = _get(_client(), {"Forwarded": "for=198.51.100.7;proto=https, for=10.0.0.2;proto=http"})
    assert result["client_addr"] == "198.51.100.7"
    assert result["scheme"] == "https"


def test_forwarded_quoted_ipv6_port_and_case_insensitive_keys():
    """RFC 7239 syntax: quoted values, bracketed IPv6 with a port, upper-case names and protocol."""
    result = _get(
        _client(), {"Forwarded": 'For="[2001:db8:cafe::17]:4711";PROTO=HTTPS;Host="example.org:8443"'}
    )
    assert result["client_addr"] == "2001:db8:cafe::17"
    assert result["scheme"] == "https"
    assert result["host_url"] == "https://example.org:8443"


def test_forwarded_ipv4_with_port_unknown_and_obfuscated():
    """Ports are dropped from IPv4 nodes; ``unknown`` and ``_hidden`` identifiers are kept."""
    assert _get(_client(), {"Forwarded": 'for="198.51.100.7:1234"'})["client_addr"] == "198.51.100.7"
    assert _get(_client(), {"Forwarded": "for=unknown"})["client_addr"] == "unknown"
    assert _get(_client(), {"Forwarded": "for=_hidden"})["client_addr"] == "_hidden"


def test_forwarded_wins_and_x_forwarded_headers_are_moved_aside():
    """With Forwarded, X-Forwarded-* are ignored and kept only as HTTP_ORIGINAL_X_FORWARDED_*."""
    result = _get(
        _client(),
        {
            "Forwarded": "for=198.51.100.7",
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
        },
    )
    assert result["client_addr"] == "198.51.100.7"
    assert result["scheme"] == "http"
    assert result["host"] == "localhost:80"
    headers = result["headers"]
    assert "HTTP_X_FORWARDED_FOR" not in headers
    assert headers["HTTP_ORIGINAL_X_FORWARDED_FOR"] == "6.6.6.6"
    assert headers["HTTP_ORIGINAL_X_FORWARDED_PROTO"] == "https"
    assert headers["HTTP_ORIGINAL_X_FORWARDED_HOST"] == "evil.example"


# --- X-Forwarded-* -----------------------------------------------------------------------------


def test_x_forwarded_headers_prefix_middleware_semantics():
    """X-Forwarded-For (left-most), -Host and -Proto set address, host and scheme; originals kept."""
    result = _get(
        _client(),
        {
            "X-Forwarded-For": "198.51.100.7, 10.0.0.2",
            "X-Forwarded-Host": "example.com",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Port": "443",
        },
    )
    assert result["client_addr"] == "198.51.100.7"
    assert result["host_url"] == "https://example.com"
    headers = result["headers"]
    assert headers["HTTP_ORIGINAL_X_FORWARDED_FOR"] == "198.51.100.7, 10.0.0.2"
    assert headers["HTTP_ORIGINAL_HOST"] == "localhost:80"
    assert "HTTP_X_FORWARDED_HOST" not in headers
    assert headers["HTTP_X_FORWARDED_PORT"] == "443"  # ignored, left alone


def test_x_forwarded_scheme_preferred_over_proto_and_server_sets_host():
    """X-Forwarded-Scheme wins over -Proto; X-Forwarded-Server sets SERVER_NAME and the host."""
    result = _get(
        _client(),
        {"X-Forwarded-Scheme": "https", "X-Forwarded-Proto": "http", "X-Forwarded-Server": "front.example"},
    )
    assert result["scheme"] == "https"
    assert result["server_name"] == "front.example"
    assert result["host"] == "front.example"


def test_no_proxy_header_changes_nothing():
    """A request without proxy headers keeps its own address, host and scheme."""
    result = _get(_client(peer="203.0.113.9"))
    assert result["client_addr"] == "203.0.113.9"
    assert result["host_url"] == "http://localhost"
    assert not any(key.startswith("HTTP_ORIGINAL_") for key in result["headers"])


# --- forced values -----------------------------------------------------------------------------


def test_force_variables_override_headers_and_are_read_once(monkeypatch):
    """C2CWSGIUTILS_FORCE_* win over the headers and are read when the filter is built."""
    monkeypatch.setenv("C2CWSGIUTILS_FORCE_PROTO", "HTTPS")
    monkeypatch.setenv("C2CWSGIUTILS_FORCE_HOST", "forced.example")
    monkeypatch.setenv("C2CWSGIUTILS_FORCE_SERVER_NAME", "forced-server")
    monkeypatch.setenv("C2CWSGIUTILS_FORCE_REMOTE_ADDR", "203.0.113.99")
    client = _client()
    for name in ("PROTO", "HOST", "SERVER_NAME", "REMOTE_ADDR"):
        monkeypatch.delenv(f"C2CWSGIUTILS_FORCE_{name}")

    result = _get(client, {"Forwarded": "for=198.51.100.7;proto=http;host=example.com"})
    assert result["client_addr"] == "203.0.113.99"
    assert result["host_url"] == "https://forced.example"
    assert result["server_name"] == "forced-server"
    assert result["headers"]["HTTP_ORIGINAL_HOST"] == "localhost:80"


# --- trusted proxies ---------------------------------------------------------------------------


def test_trusted_proxies_right_most_untrusted_address():
    """With trusted proxies the client is the right-most X-Forwarded-For entry not trusted."""
    client = _client(peer="10.0.0.5", trusted_proxies="10.0.0.0/8, 192.0.2.1")
    result = _get(client, {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 192.0.2.1, 10.1.2.3"})
    assert result["client_addr"] == "198.51.100.7"


def test_untrusted_peer_headers_are_ignored_but_moved():
    """A direct peer that is not a trusted proxy cannot set the address, host or scheme."""
    client = _client(peer="198.51.100.66", trusted_proxies="10.0.0.0/8")
    result = _get(
        client,
        {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
    )
    assert result["client_addr"] == "198.51.100.66"
    assert result["host_url"] == "http://localhost"
    assert result["headers"]["HTTP_ORIGINAL_X_FORWARDED_FOR"] == "1.2.3.4"
    forwarded = _get(client, {"Forwarded": "for=1.2.3.4;proto=https"})
    assert forwarded["client_addr"] == "198.51.100.66"
    assert forwarded["scheme"] == "http"


def test_trusted_proxies_forwarded_chain_uses_the_client_element():
    """In a Forwarded chain the element whose ``for`` is the first untrusted one gives every value."""
    client = _client(peer="10.0.0.5", trusted_proxies="10.0.0.0/8")
    header = (
        "for=6.6.6.6;proto=http;host=evil.example, "
        "for=198.51.100.7;proto=https;host=good.example, for=10.0.0.9"
    )
    result = _get(client, {"Forwarded": header})
    assert result["client_addr"] == "198.51.100.7"
    assert result["host_url"] == "https://good.example"


def test_trusted_proxies_all_trusted_uses_left_most():
    """When every hop is a trusted proxy, the left-most one is the client."""
    client = _client(peer="10.0.0.5", trusted_proxies="10.0.0.0/8")
    assert _get(client, {"X-Forwarded-For": "10.0.0.1, 10.0.0.2"})["client_addr"] == "10.0.0.1"
    assert _get(client, {"Forwarded": "for=10.0.0.1, for=10.0.0.2"})["client_addr"] == "10.0.0.1"


def test_trusted_proxies_hop_lists_are_aligned_with_x_forwarded_for():
    """A per-hop X-Forwarded-Proto list uses the client's hop; a single value is the proxy's."""
    client = _client(peer="10.0.0.5", trusted_proxies="10.0.0.0/8")
    hops = _get(client, {"X-Forwarded-For": "198.51.100.7, 10.0.0.9", "X-Forwarded-Proto": "https, http"})
    assert hops["client_addr"] == "198.51.100.7"
    assert hops["scheme"] == "https"
    single = _get(
        client, {"X-Forwarded-For": "198.51.100.7, 10.0.0.9", "X-Forwarded-Proto": "http, https, https"}
    )
    assert single["scheme"] == "https"


def test_trusted_proxies_ipv6_and_ipv4_mapped_peer():
    """IPv6 networks work, and an IPv4 proxy seen through a dual-stack socket is still trusted."""
    client = _client(peer="::ffff:10.0.0.5", trusted_proxies="10.0.0.0/8,2001:db8::/32")
    assert _get(client, {"X-Forwarded-For": "198.51.100.7"})["client_addr"] == "198.51.100.7"
    v6 = _client(peer="2001:db8::1", trusted_proxies="2001:db8::/32")
    assert (
        _get(v6, {"Forwarded": 'for="[2001:db8::2]", for="[2001:db8::3]:80"'})["client_addr"] == "2001:db8::2"
    )


def test_trusted_proxies_from_environment_wins(monkeypatch):
    """``C2C_TRUSTED_PROXIES`` takes precedence over the filter's option."""
    monkeypatch.setenv("C2C_TRUSTED_PROXIES", "10.0.0.0/8")
    client = _client(peer="198.51.100.66", trusted_proxies="0.0.0.0/0")
    assert _get(client, {"X-Forwarded-For": "1.2.3.4"})["client_addr"] == "198.51.100.66"


def test_invalid_trusted_proxies_fail_at_startup():
    """A wrong address in the trusted proxies is a configuration error, not a runtime surprise."""
    with pytest.raises(ConfigurationError, match="C2C_TRUSTED_PROXIES"):
        Filter(_echo_app, trusted_proxies="10.0.0.0/8, not-an-ip")


# --- paste -------------------------------------------------------------------------------------


def test_filter_factory_reads_trusted_proxies_from_local_or_global_conf():
    """The paste factory takes ``trusted_proxies`` from its section, else from [DEFAULT]."""
    local = webtest.TestApp(
        filter_factory({}, trusted_proxies="10.0.0.0/8")(_echo_app), extra_environ={"REMOTE_ADDR": "8.8.8.8"}
    )
    assert _get(local, {"X-Forwarded-For": "1.2.3.4"})["client_addr"] == "8.8.8.8"
    glob = webtest.TestApp(
        filter_factory({"c2c.trusted_proxies": "8.8.8.8"})(_echo_app),
        extra_environ={"REMOTE_ADDR": "8.8.8.8"},
    )
    assert _get(glob, {"X-Forwarded-For": "1.2.3.4"})["client_addr"] == "1.2.3.4"


def test_paste_pipeline_with_egg_filter(tmp_path):
    """``egg:c2cwsgiutils#client_info`` works in a PasteDeploy pipeline."""
    from paste.deploy import loadapp

    (tmp_path / "app.ini").write_text(
        "[pipeline:main]\npipeline = proxy echo\n\n"
        "[filter:proxy]\nuse = egg:c2cwsgiutils#client_info\ntrusted_proxies = 127.0.0.1\n\n"
        f"[app:echo]\npaste.app_factory = {__name__}:echo_app_factory\n"
    )
    app = webtest.TestApp(
        loadapp(f"config:{tmp_path / 'app.ini'}"), extra_environ={"REMOTE_ADDR": "127.0.0.1"}
    )
    result = _get(app, {"Forwarded": 'for="198.51.100.7";proto=https'})
    assert result["client_addr"] == "198.51.100.7"
    assert result["scheme"] == "https"


def echo_app_factory(global_conf, **local_conf):
    """Paste factory of the echo application used by the pipeline test."""
    return _echo_app


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "for",
        "for=198.51.100.7;garbage",
        'for="198.51.100.7',
        "for=not-an-address",
        "for=1.2.3.4 5.6.7.8",
        'for="x"y',
        "=;;,,;=",
        "for=198.51.100.7;proto=javascript",
        "host=evil.example/path;for=1.2.3.4",
        "for=\xff\xfe\x00;host=\xe9t\xe9",
    ],
)
def test_malformed_forwarded_never_fails(header):
    """Malformed Forwarded parts are ignored with a warning; the request still succeeds."""
    with testing.capture_logs("c2cwsgiutils.client_info") as records:
        result = _get(_client(peer="192.0.2.1"), {"Forwarded": header})
    assert result["client_addr"] in {"192.0.2.1", "198.51.100.7", "1.2.3.4"}
    assert result["scheme"] == "http"
    assert result["host"] == "localhost:80"
    assert records
    assert all(r.levelno == logging.WARNING for r in records)


def test_valid_parts_of_a_malformed_header_are_used():
    """A part without '=' does not prevent the valid parts from being used (fixed on master)."""
    result = _get(_client(), {"Forwarded": "for=198.51.100.7;garbage;proto=https"})
    assert result["client_addr"] == "198.51.100.7"
    assert result["scheme"] == "https"


def test_warnings_are_rate_limited():
    """Many bad requests give one warning line per kind of problem, not one per request."""
    client = _client()
    with testing.capture_logs("c2cwsgiutils.client_info") as records:
        for _ in range(20):
            _get(client, {"Forwarded": "for=198.51.100.7;garbage"})
    assert len(records) == 1
    assert "without '='" in records[0].getMessage()


def test_huge_headers_are_ignored():
    """Proxy headers over 16 KiB are ignored with a warning, never parsed nor a 500."""
    huge = "for=198.51.100.7," + ",".join(["for=10.0.0.1"] * 5000)
    with testing.capture_logs("c2cwsgiutils.client_info") as records:
        result = _get(_client(peer="192.0.2.1"), {"Forwarded": huge})
        xff = _get(_client(peer="192.0.2.1"), {"X-Forwarded-For": huge.replace("for=", "")})
    assert result["client_addr"] == "192.0.2.1"
    assert xff["client_addr"] == "192.0.2.1"
    assert any("16 KiB" in r.getMessage() for r in records)


def test_malformed_x_forwarded_values_are_ignored():
    """Invalid addresses, hosts and protocols in X-Forwarded-* are ignored one by one."""
    result = _get(
        _client(peer="192.0.2.1"),
        {"X-Forwarded-For": "<script>", "X-Forwarded-Host": "a b", "X-Forwarded-Proto": "gopher"},
    )
    assert result["client_addr"] == "192.0.2.1"
    assert result["host_url"] == "http://localhost"


# --- Pyramid tween -----------------------------------------------------------------------------


def _pyramid_view(request):
    return {
        "client_addr": request.client_addr,
        "url": request.route_url("info"),
        "scheme": request.scheme,
    }


def _configure(config):
    config.add_route("info", "/info")
    config.add_view(_pyramid_view, route_name="info", renderer="json")


def test_tween_applies_the_headers_without_the_filter(app_factory):
    """``config.include("c2cwsgiutils.client_info")`` processes the headers for Pyramid apps."""
    app = app_factory({}, includes=("c2cwsgiutils.client_info",), configure=_configure)
    result = app.get("/info", headers={"Forwarded": "for=198.51.100.7;proto=https;host=example.com"}).json
    assert result == {"client_addr": "198.51.100.7", "url": "https://example.com/info", "scheme": "https"}


def test_tween_uses_trusted_proxies_from_settings(app_factory):
    """The tween reads ``c2c.trusted_proxies`` from the application settings."""
    app = app_factory(
        {"c2c.trusted_proxies": "10.0.0.0/8"}, includes=("c2cwsgiutils.client_info",), configure=_configure
    )
    untrusted = app.get(
        "/info", headers={"X-Forwarded-For": "1.2.3.4"}, extra_environ={"REMOTE_ADDR": "8.8.8.8"}
    )
    assert untrusted.json["client_addr"] == "8.8.8.8"
    trusted = app.get(
        "/info", headers={"X-Forwarded-For": "1.2.3.4"}, extra_environ={"REMOTE_ADDR": "10.0.0.1"}
    )
    assert trusted.json["client_addr"] == "1.2.3.4"


def test_filter_and_tween_do_not_process_twice():
    """When the WSGI filter ran, the tween leaves the environ alone."""
    pyramid_app = testing.make_app({}, includes=("c2cwsgiutils.client_info",), configure=_configure)
    app = webtest.TestApp(
        Filter(pyramid_app, trusted_proxies="10.0.0.0/8"), extra_environ={"REMOTE_ADDR": "192.0.2.1"}
    )
    # The filter refuses the header from an untrusted peer; the tween (trusting all) would accept it.
    assert app.get("/info", headers={"Forwarded": "for=6.6.6.6"}).json["client_addr"] == "192.0.2.1"


def test_invalid_trusted_proxies_setting_fails_at_include():
    """A wrong ``c2c.trusted_proxies`` fails when the application is built."""
    with pytest.raises(ConfigurationError, match=r"c2c\.trusted_proxies"):
        testing.make_app({"c2c.trusted_proxies": "nope"}, includes=("c2cwsgiutils.client_info",))


@pytest.mark.parametrize(
    "includes",
    [
        ("c2cwsgiutils.client_info", "c2cwsgiutils.request_tracking"),
        ("c2cwsgiutils.request_tracking", "c2cwsgiutils.client_info"),
    ],
)
def test_tween_is_first_before_request_tracking(includes):
    """The proxy headers are processed by the outermost tween, before request tracking."""
    app = testing.make_app({}, includes=includes)
    names = [name for name, _ in app.registry.queryUtility(ITweens).implicit()]
    assert names[:2] == [
        "c2cwsgiutils.client_info.client_info_tween_factory",
        "c2cwsgiutils.request_tracking.request_tracking_tween_factory",
    ]


# --- properties --------------------------------------------------------------------------------

_HEADER_TEXT = st.text(
    alphabet=st.sampled_from(list('for=proto;host,by"[]:\\_ 0123456789.abcdef\xff\x00\t')) | st.characters(),
    max_size=200,
)


@given(_HEADER_TEXT)
def test_forwarded_parser_never_raises(header):
    """For any text the parser returns elements of lower-case token keys, or problems."""
    elements, problems = _client_info.parse_forwarded(header)
    assert all(isinstance(p, str) for p in problems)
    for element in elements:
        assert element
        assert all(key == key.lower() and key for key in element)


@given(_HEADER_TEXT, st.sampled_from([None, "10.0.0.0/8"]))
def test_forwarded_client_address_comes_from_the_header(header, trusted):
    """The client address is the peer's or a value present in the Forwarded header."""
    environ = {"REMOTE_ADDR": "10.9.9.9", "HTTP_FORWARDED": header, "wsgi.url_scheme": "http"}
    seen = _process(environ, trusted_proxies=trusted)
    assert seen["REMOTE_ADDR"] == "10.9.9.9" or seen["REMOTE_ADDR"] in header
    assert seen["wsgi.url_scheme"] in {"http", "https"}


@given(_HEADER_TEXT, st.sampled_from([None, "10.0.0.0/8"]))
def test_x_forwarded_for_client_address_comes_from_the_header(header, trusted):
    """The client address is the peer's or one of the X-Forwarded-For entries."""
    environ = {"REMOTE_ADDR": "10.9.9.9", "HTTP_X_FORWARDED_FOR": header, "wsgi.url_scheme": "http"}
    seen = _process(environ, trusted_proxies=trusted)
    entries = {entry.strip() for entry in header.split(",")}
    address = seen["REMOTE_ADDR"]
    assert address == "10.9.9.9" or any(address in entry for entry in entries)
    assert "HTTP_X_FORWARDED_FOR" not in seen


@given(
    st.ip_addresses().map(str),
    st.one_of(st.none(), st.integers(min_value=0, max_value=65535)),
)
def test_node_parser_round_trips_addresses(address, port):
    """Every IP address, with or without a port and brackets, is read back unchanged."""
    node = f"[{address}]" if ":" in address else address
    if port is not None:
        node = f"{node}:{port}"
    assert _client_info.node_host(node) == address


# --- parser and node table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "elements", "problems"),
    [
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
            [],
        ),
        ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}], []),
        ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}], []),
        ('for=unknown;host="ex\\"a"', [{"for": "unknown", "host": 'ex"a'}], []),
        (" , ;for=1.2.3.4 ; ,", [{"for": "1.2.3.4"}], []),
        ("abc;for=1.2.3.4", [{"for": "1.2.3.4"}], ["a parameter without '='"]),
        ('for="1.2.3.4', [], ["an unterminated quoted string"]),
        ("for=1.2.3.4 5", [], ["an invalid parameter value"]),
        ("for=;proto=https", [{"proto": "https"}], ["an empty parameter value"]),
        ('for="x"y', [], ["text after a quoted string"]),
        ('for="x""y"', [], ["text after a quoted string"]),
        ('"x"=y', [], ["a parameter without a name"]),
        ("f r=1.2.3.4", [], ["an invalid parameter name"]),
        ("for=a;FOR=b", [{"for": "a"}], ["a repeated parameter"]),
    ],
)
def test_forwarded_parser_table(header, elements, problems):
    """The parser follows RFC 7239 and names each problem it skips."""
    assert _client_info.parse_forwarded(header) == (elements, problems)


@pytest.mark.parametrize(
    ("node", "host"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("1.2.3.4:80", "1.2.3.4"),
        ("[::1]:80", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("unknown", "unknown"),
        ("_hidden:_port", "_hidden"),
        ("[1.2.3.4]", None),
        ("[::1", None),
        ("[::1]x", None),
        ("::zz", None),
        ("1.2.3.4:abc", None),
        ("example.com", None),
        ("", None),
    ],
)
def test_node_table(node, host):
    """Nodes give their address without port, or None when they are not an address."""
    assert _client_info.node_host(node) == host


def test_peer_that_is_not_an_address_is_not_trusted():
    """A REMOTE_ADDR that is not an IP (e.g. a unix socket) never counts as a trusted proxy."""
    client = _client(peer="unix:/run/app.sock", trusted_proxies="10.0.0.0/8")
    assert _get(client, {"X-Forwarded-For": "1.2.3.4"})["client_addr"] == "unix:/run/app.sock"


def test_invalid_x_forwarded_server_is_ignored():
    """An X-Forwarded-Server that is not a host name is ignored with a warning."""
    with testing.capture_logs("c2cwsgiutils.client_info") as records:
        result = _get(_client(), {"X-Forwarded-Server": "bad host/"})
    assert result["host"] == "localhost:80"
    assert "invalid host" in records[0].getMessage()


def test_trust_answers_are_cached_within_bounds():
    """Trust decisions stay right when the bounded cache of addresses overflows."""
    processor = _client_info.Processor(
        (ipaddress.ip_network("10.0.0.0/8"),), {}, _client_info.RateLimitedLog(logging.getLogger("test"))
    )
    answers = [processor.is_trusted(f"10.0.{i // 256}.{i % 256}") for i in range(1500)]
    assert all(answers)
    assert not processor.is_trusted("11.0.0.1")
    assert not processor.is_trusted("_" + "x" * 100)
    assert processor.is_trusted("10.0.0.1")
    assert processor.is_trusted("10.0.0.1")


def test_bad_proxy_headers_through_the_whole_library(app_factory):
    """With ``c2cwsgiutils.pyramid``, malformed, non-UTF-8 and huge proxy headers give 200."""
    app = app_factory({}, configure=_configure)
    for environ in (
        {"HTTP_FORWARDED": 'for="[::1;proto=\xff'},
        {"HTTP_FORWARDED": "for=" + "9" * 100_000},
        {"HTTP_X_FORWARDED_FOR": "\xe9\xff, ,", "HTTP_X_FORWARDED_HOST": "\x00"},
        {"HTTP_X_REQUEST_ID": "\xff" * 10_000, "HTTP_TRACEPARENT": "\xff"},
    ):
        response = app.get("/info", extra_environ={"REMOTE_ADDR": "192.0.2.1", **environ})
        assert response.status_int == 200
        assert response.json["client_addr"] == "192.0.2.1"  # the bad values are all ignored
