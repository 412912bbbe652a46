"""Start-up security rule (pure) and the access-key setting."""

from __future__ import annotations

import pytest

from greenshift.api.app import parse_access_keys
from greenshift.api.server import InsecureBindError, is_loopback, security_notice
from greenshift.settings import Settings


def test_loopback_without_keys_serves_and_says_so() -> None:
    notice = security_notice(Settings(host="127.0.0.1"))
    assert "authentication is off" in notice and "loopback" in notice


def test_elsewhere_without_keys_refuses() -> None:
    with pytest.raises(InsecureBindError) as exc:
        security_notice(Settings(host="0.0.0.0"))
    assert "GREENSHIFT_ACCESS_KEYS" in str(exc.value)


def test_elsewhere_with_keys_serves_with_sigv4() -> None:
    assert "SigV4" in security_notice(Settings(host="0.0.0.0", access_keys="AK:SK"))


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_parse_access_keys() -> None:
    assert parse_access_keys("A:x, B:y:z") == {"A": "x", "B": "y:z"}
    assert parse_access_keys(None) == {}
    with pytest.raises(ValueError):
        parse_access_keys("nosecret")
