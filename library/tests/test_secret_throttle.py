"""Guessing the secret is not free: past a few wrong secrets, a client address is answered 429.

The delay doubles with each further wrong secret up to a cap, is per client address (as the
trusted proxies resolve it), never touches other clients, and the memory it takes is bounded.
"""

from __future__ import annotations

import pytest
from pyramid.exceptions import ConfigurationError
from test_secret_logging import _SECRET as _SERVER_SECRET
from test_secret_logging import serve_server_app

from c2cwsgiutils import _redact, auth, testing
from c2cwsgiutils._auth_settings import AuthFailureSettings, FailureThrottle

_SECRET = "the-throttle-test-secret"
_THROTTLED = "Too many wrong secrets from this client address: retry in 600 seconds"
_INCLUDES = (
    "c2cwsgiutils.pretty_json",
    "c2cwsgiutils.request_tracking",
    "c2cwsgiutils.client_info",
    "c2cwsgiutils.auth",
    "c2cwsgiutils.errors",
)


def _protected(request):
    auth.auth_view(request)
    return {"ok": True}


def _configure(config):
    config.add_route("protected", "/protected")
    config.add_view(_protected, route_name="protected", renderer="fast_json")


@pytest.fixture
def make(app_factory):
    """The application with the secret, the JSON errors and a 600 s first delay (no clock in the test)."""

    def build(**settings):
        full = {
            "c2c.secret": _SECRET,
            "c2c.enable_exception_handling": "1",
            "c2c.auth.failure_delay": "600",
            "c2c.auth.failure_max_delay": "3600",
            **settings,
        }
        return app_factory(full, includes=_INCLUDES, configure=_configure)

    yield build
    _redact.forget_secrets()


def _get(app, secret, client, status):
    return app.get(
        "/protected", params={"secret": secret}, extra_environ={"REMOTE_ADDR": client}, status=status
    )


def test_wrong_secrets_then_429_with_retry_after(make):
    """After 5 wrong secrets, 429 with Retry-After and a JSON body, even for the right secret."""
    app = make()
    for _ in range(5):
        _get(app, "wrong", "10.0.0.1", 403)

    throttled = _get(app, "wrong", "10.0.0.1", 429)
    assert throttled.headers["Retry-After"] == "600"
    assert throttled.json == {
        "message": _THROTTLED,
        "status": 429,
        "request_id": throttled.json["request_id"],
    }
    # Not even compared: else a guesser would tell the right secret from the 429s.
    right = _get(app, _SECRET, "10.0.0.1", 429)
    assert 0 < int(right.headers["Retry-After"]) <= 600
    assert "Set-Cookie" not in right.headers
    # The header counts as well.
    app.get(
        "/protected", headers={"X-API-Key": _SECRET}, extra_environ={"REMOTE_ADDR": "10.0.0.1"}, status=429
    )


def test_other_clients_are_never_delayed(make):
    """Meanwhile another address gets 200 with the right secret, and its own 5 free tries."""
    app = make()
    for _ in range(6):
        _get(app, "wrong", "10.0.0.1", "*")
    _get(app, _SECRET, "10.0.0.1", 429)

    assert _get(app, _SECRET, "10.0.0.2", 200).json == {"ok": True}
    for _ in range(5):
        _get(app, "wrong", "10.0.0.3", 403)
    _get(app, "wrong", "10.0.0.3", 429)


def test_login_cookie_is_not_throttled(make):
    """A throttled address whose user already holds the login cookie (no secret sent) is served."""
    app = make()
    _get(app, _SECRET, "10.0.0.2", 200)  # the login cookie, kept by WebTest
    for _ in range(5):
        _get(app, "wrong", "10.0.0.1", "*")
    _get(app, "wrong", "10.0.0.1", 429)

    app.get("/protected", extra_environ={"REMOTE_ADDR": "10.0.0.1"}, status=200)


def test_right_secret_forgets_the_failures(make):
    """Failures below the limit are forgotten by a right secret: 4 wrong, right, then 5 free again."""
    app = make()
    for _ in range(4):
        _get(app, "wrong", "10.0.0.1", 403)
    _get(app, _SECRET, "10.0.0.1", 200)
    for _ in range(5):
        _get(app, "wrong", "10.0.0.1", 403)
    _get(app, "wrong", "10.0.0.1", 429)


def test_client_address_from_the_trusted_proxies(make):
    """Behind a trusted proxy each forwarded client counts alone; others cannot forge an address."""
    app = make(**{"c2c.trusted_proxies": "192.0.2.254"})
    proxy = {"REMOTE_ADDR": "192.0.2.254"}
    for _ in range(5):
        app.get(
            "/protected?secret=wrong",
            headers={"X-Forwarded-For": "198.51.100.1"},
            extra_environ=proxy,
            status=403,
        )
    app.get(
        "/protected?secret=wrong",
        headers={"X-Forwarded-For": "198.51.100.1"},
        extra_environ=proxy,
        status=429,
    )
    app.get(f"/protected?secret={_SECRET}", headers={"X-Forwarded-For": "198.51.100.2"}, extra_environ=proxy)

    # A client that is not a trusted proxy is its own address, whatever X-Forwarded-For says.
    direct = {"REMOTE_ADDR": "203.0.113.9"}
    for number in range(5):
        forged = {"X-Forwarded-For": f"198.51.100.{10 + number}"}
        app.get("/protected?secret=wrong", headers=forged, extra_environ=direct, status=403)
    app.get(
        "/protected?secret=wrong",
        headers={"X-Forwarded-For": "198.51.100.99"},
        extra_environ=direct,
        status=429,
    )


