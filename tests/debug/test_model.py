"""The traceback model: chains, groups, notes, hidden frames, recursion, masking, reprs."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import pytest

from wsgidev.debug import model
from wsgidev.debug._reprs import MASK, looks_secret, safe_repr
from wsgidev.debug.model import (
    CAUSE_SENTENCE,
    CONTEXT_SENTENCE,
    Frame,
    Repeat,
    build_traceback,
    collapse_repeats,
)


def build(exc: BaseException, **options: Any) -> model.Traceback:
    return build_traceback(exc, frame_ids=itertools.count(1), **options).traceback


def caught(func: Any, *args: Any) -> BaseException:
    try:
        func(*args)
    except BaseException as exc:  # the tests want every kind back as a value
        return exc
    raise AssertionError(f"{func.__name__} did not raise")


def fail_with_cause() -> NoReturn:
    try:
        {}["missing"]
    except KeyError as exc:
        raise RuntimeError("lookup failed") from exc


def fail_with_context() -> NoReturn:
    try:
        1 / 0  # noqa: B018 - the error is the point
    except ZeroDivisionError:
        raise ValueError("while handling")  # noqa: B904 - the implicit context is the point


def fail_suppressed() -> NoReturn:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        raise ValueError("fresh start") from None


def raise_group_of_recursions() -> NoReturn:
    raise ExceptionGroup("both", [caught(recurse, 0), caught(fail_with_context)])  # type: ignore[list-item]  # noqa: F821


@pytest.mark.parametrize(
    "raiser",
    [
        fail_with_cause,
        lambda: recurse(0),
        pytest.param(
            raise_group_of_recursions,
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+"),
        ),
    ],
    ids=["chain", "recursion", "group"],
)
def test_plaintext_is_exactly_what_python_prints(raiser: Any) -> None:
    exc = caught(raiser)
    expected = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert build(exc).plaintext == expected


@pytest.mark.parametrize(
    ("raiser", "types", "sentence"),
    [
        (fail_with_cause, ["KeyError", "RuntimeError"], CAUSE_SENTENCE),
        (fail_with_context, ["ZeroDivisionError", "ValueError"], CONTEXT_SENTENCE),
    ],
)
def test_a_chain_is_oldest_first_with_pythons_sentences(
    raiser: Any, types: list[str], sentence: str
) -> None:
    tb = build(caught(raiser))
    assert [item.exception.type_name for item in tb.chain] == types
    assert tb.chain[0].sentence == sentence
    assert tb.chain[-1].link is None
    assert tb.exception.type_name == types[-1]
    assert sentence in tb.plaintext


def test_from_none_hides_the_context_as_python_does() -> None:
    tb = build(caught(fail_suppressed))
    assert [item.exception.message for item in tb.chain] == ["fresh start"]


def test_a_cycle_in_the_chain_ends_it() -> None:
    first, second = ValueError("a"), TypeError("b")
    first.__context__, second.__context__ = second, first
    tb = build(first)
    assert [item.exception.type_name for item in tb.chain] == ["TypeError", "ValueError"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in 3.11")
def test_an_exception_group_is_a_tree_with_frames_per_member() -> None:
    def member(n: int) -> ValueError:
        exc = caught(json.loads, "{" * n)
        assert isinstance(exc, ValueError)
        return exc

    def raise_group() -> NoReturn:
        inner = ExceptionGroup("inner", [member(1), TypeError("plain")])  # noqa: F821
        raise ExceptionGroup("outer", [member(2), inner])  # noqa: F821

    tb = build(caught(raise_group))
    outer = tb.exception
    assert outer.is_group and outer.type_name == "ExceptionGroup"
    assert outer.message == "outer (2 sub-exceptions)"
    first, nested = (chain[-1].exception for chain in outer.group)
    assert first.type_name == "json.decoder.JSONDecodeError"
    assert first.frames and first.frames[-1].function.endswith("raw_decode")
    assert nested.is_group and [c[-1].exception.type_name for c in nested.group] == [
        "json.decoder.JSONDecodeError",
        "TypeError",
    ]
    ids = [frame.id for frame in tb.all_frames()]
    assert len(ids) == len(set(ids)) > 3


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in 3.11")
def test_a_wide_group_shows_fifteen_members_like_python() -> None:
    group = ExceptionGroup("many", [ValueError(str(i)) for i in range(20)])  # noqa: F821
    tb = build(group)
    assert len(tb.exception.group) == 15
    assert tb.exception.group_omitted == 5


def test_notes_are_kept_in_order() -> None:
    exc = ValueError("bad")
    exc.__notes__ = ["first note", "second\nnote"]
    assert build(exc).exception.notes == ("first note", "second\nnote")


def test_a_syntax_error_keeps_file_line_text_and_caret_span() -> None:
    exc = caught(compile, "x = 1\ny = (1 +\n", "broken.py", "exec")
    detail = build(exc).exception.syntax
    assert detail is not None
    assert detail.filename == "broken.py"
    assert detail.lineno == 2
    assert detail.text == "y = (1 +"
    assert detail.offset is not None and detail.offset >= 1


def helper_that_hides() -> NoReturn:
    __traceback_hide__ = True
    raise LookupError("from a hidden helper")


def calls_hidden_helper() -> NoReturn:
    helper_that_hides()


def test_frames_marked_traceback_hide_are_hidden_unless_asked() -> None:
    exc = caught(calls_hidden_helper)
    shown = build(exc).exception
    assert [f.function for f in shown.frames][-1].endswith("calls_hidden_helper")
    assert shown.hidden_frames == 1
    everything = build(exc, show_hidden_frames=True).exception
    assert everything.frames[-1].function.endswith("helper_that_hides")
    assert everything.hidden_frames == 0


def test_a_traceback_of_only_hidden_frames_is_shown_whole() -> None:
    exc = caught(helper_that_hides)
    tb = build(exc, skip=1)
    assert [f.function for f in tb.exception.frames] == ["helper_that_hides"]


def recurse(n: int) -> int:
    return recurse(n + 1)


def test_recursion_collapses_to_a_few_frames_and_keeps_the_raising_one() -> None:
    exc = caught(recurse, 0)
    entries = build(exc).exception.entries
    assert len(entries) <= 6
    repeats = [e for e in entries if isinstance(e, Repeat)]
    assert len(repeats) == 1 and repeats[0].length == 1 and repeats[0].count > 900
    assert isinstance(entries[-1], Frame) and entries[-1].function.endswith("recurse")


def ping(n: int) -> int:
    return pong(n + 1)


def pong(n: int) -> int:
    return ping(n + 1)


def test_mutual_recursion_collapses_as_a_cycle_of_two() -> None:
    entries = build(caught(ping, 0)).exception.entries
    repeats = [e for e in entries if isinstance(e, Repeat)]
    assert len(repeats) == 1 and repeats[0].length == 2
    assert len(entries) <= 8


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("abc", [0, 1, 2]),
        ("abbb", [0, 1, 2, 3]),  # three in a row is ordinary code, not runaway recursion
        ("abbbbbbc", [0, 1, Repeat(1, 5), 7]),
        ("abbbbbb", [0, 1, Repeat(1, 4), 6]),  # the innermost, raising frame stays
        ("xababababy", [0, 1, 2, Repeat(2, 3), 9]),
    ],
)
def test_collapse_repeats_table(keys: str, expected: list[object]) -> None:
    assert collapse_repeats([(collapse_repeats.__code__, ord(k)) for k in keys]) == expected


def test_locals_are_bounded_masked_and_never_raise() -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    def boom() -> NoReturn:
        password = "hunter2"  # noqa: F841
        api_key = "k-123"  # noqa: F841
        settings = {"SECRET_KEY": "s3", "debug": True}  # noqa: F841
        big = list(range(100_000))  # noqa: F841
        text = "x" * 100_000  # noqa: F841
        odd = Hostile()  # noqa: F841
        raise ValueError("boom")

    frame = build(caught(boom)).exception.frames[-1]
    values = {local.name: local for local in frame.locals}
    assert values["password"].value == MASK and values["password"].masked
    assert values["api_key"].value == MASK
    assert "s3" not in values["settings"].value and "'debug': True" in values["settings"].value
    assert len(values["big"].value) < 500 and "100000 items" in values["big"].value
    assert len(values["text"].value) < 500 and "100000 chars" in values["text"].value
    assert values["odd"].failed
    assert values["odd"].value == "<repr failed: RuntimeError: no repr for you>"


def test_the_repr_time_budget_skips_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "REPR_BUDGET_SECONDS", -1.0)

    def boom() -> NoReturn:
        value = 1  # noqa: F841
        raise ValueError

    local = build(caught(boom)).exception.frames[-1].locals[0]
    assert local.value == "<repr skipped: time budget spent>"


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "db_password",
        "userPassword",
        "SECRET_KEY",
        "api_key",
        "apiKey",
        "X-Api-Key",
        "access_token",
        "Authorization",
        "HTTP_COOKIE",
        "csrf_token",
        "pwd",
        "auth",
        "pin",
        "sessionid",
    ],
)
def test_secret_looking_names(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name", ["user", "author", "spinner", "keys", "session", "passenger", "count"]
)
def test_ordinary_names_are_not_masked(name: str) -> None:
    assert not looks_secret(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1,), "(1,)"),
        (frozenset(), "frozenset()"),
        ({"a": [1, {2: 3}]}, "{'a': [1, {2: 3}]}"),
        ({"a": {"b": {"c": {"d": 1}}}}, "{'a': {'b': {'c': {…}}}}"),
        (10**5000, "<int with 16610 bits>"),
    ],
    ids=["one-tuple", "empty-frozenset", "nested", "deep", "huge-int"],
)
def test_safe_repr_table(value: object, expected: str) -> None:
    assert safe_repr(value) == (expected, False)


def test_frames_are_classified_and_the_source_window_is_the_function() -> None:
    exc = caught(json.loads, "{")
    frames = build(exc).exception.frames
    assert frames[0].kind == "app" and frames[0].filename == __file__
    assert all(frame.kind == "library" for frame in frames[1:])
    source = frames[-1].source
    assert source is not None
    assert source.context_first <= source.current <= source.context_last
    assert source.first <= source.context_first and source.last >= source.context_last
    current = [line for line in source if line.is_current]
    assert len(current) == 1 and current[0].number == frames[-1].lineno


def test_skip_drops_the_catching_frame_and_keep_frames_hands_out_live_frames() -> None:
    def inner() -> NoReturn:
        marker = "alive"  # noqa: F841
        raise ValueError

    exc = caught(inner)
    built = build_traceback(exc, frame_ids=itertools.count(1), skip=1, keep_frames=True)
    frames = built.traceback.exception.frames
    assert [f.function.rsplit(".", 1)[-1] for f in frames] == ["inner"]
    assert built.live_frames[frames[0].id].f_locals["marker"] == "alive"
    assert build_traceback(exc, frame_ids=itertools.count(1)).live_frames == {}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="column positions are new in 3.11")
def test_the_failing_expression_is_located_by_columns() -> None:
    def lookup() -> int:
        table = {"é": 1}
        return table["é"] + table["missing"] + 2

    frame = build(caught(lookup)).exception.frames[-1]
    assert frame.columns is not None and frame.source is not None
    start, end = frame.columns
    line = frame.source.lines[frame.lineno - frame.source.first]
    assert line[start:end] == 'table["missing"]'


def test_no_columns_when_the_whole_line_failed() -> None:
    def whole() -> NoReturn:
        raise ValueError("the whole statement")

    assert build(caught(whole)).exception.frames[-1].columns is None


def test_library_files_are_python_installed_packages_and_wsgidev() -> None:
    import markupsafe

    import wsgidev.serving
    from wsgidev.debug.model import is_library_file

    assert is_library_file(json.__file__)
    assert is_library_file(markupsafe.__file__)
    assert is_library_file(wsgidev.serving.__file__)
    assert is_library_file("<frozen importlib._bootstrap>")
    assert not is_library_file(__file__)
    assert not is_library_file("<string>")


@pytest.mark.parametrize("prefix", ["prefix", "exec_prefix", "base_prefix"])
def test_console_script_entry_points_are_library_frames(prefix: str, tmp_path: Path) -> None:
    # `wsgidev run`, `flask run`: the venv's bin/ launcher is not the developer's code.
    from wsgidev.debug.model import is_library_file

    folder = "Scripts" if sys.platform == "win32" else "bin"
    assert is_library_file(os.path.join(getattr(sys, prefix), folder, "wsgidev"))
    assert is_library_file(os.path.join(getattr(sys, prefix), folder, "flask"))
    assert not is_library_file(str(tmp_path / "bin" / "manage.py"))


def test_a_slow_repr_is_interrupted() -> None:
    class Slow:
        def __repr__(self) -> str:
            give_up = time.monotonic() + 5
            while time.monotonic() < give_up:
                with contextlib.suppress(Exception):  # a repr that swallows errors is stopped too
                    time.sleep(0.001)
            return "finished"

    before = sys.gettrace()
    started = time.monotonic()
    text, failed = safe_repr(Slow(), seconds=0.05)
    assert sys.gettrace() is before  # a debugger's or coverage's tracer is put back
    assert failed and text == "<repr failed: took longer than 0.05 s>"
    assert time.monotonic() - started < 3  # the repr alone would run for 5 s
