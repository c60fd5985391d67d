"""What a browser does with a traceback page: ask for HTML, then load every asset it references.

Shared by the integration tests and the packaging test, which both prove that a page served
by some server arrives whole: markup, stylesheets, scripts and icons.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

# What Chromium sends for a navigation; the debugger answers `*/*` (curl, requests) with text.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BROWSER_HEADERS = {"Accept": BROWSER_ACCEPT}

_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)['"]?\s*\)""")
_RESOURCE_NAME = re.compile(r"cmd=resource&(?:amp;)?f=([\w.\-]+)")
_EXPECTED_TYPES = {
    ".css": "text/css",
    ".js": "javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/",
    ".woff2": "font/woff2",
}


class _References(HTMLParser):
    """Collects the URLs a browser would load for a page: stylesheets, scripts, images, icons."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.body_attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body_attrs = found
        if tag in ("script", "img") and found.get("src"):
            self.urls.append(found["src"] or "")
        if tag == "link" and found.get("href"):
            self.urls.append(found["href"] or "")


def body_attributes(html: str) -> dict[str, str | None]:
    parser = _References()
    parser.feed(html)
    return parser.body_attrs


def referenced_urls(page_url: str, html: str) -> list[str]:
    """Absolute URLs of the assets ``html`` references, including resource names in the text."""
    parser = _References()
    parser.feed(html)
    urls = [urljoin(page_url, url) for url in parser.urls if not url.startswith("data:")]
    urls += [_resource_url(page_url, name) for name in _RESOURCE_NAME.findall(html)]
    return _unique(urls)


def _resource_url(page_url: str, name: str) -> str:
    return urljoin(page_url, f"?__debugger__=yes&cmd=resource&f={name}")


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def resource_name(url: str) -> str:
    """The ``f=`` name of a debugger resource URL, or its path for any other URL."""
    query = parse_qs(urlsplit(url).query)
    return query.get("f", [urlsplit(url).path])[0]


def fetch_assets(
    session: requests.Session, page_url: str, html: str, timeout: float = 10
) -> dict[str, requests.Response]:
    """Load every asset the page references, and what its stylesheets and scripts reference in turn.

    Fails on any asset that is not a 200 with a body of the type its name promises.
    """
    pending = referenced_urls(page_url, html)
    assert pending, f"the page references no assets at all:\n{html[:2000]}"
    loaded: dict[str, requests.Response] = {}
    while pending and len(loaded) < 50:
        url = pending.pop(0)
        if url in loaded:
            continue
        response = session.get(url, timeout=timeout)
        loaded[url] = response
        name = resource_name(url)
        assert response.status_code == 200, f"{name}: {response.status_code} from {url}"
        assert response.content, f"{name}: empty body"
        _check_type(name, response.headers.get("Content-Type", ""))
        if name.endswith(".css"):
            pending += [
                urljoin(url, ref)
                for ref in _CSS_URL.findall(response.text)
                if not ref.startswith("data:")
            ]
        if name.endswith((".css", ".js")):
            pending += [
                _resource_url(page_url, ref) for ref in _RESOURCE_NAME.findall(response.text)
            ]
    return loaded


def _check_type(name: str, content_type: str) -> None:
    for suffix, expected in _EXPECTED_TYPES.items():
        if name.endswith(suffix):
            assert expected in content_type, (
                f"{name} served as {content_type!r}, expected {expected}"
            )


def assert_traceback_page(response: requests.Response, *expected_texts: str) -> str:
    """Check that ``response`` is wsgidev's HTML traceback page mentioning every expected text."""
    assert response.status_code == 500, response.text[:2000]
    assert response.headers["Content-Type"].startswith("text/html"), response.headers
    html = response.text
    body = body_attributes(html)
    assert "data-secret" in body, f"<body> has no data-secret: {body}"
    assert "data-evalex" in body, f"<body> has no data-evalex: {body}"
    assert "data-frame-id=" in html, "no frame carries data-frame-id"
    for text in expected_texts:
        assert text in html, f"{text!r} is not on the traceback page"
    csp = response.headers.get("Content-Security-Policy", "")
    assert "script-src" in csp or "default-src" in csp, f"weak or missing CSP: {csp!r}"
    assert "unsafe-inline" not in _directive(csp, "script-src"), csp
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    return html


def _directive(csp: str, name: str) -> str:
    for part in csp.split(";"):
        if part.strip().startswith(name):
            return part
    return ""


def frame_id_of(html: str, function: str) -> str:
    """The ``data-frame-id`` of the (last) frame on the page whose element names ``function``."""
    found = ""
    for segment in html.split('data-frame-id="')[1:]:
        frame_id, _, rest = segment.partition('"')
        if re.search(rf"\b{re.escape(function)}\b", rest.split("data-frame-id=", 1)[0]):
            found = frame_id
    assert found, f"no frame of {function}() on the page"
    return found
