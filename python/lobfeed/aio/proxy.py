"""Proxy settings: parse and check ``ConnectOptions.proxy``, find the environment's proxy, mask
credentials, and turn a proxy's refusal into a typed error.

``ConnectOptions.proxy`` is one of:

- ``None``: no proxy, and the environment's proxy variables are ignored;
- ``"http://[user:pass@]host:port"``: an HTTP proxy (``CONNECT`` tunnels; plain ``http://``
  REST requests are forwarded by it);
- ``"socks5://..."``, ``"socks5h://..."`` (the proxy resolves host names), ``"socks4://..."``,
  ``"socks4a://..."``: a SOCKS proxy, user and password optional (SOCKS5 only);
- ``"env"``: the environment says, per URL, with one rule for websockets and REST alike:
  ``NO_PROXY`` first (``urllib``'s reading of it), then ``WSS_PROXY``/``HTTPS_PROXY`` for
  ``wss://`` and ``https://`` URLs or ``WS_PROXY``/``HTTP_PROXY`` for ``ws://`` and ``http://``
  ones, then ``ALL_PROXY``. Lower-case names win over upper-case ones; a value without a scheme
  is taken as ``http://``.

A password never appears in a message, a log line or a ``repr``: :func:`mask` replaces it with
``***`` and :func:`scrub` takes it out of any text (a library's error message, say).
"""

from __future__ import annotations

import base64
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from lobfeed.exceptions import ConfigError, ConnectError, ProxyRejectedError

ENV = "env"
"""``ConnectOptions.proxy="env"``: take the proxy from the environment's variables."""

#: Schemes a proxy URL may have; every one works with the websockets transport and REST.
SCHEMES = ("http", "socks5", "socks5h", "socks4", "socks4a")
#: What the picows transport can do (python-socks cannot say "SOCKS4 with remote DNS").
PICOWS_SCHEMES = ("http", "socks5", "socks5h", "socks4")

#: An HTTP proxy answering ``CONNECT`` with these will answer the same way again: missing or
#: wrong credentials (407), a destination its rules forbid (403), a request it cannot handle.
PERMANENT_HTTP_STATUSES = frozenset({400, 401, 403, 405, 407})
#: SOCKS5 replies that will not change by retrying: not allowed by the rule set (2), command
#: (7) or address type (8) not supported. SOCKS4: identd unreachable or wrong (92, 93).
PERMANENT_SOCKS_CODES = frozenset({2, 7, 8, 92, 93})

_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/?#\s@]*)@")


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """A parsed, checked proxy address; ``repr`` and ``str`` give the masked form."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def socks(self) -> bool:
        return self.scheme.startswith("socks")

    @property
    def address(self) -> str:
        """``scheme://host:port``, without credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def url(self, scheme: str | None = None) -> str:
        """The full URL, credentials included (percent-encoded): for the client libraries
        only, never for a message."""
        scheme = scheme or self.scheme
        host = f"[{self.host}]" if ":" in self.host else self.host
        info = ""
        if self.username is not None:
            info = urllib.parse.quote(self.username, safe="")
            if self.password is not None:
                info += ":" + urllib.parse.quote(self.password, safe="")
            info += "@"
        return f"{scheme}://{info}{host}:{self.port}"

    def masked(self) -> str:
        """The URL as messages show it: ``http://user:***@host:port``."""
        if self.username is None:
            return self.address
        user = urllib.parse.quote(self.username, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}:***@{host}:{self.port}"

    def secrets(self) -> Iterator[str]:
        """The forms the password could take in a library's text."""
        if self.password:
            yield self.password
            yield urllib.parse.quote(self.password, safe="")
            if self.username is not None:
                pair = f"{self.username}:{self.password}".encode()
                yield base64.b64encode(pair).decode("ascii")

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"ProxyURL({self.masked()!r})"


def mask(value: object) -> str:
    """``value`` fit for a message: the password of any URL in it replaced with ``***``.

    Works on malformed values too (the ones a ``ConfigError`` names); with no scheme, the part
    before the last ``@`` is taken as the user information.
    """
    text = str(value)

    def hide(match: re.Match[str]) -> str:
        user, colon, _ = match["info"].partition(":")
        return f"{match['head']}{user}:***@" if colon else f"{match['head']}***@"

    masked = _USERINFO.sub(hide, text)
    if masked == text and "://" not in text and "@" in text:
        info, _, rest = text.rpartition("@")
        user, colon, _ = info.partition(":")
        masked = f"{user}:***@{rest}" if colon else f"***@{rest}"
    return masked


def mask_value(value: object) -> str:
    """One proxy setting fit for a message, however malformed: everything after the first
    ``:`` of its user information (the part before the last ``@``) becomes ``***``."""
    text = str(value)
    head, at, rest = text.rpartition("@")
    if not at:
        return text
    scheme, sep, info = head.partition("://") if "://" in head else ("", "", head)
    user, colon, _ = info.partition(":")
    return f"{scheme}{sep}{user}:***@{rest}" if colon else f"{scheme}{sep}***@{rest}"


