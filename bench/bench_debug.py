"""The traceback page side by side: Werkzeug's DebuggedApplication and wsgidev's, both called as
WSGI apps in one run.

    taskset -c 1 python bench/bench_debug.py               # everything
    taskset -c 1 python bench/bench_debug.py --rounds 9 --errors 10000 --werkzeug-errors 1000

Measures, interleaving the candidates (A B A B ...) over ``--rounds`` rounds and quoting medians:
- the HTML page for an error 30 distinct frames deep (Pygments included for wsgidev): time and
  size; wsgidev warm (its highlight cache filled, the steady state) and cold (caches cleared);
- the page for a RecursionError: time, size and frames shown;
- the wrapper's overhead per non-error request (wrapped minus bare app), for an app returning a
  list and for one returning a generator;
- the growth of the process (RSS, measured in a fresh child process per candidate) after many
  error requests.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEPTH = 30
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def deep_module() -> Any:
    """A module with 30 distinct functions calling each other (no recursion to fold away)."""
    lines = []
    for n in range(DEPTH):
        call = f"f{n + 1}(value + 1)" if n + 1 < DEPTH else "int('not a number ' + str(value))"
        lines += [
            f"def f{n}(value):",
            f"    '''Level {n} of the benchmark stack.'''",
            f"    label = 'level-{n}'",
            f"    return {call}",
            "",
        ]
    lines += [
        "def app(environ, start_response):",
        "    return f0(0)",
        "",
        "def recursion_app(environ, start_response):",
        "    def dive(n):",
        "        return dive(n + 1)",
        "    return dive(0)",
    ]
    folder = Path(tempfile.mkdtemp(prefix="bench-debug-"))
    path = folder / "bench_deep_app.py"
    path.write_text("\n".join(lines) + "\n")
    spec = importlib.util.spec_from_file_location("bench_deep_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def environ(accept: str = HTML) -> dict[str, Any]:
    env: dict[str, Any] = {"HTTP_ACCEPT": accept, "PATH_INFO": "/boom", "QUERY_STRING": ""}
    setup_testing_defaults(env)
    env["wsgi.errors"] = io.StringIO()
    return env


def start_response(
    status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Callable[[bytes], None]:
    return lambda data: None


def call(app: Callable[..., Iterable[bytes]], env: dict[str, Any]) -> bytes:
    result = app(env, start_response)
    try:
        return b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def make(kind: str, app: Any, **options: Any) -> Any:
    if kind == "werkzeug":
        from werkzeug.debug import DebuggedApplication as Werkzeug

        return Werkzeug(app, **options)
    from wsgidev.debug import DebuggedApplication as Ours

    return Ours(app, **options)


def quiet_logging() -> None:
    """Log as usual (formatting included) but write nowhere, for both candidates."""

    class Discard(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            self.format(record)

    for name in ("wsgidev", "werkzeug"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [Discard()]
        logger.propagate = False
        logger.setLevel(logging.INFO)


def clear_wsgidev_caches() -> None:
    from wsgidev.debug import _highlight, model

    _highlight.highlight_lines.cache_clear()
    model.code_span.cache_clear()


def time_pages(rounds: int, per_round: int, app_name: str) -> dict[str, tuple[float, int, float]]:
    """label -> (median ms, page bytes, median of the per-round ratios to Werkzeug)."""
    module = deep_module()
    target = getattr(module, app_name)
    apps = {"werkzeug": make("werkzeug", target), "wsgidev": make("wsgidev", target)}
    samples: dict[str, list[float]] = {"werkzeug": [], "wsgidev warm": [], "wsgidev cold": []}
    sizes: dict[str, int] = {}
    for name, app in apps.items():  # warm-up: imports, linecache, and wsgidev's highlight cache
        sizes[name] = len(call(app, environ()))
    sizes["wsgidev warm"] = sizes["wsgidev cold"] = sizes.pop("wsgidev")
    labels = ["werkzeug", "wsgidev warm", "wsgidev cold"]
    for round_index in range(rounds):
        order = labels[round_index % 3 :] + labels[: round_index % 3]  # rotate who goes first
        for label in order:
            app = apps["werkzeug" if label == "werkzeug" else "wsgidev"]
            times = []
            for _ in range(per_round):
                if label == "wsgidev cold":
                    clear_wsgidev_caches()
                env = environ()
                gc.collect()
                start = time.perf_counter()
                call(app, env)
                times.append(time.perf_counter() - start)
            samples[label].append(statistics.median(times))
    base = samples["werkzeug"]
    return {
        label: (
            statistics.median(values) * 1000,
            sizes[label],
            statistics.median(v / w for v, w in zip(values, base, strict=True)),
        )
        for label, values in samples.items()
    }


def overhead(rounds: int, requests: int) -> dict[str, float]:
    body = [b"ok"]

    def list_app(env: dict[str, Any], sr: Any) -> list[bytes]:
        sr("200 OK", [("Content-Type", "text/plain")])
        return body

    def generator_app(env: dict[str, Any], sr: Any) -> Iterable[bytes]:
        sr("200 OK", [("Content-Type", "text/plain")])
        yield b"ok"

    results: dict[str, list[float]] = {}
    env = environ("*/*")
    for _ in range(rounds):
        for shape, inner in (("list", list_app), ("generator", generator_app)):
            for kind in ("bare", "werkzeug", "wsgidev"):
                app = inner if kind == "bare" else make(kind, inner)
                start = time.perf_counter()
                for _ in range(requests):
                    call(app, env)
                elapsed = (time.perf_counter() - start) / requests
                results.setdefault(f"{kind} {shape}", []).append(elapsed)
    med = {key: statistics.median(values) * 1e6 for key, values in results.items()}
    return {
        f"{kind} {shape}": med[f"{kind} {shape}"] - med[f"bare {shape}"]
        for kind in ("werkzeug", "wsgidev")
        for shape in ("list", "generator")
    }


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def memory_child(kind: str, errors: int) -> None:
    """Run in a fresh process: RSS growth over ``errors`` error requests after the first one
    (which loads what any error needs once: Pygments' lexer, linecache, the templates)."""
    quiet_logging()
    module = deep_module()
    name, _, mode = kind.partition("-")
    options: dict[str, Any] = {"evalex": True, "pin_logging": False} if mode == "evalex" else {}
    app = make(name, module.app, **options)
    call(app, environ())
    gc.collect()
    before = rss_kib()
    for _ in range(errors):
        call(app, environ())
    gc.collect()
    print(rss_kib() - before)


def memory(kind: str, errors: int) -> float:
    output = subprocess.run(
        [sys.executable, __file__, "--memory-child", kind, "--errors", str(errors)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(output.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pages", type=int, default=5, help="pages timed per candidate per round")
    parser.add_argument(
        "--requests", type=int, default=100_000, help="non-error requests per round"
    )
    parser.add_argument(
        "--errors", type=int, default=10_000, help="error requests for wsgidev's memory"
    )
    parser.add_argument(
        "--werkzeug-errors", type=int, default=1_000, help="Werkzeug leaks; keep it short"
    )
    parser.add_argument("--only", choices=("pages", "overhead", "memory"), help="run one table")
    parser.add_argument(
        "--memory-child",
        choices=("werkzeug", "wsgidev", "werkzeug-evalex", "wsgidev-evalex"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.errors)
        return
    quiet_logging()
    from importlib.metadata import version

    print(
        f"Python {sys.version.split()[0]}, Werkzeug {version('werkzeug')}, Pygments {version('pygments')}"
    )
    print(f"{args.rounds} interleaved rounds, medians\n")
    if args.only in (None, "pages"):
        pages_table(args)
    if args.only in (None, "overhead"):
        overhead_table(args)
    if args.only in (None, "memory"):
        memory_table(args)


def pages_table(args: argparse.Namespace) -> None:
    deep = time_pages(args.rounds, args.pages, "app")
    rec = time_pages(args.rounds, args.pages, "recursion_app")
    print(
        f"| candidate | {DEPTH}-frame page ms | ratio | size KB "
        "| RecursionError page ms | ratio | size KB |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in ("werkzeug", "wsgidev warm", "wsgidev cold"):
        d, r = deep[label], rec[label]
        print(
            f"| {label} | {d[0]:.2f} | {d[2]:.2f} | {d[1] / 1000:.1f} "
            f"| {r[0]:.2f} | {r[2]:.3f} | {r[1] / 1000:.1f} |"
        )


def overhead_table(args: argparse.Namespace) -> None:
    cost = overhead(args.rounds, args.requests)
    print("\n| wrapper overhead per non-error request | µs |")
    print("|---|---|")
    for label, value in cost.items():
        print(f"| {label} | {value:.3f} |")


def memory_table(args: argparse.Namespace) -> None:
    print("\n| RSS growth after error requests | errors | MB |")
    print("|---|---|---|")
    for kind in ("werkzeug", "wsgidev", "werkzeug-evalex", "wsgidev-evalex"):
        errors = args.werkzeug_errors if kind.startswith("werkzeug") else args.errors
        print(f"| {kind} | {errors} | {memory(kind, errors):.1f} |")


if __name__ == "__main__":
    main()