def test_one_warning_per_delay(make):
    """Each delay that starts is logged once at WARNING with the address, not each 429."""
    app = make()
    with testing.capture_logs("c2cwsgiutils.auth") as records:
        for _ in range(9):
            _get(app, "wrong", "10.0.0.1", "*")
    assert [(r.levelname, r.getMessage()) for r in records] == [
        ("WARNING", "5 wrong secrets from the client address 10.0.0.1: it is answered 429 for 600 seconds")
    ]


def test_limit_zero_disables_the_throttle(make):
    """``C2C_AUTH_FAILURE_LIMIT=0`` restores the unlimited tries of 6.0 and 6.1; 3 sets a lower limit."""
    unlimited = make(**{"c2c.auth.failure_limit": "0"})
    for _ in range(20):
        _get(unlimited, "wrong", "10.0.0.1", 403)
    _get(unlimited, _SECRET, "10.0.0.1", 200)

    strict = make(**{"c2c.auth.failure_limit": "3"})
    for _ in range(3):
        _get(strict, "wrong", "10.0.0.1", 403)
    _get(strict, "wrong", "10.0.0.1", 429)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("c2c.auth.failure_limit", "-1"),
        ("c2c.auth.failure_delay", "soon"),
        ("c2c.auth.failure_max_clients", "0"),
        ("c2c.auth.failure_expiry", "nan"),
    ],
)
def test_invalid_settings_are_refused(make, key, value):
    """A bad setting stops the application at start, naming it."""
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        make(**{key: value})


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _never_compared() -> bool:
    raise AssertionError("a throttled secret was compared")


def _wrong() -> bool:
    return False


def test_failures_expire():
    """Past its delay and ``expiry`` seconds after its last wrong secret, an address starts afresh."""
    clock = _Clock()
    settings = AuthFailureSettings(limit=2, delay=10.0, max_delay=35.0, expiry=100.0, max_clients=10)
    throttle = FailureThrottle(settings, clock)
    assert throttle.check("a", _wrong) == (False, 0.0)
    assert throttle.check("a", _wrong) == (False, 0.0)
    assert throttle.check("a", _never_compared) == (False, 10.0)

    clock.now += 99.0  # the delay is over, the failures are not forgotten yet: doubled delay
    assert throttle.check("a", _wrong) == (False, 0.0)
    assert throttle.check("a", _never_compared) == (False, 20.0)

    clock.now += 100.0
    assert throttle.check("a", _wrong) == (False, 0.0)
    assert throttle.check("a", _wrong) == (False, 0.0)
    assert throttle.check("a", _never_compared) == (False, 10.0)


def test_delay_doubles_up_to_the_cap():
    """Delays after the limit: 10, 20, 35 (capped), 35."""
    clock = _Clock()
    settings = AuthFailureSettings(limit=1, delay=10.0, max_delay=35.0, expiry=1000.0, max_clients=10)
    throttle = FailureThrottle(settings, clock)
    delays = []
    for _ in range(4):
        assert throttle.check("a", _wrong) == (False, 0.0)
        _, wait = throttle.check("a", _never_compared)
        delays.append(wait)
        clock.now += wait
    assert delays == [10.0, 20.0, 35.0, 35.0]
    # A right secret once the delay is over forgets the address.
    assert throttle.check("a", lambda: True) == (True, 0.0)
    assert len(throttle) == 0


def test_memory_is_bounded():
    """Many addresses: at most ``max_clients`` are remembered, the least recently seen forgotten."""
    throttle = FailureThrottle(AuthFailureSettings(limit=1, delay=60.0), _Clock())
    addresses = [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(25_000)]
    for address in addresses:
        throttle.check(address, _wrong)
    assert len(throttle) == 10_000
    assert throttle.check(addresses[-1], _never_compared)[1] == 60.0
    assert throttle.check(addresses[0], lambda: True) == (True, 0.0)


def test_memory_bound_through_the_application(make):
    """With ``C2C_AUTH_FAILURE_MAX_CLIENTS=10``, 10 newer addresses make the oldest forgotten."""
    app = make(**{"c2c.auth.failure_max_clients": "10", "c2c.auth.failure_limit": "1"})
    _get(app, "wrong", "10.0.0.1", 403)
    _get(app, _SECRET, "10.0.0.1", 429)
    for number in range(10):
        _get(app, "wrong", f"10.0.1.{number}", 403)
    _get(app, _SECRET, "10.0.0.1", 200)


@pytest.mark.server
def test_throttle_through_gunicorn(tmp_path):
    """A real gunicorn behind a trusted proxy: 5 wrong tries, then 429; another client gets 200."""
    env = {
        "C2C_TRUSTED_PROXIES": "127.0.0.1",
        "C2C_AUTH_FAILURE_DELAY": "600",
        "C2C_AUTH_FAILURE_MAX_DELAY": "600",
    }
    with serve_server_app(tmp_path, env) as server:
        statuses = [
            server.get("/c2c/logging/level?secret=wrong", {"X-Forwarded-For": "198.51.100.1"}).status
            for _ in range(6)
        ]
        throttled = server.get(
            "/c2c/logging/level", {"X-Forwarded-For": "198.51.100.1", "X-API-Key": _SERVER_SECRET}
        )
        other = server.get(
            "/c2c/logging/level", {"X-Forwarded-For": "198.51.100.2", "X-API-Key": _SERVER_SECRET}
        )
    assert statuses == [403] * 5 + [429]
    assert throttled.status == 429
    assert 0 < int(throttled.getheader("Retry-After")) <= 600
    assert throttled.getheader("Content-Type") == "application/json"
    assert other.status == 200
    assert "5 wrong secrets from the client address 198.51.100.1" in server.output