def scrub(text: str, proxy: ProxyURL | None) -> str:
    """``text`` with every URL's password masked and ``proxy``'s password removed outright."""
    text = mask(text)
    if proxy is not None:
        for secret in proxy.secrets():
            text = text.replace(secret, "***")
    return text


def parse(value: str, *, where: str = "proxy") -> ProxyURL:
    """A checked :class:`ProxyURL`, or a ``ConfigError`` naming ``value`` (masked)."""

    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"{where} must be None, 'env' or 'scheme://[user:password@]host:port' with a "
            f"scheme of {', '.join(SCHEMES)}; {mask_value(value)!r} {why}"
        )

    if not isinstance(value, str):
        raise bad("is not a string")
    if any(c.isspace() for c in value):
        raise bad("contains white space")
    try:
        parts = urllib.parse.urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise bad(f"does not parse ({mask(e)})") from None  # the port's text at most
    scheme = parts.scheme.lower()
    if not parts.netloc or "://" not in value:
        raise bad("is not a URL")
    if scheme not in SCHEMES:
        raise bad(f"has an unknown scheme {scheme!r}")
    if not parts.hostname:
        raise bad("names no host")
    if port is None or port == 0:
        raise bad("names no port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("has a path, query or fragment (a proxy address has none)")
    username, password = parts.username, parts.password
    if username is not None:
        username = urllib.parse.unquote(username)
        if password is None:
            raise bad("has a user name but no password")
        password = urllib.parse.unquote(password)
        if not username:
            raise bad("has a password but no user name")
        if scheme.startswith("socks4"):
            raise bad("has a password, which SOCKS4 cannot send")
    return ProxyURL(scheme, parts.hostname, port, username, password)


def check(value: str | None, transport: str) -> None:
    """What ``ConnectOptions`` runs at construction: a ``ConfigError`` for a malformed proxy,
    an unknown scheme, or one the transport cannot use."""
    if value is None or value == ENV:
        return
    proxy = parse(value)
    if transport == "picows" and proxy.scheme not in PICOWS_SCHEMES:
        raise ConfigError(
            f"transport='picows' cannot use the proxy {proxy.masked()!r}: it supports "
            f"{', '.join(PICOWS_SCHEMES)} proxies (use transport='websockets')"
        )


def from_env(url: str) -> ProxyURL | None:
    """The proxy the environment names for ``url`` (see the module docstring), or None."""
    target = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    host = target.hostname or ""
    port = target.port
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if proxies.get("no") and bypass(f"{host}:{port}" if port else host, proxies):
        return None
    secure = target.scheme in ("wss", "https")
    names = ("wss", "https", "all") if secure else ("ws", "http", "all")
    for name in names:
        value = proxies.get(name)
        if value:
            if "://" not in value:
                value = "http://" + value
            return parse(value, where=f"the {name.upper()}_PROXY environment variable")
    return None


def resolve(setting: str | None, url: str | None) -> ProxyURL | None:
    """The proxy to reach ``url`` through under ``ConnectOptions.proxy=setting`` (with
    ``"env"`` and no URL: none)."""
    if setting is None:
        return None
    if setting == ENV:
        return None if url is None else from_env(url)
    return parse(setting)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


_STATUS_IN_TEXT = re.compile(r"\bstatus (\d{3})\b")


def refusal(error: BaseException) -> tuple[int | None, int | None, str] | None:
    """What a proxy refusal says: ``(http_status, socks_code, detail)``, or None when
    ``error`` is not a proxy's answer (a TCP failure, a timeout)."""
    import python_socks
    from websockets.exceptions import InvalidProxyStatus

    for e in _chain(error):
        if isinstance(e, InvalidProxyStatus):
            return e.response.status_code, None, str(e)
        if isinstance(e, python_socks.ProxyError):
            text = str(e)
            found = _STATUS_IN_TEXT.search(text) if "HTTP proxy" in text else None
            if found is not None:
                return int(found[1]), None, text
            return None, e.error_code, text
    return None


def proxy_error(url: str, proxy: ProxyURL, error: BaseException) -> ConnectError:
    """A failure to connect to ``url`` through ``proxy`` as a typed, password-free error:
    :class:`ProxyRejectedError` when the proxy's answer will not change by retrying (407,
    403, SOCKS authentication failed or not allowed), ``ConnectError`` otherwise."""
    from lobfeed.aio.link import short_url

    where = f"{short_url(url)} through proxy {proxy.masked()}"
    found = refusal(error)
    if found is None:
        message = scrub(f"cannot connect to {where}: {type(error).__name__}: {error}", proxy)
        return ConnectError(message, url=url, proxy=proxy.masked())
    status, code, detail = found
    permanent = (
        status in PERMANENT_HTTP_STATUSES
        or code in PERMANENT_SOCKS_CODES
        or (status is None and code is None and "authentication" in detail.lower())
    )
    what = f"HTTP {status}" if status is not None else detail
    if status == 407:
        what += " (proxy authentication required: missing or wrong credentials)"
    message = scrub(f"proxy {proxy.masked()} refused the connection to {short_url(url)}: ", proxy)
    message += scrub(what, proxy)
    kind = ProxyRejectedError if permanent else ConnectError
    return kind(message, url=url, status=status, proxy=proxy.masked())
