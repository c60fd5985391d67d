"""Step 4b of serving a static file: read the request headers that choose what to send.

Pure parsing of Accept-Encoding, entity tags, HTTP dates and Range (RFC 9110); no I/O.
shared_data decides the status from these answers; _static_body streams the bytes."""

from __future__ import annotations

import re
from email.utils import mktime_tz, parsedate_tz
from functools import lru_cache

# Ranges beyond this count make the Range header ignored (RFC 9110 14.3 lets a server refuse
# many small ranges; they cost more than the whole file).
MAX_RANGES = 64

_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')
_RANGE_UNIT = re.compile(r"\s*bytes\s*=(.*)", re.IGNORECASE | re.DOTALL)
_RANGE_SPEC = re.compile(r"\s*(\d*)\s*-\s*(\d*)\s*")
_HUGE = 1 << 62


@lru_cache(maxsize=128)
def parse_accept_encoding(value: str) -> dict[str, float]:
    """Map each coding named in an Accept-Encoding value to its q-value (RFC 9110 12.5.3)."""
    weights: dict[str, float] = {}
    for item in value.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, raw = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(raw.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0  # a q we cannot read is not a permission to send that coding
        weights["gzip" if coding == "x-gzip" else coding] = q
    return weights


def choose_encoding(accept: str, available: tuple[str, ...]) -> str | None:
    """Pick the content coding to send from ``available`` (best first), or None for identity.

    A coding the client lists with q>0 wins over an identity it does not mention; an explicit
    ``identity;q=X`` (or ``*;q=X``) competes by q-value, ties going to the smaller encoding.
    """
    weights = parse_accept_encoding(accept)
    wildcard = weights.get("*", 0.0)
    best: str | None = None
    best_q = 0.0
    for coding in available:
        q = weights.get(coding, wildcard)
        if q > best_q:
            best, best_q = coding, q
    identity = weights.get("identity", weights.get("*"))
    if best is not None and identity is not None and identity > best_q:
        return None
    return best


def parse_etags(value: str) -> list[tuple[bool, str]] | None:
    """Split an If-Match / If-None-Match list into ``(weak, '"opaque"')`` pairs.

    Returns None for ``*``; an unreadable list yields the tags read before the damage.
    """
    if value.strip() == "*":
        return None
    tags: list[tuple[bool, str]] = []
    pos = 0
    while pos < len(value):
        match = _ETAG.match(value, pos)
        if match is None or match.end() == pos:
            break
        tags.append((match.group(1) is not None, match.group(2)))
        pos = match.end()
    return tags


def etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    """Whether ``etag`` (strong, quoted) is in the header list; ``weak`` picks the comparison."""
    if header == etag:
        return True
    tags = parse_etags(header)
    if tags is None:
        return True
    return any(tag == etag and (weak or not is_weak) for is_weak, tag in tags)


@lru_cache(maxsize=128)
def parse_http_date(value: str) -> int | None:
    """Seconds since the epoch for an HTTP date (IMF-fixdate, RFC 850 or asctime), else None."""
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    try:
        return mktime_tz(parsed)
    except (OverflowError, ValueError):
        return None


def parse_ranges(value: str, size: int) -> list[tuple[int, int]] | None:
    """Turn a Range header into sorted, merged ``(start, stop)`` byte spans within ``size``.

    Returns None when the header must be ignored (not bytes, malformed, too many ranges) and
    an empty list when every range is unsatisfiable (the caller answers 416).
    """
    unit = _RANGE_UNIT.fullmatch(value)
    if unit is None:
        return None
    specs = [spec for spec in unit.group(1).split(",") if spec.strip()]
    if not specs or len(specs) > MAX_RANGES:
        return None
    spans: list[tuple[int, int]] = []
    for spec in specs:
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None:
            return None
        first, last = match.groups()
        if first:
            start = _to_int(first)
            if last and _to_int(last) < start:
                return None  # RFC 9110 14.1.1: last < first makes the whole header invalid
            stop = min(_to_int(last) + 1, size) if last else size
        elif last:
            start, stop = max(size - _to_int(last), 0), size
            if _to_int(last) == 0:
                continue
        else:
            return None
        if start < size:
            spans.append((start, stop))
    return _merge(spans)


def _to_int(digits: str) -> int:
    # Longer than any real file offset: clamp instead of parsing thousands of digits.
    return int(digits) if len(digits) < 19 else _HUGE


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort spans and merge overlapping or adjacent ones (RFC 9110 14.3 allows coalescing)."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged
