"""The console behaves like the Python REPL inside a frame, and shows its output as safe HTML."""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from tests.conftest import call_app
from wsgidev.debug import DebuggedApplication
from wsgidev.debug import _console_output as output
from wsgidev.debug.console import Console


def text_of(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def run(console: Console, *lines: str) -> str:
    return "".join(str(console.run(line).html) for line in lines)


@pytest.fixture
def frame_console() -> Console:
    module_globals = {"GREETING": "hello", "__name__": "app.views"}
    frame_locals = {"x": 41, "user": {"name": "ada"}}
    return Console(frame_locals, module_globals, environ={"PATH_INFO": "/boom"})


def test_an_expression_echoes_its_repr(frame_console: Console) -> None:
    result = frame_console.run("x + 1")
    assert text_of(result.html) == "42"
    assert not result.more
    assert result.prompt == ">>> "


def test_a_statement_prints_nothing_and_its_names_persist(frame_console: Console) -> None:
    assert text_of(run(frame_console, "y = x * 2")) == ""
    assert text_of(run(frame_console, "y")) == "82"
    assert text_of(run(frame_console, "_ + 1")) == "83"


def test_frame_globals_are_read_live(frame_console: Console) -> None:
    frame_console.namespace.fallback["GREETING"] = "changed"  # type: ignore[index]
    assert text_of(run(frame_console, "GREETING")) == "'changed'"
    assert "NameError" in text_of(run(frame_console, "no_such_name"))


def test_multi_line_definitions_continue_until_complete(frame_console: Console) -> None:
    assert frame_console.run("def add(n):").more
    assert frame_console.run("    return n + x").more
    assert frame_console.run("").more is False
    assert text_of(run(frame_console, "add(1)")) == "42"


def test_a_console_function_sees_frame_locals_and_globals(frame_console: Console) -> None:
    run(frame_console, "def greet():", "    return f\"{GREETING} {user['name']} {x}\"", "")
    assert text_of(run(frame_console, "greet()")) == "'hello ada 41'"


def test_decorators_loops_and_else_blocks(frame_console: Console) -> None:
    out = run(frame_console, "@staticmethod", "def f(): pass", "", "type(f).__name__")
    assert text_of(out) == "'staticmethod'"
    out = run(frame_console, "for i in range(3):", "    print(i)", "else:", "    print('done')", "")
    assert text_of(out) == "0\n1\n2\ndone\n"


def test_a_new_statement_after_a_block_closes_it_without_a_blank_line(
    frame_console: Console,
) -> None:
    result = frame_console.run("def f():\n    return 7\nf()")
    assert text_of(result.html) == "7"
    assert not result.more


def test_stdout_and_stderr_are_captured_for_that_command(frame_console: Console) -> None:
    out = run(frame_console, "import sys; print('out'); print('err', file=sys.stderr)")
    assert '<span class="out">out\n</span>' in out
    assert '<span class="err">err\n</span>' in out
    assert not isinstance(sys.stdout, type(None))


def test_other_threads_output_is_not_swallowed(
    frame_console: Console, capsys: pytest.CaptureFixture[str]
) -> None:
    started, release = threading.Event(), threading.Event()
    frame_console.namespace["started"] = started
    frame_console.namespace["release"] = release

    def other_thread() -> None:
        assert started.wait(5)
        print("from another thread")
        release.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    out = run(
        frame_console, "print('mine'); started.set(); _ = release.wait(5); print('mine again')"
    )
    worker.join(5)
    assert text_of(out) == "mine\nmine again\n"
    assert "from another thread" in capsys.readouterr().out


def test_stdio_and_displayhook_are_restored_after_each_command(frame_console: Console) -> None:
    before = (sys.stdout, sys.stderr, sys.stdin, sys.displayhook)
    run(frame_console, "1", "print(2)", "1/0")
    assert (sys.stdout, sys.stderr, sys.stdin, sys.displayhook) == before


def test_an_exception_shows_a_short_traceback_and_the_console_stays_usable(
    frame_console: Console,
) -> None:
    shown = text_of(run(frame_console, "def fail():", "    return 1 / 0", "", "fail()"))
    assert "ZeroDivisionError: division by zero" in shown
    assert "return 1 / 0" in shown  # the console's own source lines are shown
    assert "console.py" not in shown
    assert text_of(run(frame_console, "x")) == "41"


def test_a_syntax_error_is_reported_and_forgotten(frame_console: Console) -> None:
    shown = text_of(run(frame_console, "x = = 1"))
    assert "SyntaxError" in shown
    assert not frame_console.is_waiting
    assert text_of(run(frame_console, "x")) == "41"


def test_system_exit_and_input_do_not_stop_or_block_the_server(frame_console: Console) -> None:
    assert "SystemExit(3) ignored" in text_of(run(frame_console, "raise SystemExit(3)"))
    assert "SystemExit(None) ignored" in text_of(run(frame_console, "exit()"))
    started = time.monotonic()
    assert "EOFError" in text_of(run(frame_console, "input('name? ')"))
    assert time.monotonic() - started < 2


def test_output_is_escaped(frame_console: Console) -> None:
    out = run(frame_console, "'<script>alert(1)</script>'", "print('<b>bold</b>')")
    assert "<script>" not in out and "<b>" not in out
    assert "&lt;script&gt;" in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out


def test_a_failing_repr_is_shown_not_raised(frame_console: Console) -> None:
    run(frame_console, "class Bad:", "    def __repr__(self): raise RuntimeError('no')", "")
    assert "<repr failed: RuntimeError: no>" in text_of(run(frame_console, "Bad()"))


def test_long_reprs_are_cut_with_show_more(frame_console: Console) -> None:
    out = run(frame_console, "'a' * 5000")
    assert 'class="show-more"' in out
    assert "repr-rest" in out and "hidden" in out
    assert text_of(out).count("a") >= 5000  # the rest is in the page, only hidden


def test_huge_reprs_are_bounded(frame_console: Console) -> None:
    out = run(frame_console, "'b' * 1_000_000")
    assert len(out) < 3 * output.REPR_MAX
    assert "more characters not shown" in out


def test_dump_without_arguments_shows_the_frame_locals(frame_console: Console) -> None:
    out = run(frame_console, "dump()")
    assert "<table>" in out
    names = re.findall(r"<th>([^<]+)</th>", out)
    assert {"x", "user", "environ"} <= set(names)
    assert "dump" not in names and "help" not in names and "__builtins__" not in names


def test_dump_of_an_object_shows_its_attributes(frame_console: Console) -> None:
    run(
        frame_console,
        "class Point:",
        "    def __init__(self): self.x, self.y = 1, '<y>'",
        "    @property",
        "    def broken(self): raise ValueError('nope')",
        "",
    )
    out = run(frame_console, "dump(Point())")
    assert re.search(r"<th>x</th><td>.*1.*</td>", out)
    assert "&lt;y&gt;" in out
    assert "getattr failed: ValueError: nope" in text_of(out)
    assert "<th>__init__</th>" not in out and "special attributes hidden" in out
    assert "<th>__init__</th>" in run(frame_console, "dump(Point(), all=True)")


def test_dump_of_a_mapping_shows_its_items(frame_console: Console) -> None:
    out = run(frame_console, "dump({'k': 'v'})")
    assert "<th>&#39;k&#39;</th>" in out


def test_help_renders_the_documentation(frame_console: Console) -> None:
    run(frame_console, "def documented():", "    '''Explains <things>.'''", "")
    out = run(frame_console, "help(documented)")
    assert '<pre class="help">' in out
    assert "Explains &lt;things&gt;." in out
    assert "help(object)" in text_of(run(frame_console, "help()"))


def test_environ_is_available(frame_console: Console) -> None:
    assert text_of(run(frame_console, "environ['PATH_INFO']")) == "'/boom'"


def test_a_frame_local_named_like_a_helper_wins() -> None:
    console = Console({"environ": "mine", "dump": "theirs"}, {}, environ={"PATH_INFO": "/"})
    assert text_of(run(console, "environ, dump")) == "('mine', 'theirs')"


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("us", 0, "user"),
        ("GREE", 0, "GREETING"),
        ("print(us", 6, "user"),
        ("user.ke", 0, "user.keys("),
        ("len", 0, "len("),
    ],
)
def test_tab_completes_names_and_attributes(
    frame_console: Console, text: str, start: int, expected: str
) -> None:
    completion = frame_console.complete(text)
    assert completion.start == start
    # rlcompleter appends "(" to callables, or "()" to those without arguments on 3.13+.
    assert any(match.startswith(expected) for match in completion.matches)


