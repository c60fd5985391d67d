"""The header parsers behind SharedDataMiddleware, one table per parser (RFC 9110)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wsgidev.middleware._static_find import is_hashed_name
from wsgidev.middleware._static_http import (
    MAX_RANGES,
    choose_encoding,
    etag_matches,
    parse_accept_encoding,
    parse_etags,
    parse_http_date,
    parse_ranges,
)
from wsgidev.middleware._static_paths import compile_disallow, decode_path_info, split_in_export

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "spans"),
    [
        ("bytes=0-9", [(0, 10)]),
        ("bytes=990-", [(990, 1000)]),
        ("bytes=-10", [(990, 1000)]),
        ("bytes=-5000", [(0, 1000)]),  # a suffix longer than the file is the whole file
        ("bytes=900-5000", [(900, 1000)]),  # the last position is clamped to the file
        ("bytes=999-999", [(999, 1000)]),
        ("BYTES = 0-0", [(0, 1)]),  # the unit is case-insensitive, spaces are tolerated
        ("bytes=0-9,20-29", [(0, 10), (20, 30)]),
        ("bytes=20-29,0-9", [(0, 10), (20, 30)]),  # sorted
        ("bytes=0-9,5-14", [(0, 15)]),  # overlapping ranges merge
        ("bytes=0-9,10-19", [(0, 20)]),  # so do adjacent ones
        ("bytes=0-9,,20-29,", [(0, 10), (20, 30)]),  # empty list elements are allowed
        ("bytes=0-9,2000-", [(0, 10)]),  # an unsatisfiable range among good ones is dropped
        ("bytes=1000-", []),  # starts at the end: unsatisfiable -> 416
        ("bytes=5000-6000", []),
        ("bytes=-0", []),  # an empty suffix is unsatisfiable
        ("bytes=99999999999999999999999-", []),  # absurd offsets do not crash
        ("bytes=0-99999999999999999999999", [(0, 1000)]),
        ("bytes=10-5", None),  # last < first: the header is invalid and ignored
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("bytes=1-2-3", None),
        ("bytes=", None),
        ("items=0-9", None),  # another unit: ignored
        ("0-9", None),
        ("bytes=" + ",".join(f"{i * 3}-{i * 3}" for i in range(MAX_RANGES + 1)), None),  # too many
    ],
)
def test_parse_ranges(header: str, spans: list[tuple[int, int]] | None) -> None:
    assert parse_ranges(header, SIZE) == spans


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    assert parse_ranges("bytes=0-", 0) == []
    assert parse_ranges("bytes=-5", 0) == []


@pytest.mark.parametrize(
    ("header", "weights"),
    [
        ("gzip", {"gzip": 1.0}),
        ("gzip, deflate, br", {"gzip": 1.0, "deflate": 1.0, "br": 1.0}),
        ("br;q=0.5, GZIP;Q=0.8", {"br": 0.5, "gzip": 0.8}),
        ("x-gzip", {"gzip": 1.0}),
        ("identity;q=0, *;q=0", {"identity": 0.0, "*": 0.0}),
        ("gzip;q=nonsense", {"gzip": 0.0}),
        ("gzip;q=7", {"gzip": 1.0}),
        (" , ;q=1", {}),
    ],
)
def test_parse_accept_encoding(header: str, weights: dict[str, float]) -> None:
    assert parse_accept_encoding(header) == weights


BOTH = ("br", "gzip")


@pytest.mark.parametrize(
    ("header", "available", "chosen"),
    [
        ("gzip, br", BOTH, "br"),  # equal q: the smaller encoding
        ("gzip, deflate", BOTH, "gzip"),
        ("br;q=0.5, gzip;q=0.8", BOTH, "gzip"),
        ("br;q=0, gzip", BOTH, "gzip"),
        ("br;q=0, gzip;q=0", BOTH, None),
        ("gzip;q=0.1", BOTH, "gzip"),  # identity not mentioned: any q>0 coding is preferred
        ("gzip;q=0.5, identity;q=0.9", BOTH, None),  # an explicit identity competes by q
        ("gzip;q=0.5, identity;q=0", BOTH, "gzip"),
        ("identity", BOTH, None),
        ("*", BOTH, "br"),
        ("*;q=0", BOTH, None),
        ("deflate", BOTH, None),
        ("gzip, br", ("gzip",), "gzip"),
        ("x-gzip", ("gzip",), "gzip"),
        ("", BOTH, None),
    ],
)
def test_choose_encoding(header: str, available: tuple[str, ...], chosen: str | None) -> None:
    assert choose_encoding(header, available) == chosen


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ('"a"', [(False, '"a"')]),
        ('W/"a", "b"', [(True, '"a"'), (False, '"b"')]),
        (' "a" ,W/"b" ', [(False, '"a"'), (True, '"b"')]),
        ('"a,b"', [(False, '"a,b"')]),  # commas inside an opaque tag are part of it
        ("*", None),
        ("", []),
        ('"a", garbage', [(False, '"a"')]),
    ],
)
def test_parse_etags(header: str, tags: list[tuple[bool, str]] | None) -> None:
    assert parse_etags(header) == tags


@pytest.mark.parametrize(
    ("header", "weak", "matches"),
    [
        ('"x"', False, True),
        ('"y", "x"', False, True),
        ('W/"x"', True, True),  # If-None-Match compares weakly
        ('W/"x"', False, False),  # If-Match compares strongly
        ("*", False, True),
        ('"y"', True, False),
        ("x", True, False),  # an unquoted tag is not a tag
    ],
)
def test_etag_matches(header: str, weak: bool, matches: bool) -> None:
    assert etag_matches(header, '"x"', weak=weak) is matches


@pytest.mark.parametrize(
    "header",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
)
def test_parse_http_date_reads_the_three_formats(header: str) -> None:
    assert parse_http_date(header) == 784111777


@pytest.mark.parametrize("header", ["", "yesterday", "Sun, 99 Foo 1994 99:99:99 GMT", "\x00"])
def test_parse_http_date_rejects_garbage(header: str) -> None:
    assert parse_http_date(header) is None


@pytest.mark.parametrize(
    ("name", "hashed"),
    [
        ("app.3f9a2c1b.js", True),
        ("app-3f9a2c1b.js", True),
        ("style.0123456789abcdef0123.css", True),
        ("index-BXzT1a2c.js", True),  # Vite
        ("vendor.3f9a2c1b.min.js", True),
        ("app.js", False),
        ("jquery-3.7.1.min.js", False),
        ("report-20240101.csv", False),  # a date, not a hash
        ("my-component.js", False),
        ("deadbeef.js", False),  # no name before the hash
    ],
)
def test_hashed_names(name: str, hashed: bool) -> None:
    assert is_hashed_name(name) is hashed


@pytest.mark.parametrize(
    ("rest", "segments", "wants_directory"),
    [
        ("", (), False),
        ("/", (), True),
        ("/a/b.txt", ("a", "b.txt"), False),
        ("/a//b.txt", ("a", "b.txt"), False),
        ("/a/", ("a",), True),
        ("/ünïcode.txt", ("ünïcode.txt",), False),
    ],
)
def test_split_in_export_accepts_plain_names(
    rest: str, segments: tuple[str, ...], wants_directory: bool
) -> None:
    where = split_in_export(rest, allow_hidden=False)
    assert where is not None
    assert (where.segments, where.wants_directory) == (segments, wants_directory)


@pytest.mark.parametrize(
    "rest",
    [
        "/../x",
        "/a/../../x",
        "/./x",
        "/..",
        "/a\\..\\x",
        "/C:/x",
        "/c:x",
        "/a\x00b",
        "/.env",
        "/.git/config",
        "/a/.hidden/x",
    ],
)
def test_split_in_export_refuses(rest: str) -> None:
    assert split_in_export(rest, allow_hidden=False) is None


def test_split_in_export_allows_hidden_names_when_asked() -> None:
    where = split_in_export("/.well-known/x", allow_hidden=True)
    assert where is not None and where.segments == (".well-known", "x")
    assert split_in_export("/../x", allow_hidden=True) is None


def test_decode_path_info_undoes_the_latin1_transport() -> None:
    assert decode_path_info("/caf\xc3\xa9.txt") == "/café.txt"
    assert decode_path_info("/bad\xff") == "/bad\udcff"  # not UTF-8: kept as the byte
    assert decode_path_info("/already-text-€") == "/already-text-€"


@pytest.mark.parametrize(
    ("patterns", "path", "disallowed"),
    [
        ("*.py", "app.py", True),
        ("*.py", "deep/down/app.py", True),
        (["*.py", "private/*"], "private/key.pem", True),
        (["*.py", "private/*"], "public/key.pem", False),
        ("secret.txt", "a/secret.txt", True),  # no "/": also matched against the base name
        ("/private/*", "private/x", True),
        ("private/*", "a/private/x", False),  # with "/": anchored at the export
        ([], "x.py", False),
    ],
)
def test_disallow_patterns(patterns: str | list[str], path: str, disallowed: bool) -> None:
    assert compile_disallow(patterns)(path) is disallowed


@given(
    specs=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 120)), st.one_of(st.none(), st.integers(0, 120))
        ),
        min_size=1,
        max_size=6,
    ),
    size=st.integers(0, 100),
)
def test_parse_ranges_agrees_with_a_byte_by_byte_model(
    specs: list[tuple[int | None, int | None]], size: int
) -> None:
    header = "bytes=" + ",".join(
        f"{'' if a is None else a}-{'' if b is None else b}" for a, b in specs
    )
    wanted: set[int] = set()
    valid = True
    for first, last in specs:
        if (first is None and last is None) or (
            first is not None and last is not None and last < first
        ):
            valid = False
        elif first is None:
            assert last is not None
            wanted.update(range(max(size - last, 0), size) if last else ())
        else:
            wanted.update(range(first, size if last is None else min(last + 1, size)))
    spans = parse_ranges(header, size)
    if not valid:
        assert spans is None
        return
    assert spans is not None
    covered = [i for start, stop in spans for i in range(start, stop)]
    assert covered == sorted(wanted)  # every wanted byte once, in order, nothing else
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))  # merged: gaps between


def test_disallow_ignores_case_where_the_file_system_does() -> None:
    assert compile_disallow("*.py", ignore_case=True)("app/CODE.PY")
    assert compile_disallow("private/*", ignore_case=True)("Private/key.pem")
    assert not compile_disallow("*.py", ignore_case=False)("CODE.PY")