def test_completion_of_nothing_offers_nothing(frame_console: Console) -> None:
    assert frame_console.complete("").matches == ()
    assert frame_console.complete("x + ").matches == ()


def test_completion_of_a_huge_line_takes_linear_time(frame_console: Console) -> None:
    # A backtracking search for the trailing name would take hours on this (a megabyte body).
    started = time.perf_counter()
    assert frame_console.complete("a" * 200_000 + "!").matches == ()
    assert frame_console.complete("!" + "b" * 200_000).start == 1
    assert time.perf_counter() - started < 2


def test_completion_prefers_public_names(frame_console: Console) -> None:
    matches = frame_console.complete("user.").matches
    assert matches and not matches[0].startswith("user._")


def test_the_standalone_console_starts_from_a_namespace() -> None:
    console = Console({"answer": 42})
    assert text_of(run(console, "answer")) == "42"
    assert "NameError" in text_of(run(console, "environ"))


def test_consoles_in_threads_capture_independently() -> None:
    consoles = [Console({"n": n}) for n in range(4)]
    results: dict[int, str] = {}

    def work(n: int) -> None:
        results[n] = run(
            consoles[n], "import time", "for i in range(3):\n    print(n); time.sleep(0.01)\n"
        )

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert {n: text_of(out) for n, out in results.items()} == {n: f"{n}\n" * 3 for n in range(4)}


def test_render_repr_helpers_keep_short_reprs_whole() -> None:
    shown: Any = output.render_repr("'short'")
    assert "show-more" not in shown


def test_the_rest_behind_show_more_keeps_the_colour_of_what_it_continues() -> None:
    # A long string cut in the middle: the hidden rest is still string, not names and errors.
    text = repr("ab cd if " * 300)
    shown = str(output.render_repr(text))
    rest = re.search(r'<span class="repr-rest" hidden>(.*?)</span><button', shown, re.S)
    assert rest is not None
    classes = set(re.findall(r'class="([^"]+)"', rest.group(1)))
    assert classes == {"s1"}
    head = re.search(r'<span class="repr-head">(.*?)</span><span class="repr-rest"', shown, re.S)
    assert head is not None and set(re.findall(r'class="([^"]+)"', head.group(1))) == {"s1"}
    # Nothing is lost or doubled at the cut.
    assert html.unescape(re.sub(r"<[^>]+>", "", head.group(1) + rest.group(1))) == text


def standalone_page(**options: Any) -> str:
    def ok(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b""]

    app = DebuggedApplication(ok, evalex=True, pin_logging=False, **options)
    response = call_app(app, "/console", headers={"Host": "localhost"})
    assert response.code == 200
    return response.body.decode()


def test_the_standalone_console_names_console_init_func_only_when_given() -> None:
    plain = standalone_page()
    assert "console_init_func" not in plain and "starts empty" in plain
    seeded = standalone_page(console_init_func=lambda: {"db": object()})
    assert "console_init_func()" in seeded and "starts empty" not in seeded


def test_dump_in_the_standalone_console_does_not_speak_of_a_frame() -> None:
    standalone = Console({"answer": 42}, locals_title="Names in this console")
    out = run(standalone, "dump()")
    assert "Names in this console" in out and "frame" not in out and "answer" in out
    assert "Local variables in this frame" in run(Console({"answer": 42}), "dump()")


def test_a_line_of_only_spaces_ends_a_block(frame_console: Console) -> None:
    assert frame_console.run("def f():").more
    assert frame_console.run("    return x").more
    assert frame_console.run("    ").more is False
    assert text_of(run(frame_console, "f()")) == "41"


def test_pasted_code_with_blank_lines_inside_a_function(frame_console: Console) -> None:
    pasted = "def f():\n    a = 1\n\n    return a + x\n\nf()"
    result = frame_console.run(pasted)
    assert text_of(result.html) == "42"
    assert not result.more


def test_dump_masks_names_that_look_secret_but_the_name_shows_it() -> None:
    console = Console({"password": "hunter2", "api_token": "t0k3n", "count": 3}, {})
    out = run(console, "dump()")
    assert "hunter2" not in out and "t0k3n" not in out
    assert "********" in out and "masked" in out
    assert text_of(run(console, "password")) == "'hunter2'"


def test_a_runaway_print_loop_is_cut_and_counted(frame_console: Console) -> None:
    from wsgidev.debug.console import MAX_OUTPUT

    out = run(frame_console, "for i in range(100_000): print('line', i)", "")
    assert len(out) < MAX_OUTPUT + 10_000
    assert "more characters of output not shown" in text_of(out)
    assert text_of(run(frame_console, "x")) == "41"


def test_interrupt_drops_a_pending_block(frame_console: Console) -> None:
    assert frame_console.run("def f():").more
    result = frame_console.interrupt()
    assert "KeyboardInterrupt" in result.html and not result.more
    assert text_of(run(frame_console, "x")) == "41"
    assert frame_console.interrupt().html == ""


def test_a_process_without_stdout_still_captures_and_restores_none(
    frame_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    monkeypatch.setattr(sys, "stdin", None)
    assert text_of(run(frame_console, "print('hi')", "input()")).startswith("hi\n")
    assert sys.stdout is None and sys.stdin is None


def test_a_runtime_value_error_shows_its_traceback(frame_console: Console) -> None:
    shown = text_of(run(frame_console, "def parse():", "    return int('x')", "", "parse()"))
    assert "Traceback (most recent call last)" in shown
    assert "return int('x')" in shown
    assert "ValueError: invalid literal for int()" in shown


def test_exit_and_close_leave_the_servers_streams_open(
    frame_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin, stdout = io.StringIO("typed"), io.StringIO()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", stdout)
    run(frame_console, "exit()", "import sys; sys.stdout.close()")
    assert not stdin.closed and not stdout.closed


def test_compile_warnings_show_in_the_console() -> None:
    # In a fresh interpreter: pytest records warnings instead of printing them to stderr.
    script = (
        "from wsgidev.debug.console import Console\nprint(Console({'x': 41}).run('x is 41').html)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", script], capture_output=True, text=True, timeout=30
    )
    shown = text_of(done.stdout)
    assert "SyntaxWarning" in shown and "True" in shown
