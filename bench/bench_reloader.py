"""The reloader side by side: wsgidev (stat, watchfiles, watchdog) and Werkzeug (stat, watchdog).

    python bench/bench_reloader.py                  # 5 interleaved rounds
    python bench/bench_reloader.py --rounds 7 --saves 5 --idle 10

One temporary project serves every candidate: an app importing 1,000 modules of a package, a
``views.py`` it answers from, and a ``node_modules/`` that brings the tree to 20,000 files;
wsgidev is copied to a ``site-packages`` beside it, as an installed wheel would be. Each
round starts every candidate in turn (A B C D E, then again), with the server pinned to CPU 0 and
this script to CPU 1 (``taskset``), and measures:

- reload latency: from a save (at a random moment, so the stat poll's phase is random too) to
  the first response from the new code, over a fresh connection each try. Twice: for
  ``views.py``, saved a moment before (the file being edited; wsgidev's stat watcher polls such
  files more often), and for a module of the package untouched for a day (a new child pid);
- idle CPU: the CPU time the supervisor and its child used over ``--idle`` seconds without any
  change or request, as a percentage of one core.

Medians over all rounds are printed as a Markdown table. Werkzeug's run_simple (3.1) with
watchdog 7 never reloads (its ``*.py`` pattern is matched against whole paths), which the table
shows as "never" rather than as a number.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = (
    "wsgidev-stat",
    "wsgidev-watchfiles",
    "wsgidev-watchdog",
    "werkzeug-stat",
    "werkzeug-watchdog",
)
MODULES = 1000
TREE_FILES = 20_000
SERVER_CPU = "0"
CLIENT_CPU = 1
GIVE_UP_SECONDS = 8.0

APP = """\
import os, sys
import views
from pkg import *  # noqa: F401,F403  (1,000 modules, as a big app has)

def app(environ, start_response):
    body = f"{views.TEXT} {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

if __name__ == "__main__":
    server, kind = sys.argv[1].split("-")
    port = int(sys.argv[2])
    if server == "werkzeug":
        from werkzeug.serving import run_simple
    else:
        from wsgidev.serving import run_simple
    run_simple("127.0.0.1", port, app, use_reloader=True, reloader_type=kind)
"""


def make_project(root: Path) -> None:
    """app.py, views.py, pkg/ with MODULES modules, and node_modules/ up to TREE_FILES files."""
    (root / "app.py").write_text(APP)
    (root / "views.py").write_text("TEXT = 'v0'\n")
    pkg = root / "pkg"
    pkg.mkdir()
    names = [f"mod{i:04d}" for i in range(MODULES)]
    for name in names:
        (pkg / f"{name}.py").write_text(f"NAME = {name!r}\n\ndef f(x):\n    return x + 1\n")
    (pkg / "__init__.py").write_text(
        "".join(f"from . import {name}\n" for name in names) + f"__all__ = {names!r}\n"
    )
    remaining = TREE_FILES - MODULES - 3
    long_ago = time.time() - 86400  # a project's files are mostly old; views.py is saved anew
    per_dir = 100
    for d in range(remaining // per_dir + 1):
        directory = root / "node_modules" / f"dep{d // 10}" / f"lib{d % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        for f in range(min(per_dir, remaining - d * per_dir)):
            (directory / f"file{f}.js").write_text("module.exports = 1;\n")
    for path in [*pkg.iterdir(), root / "app.py"]:
        os.utime(path, (long_ago, long_ago))


def install_wsgidev(site: Path) -> None:
    """A copy of wsgidev laid out as a wheel installs it, so its own files are not watched."""
    target = site / "wsgidev"
    shutil.copytree(ROOT / "wsgidev", target, ignore=shutil.ignore_patterns("__pycache__"))
    for assets in ("templates", "static"):
        shutil.copytree(ROOT / assets, target / assets)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int) -> tuple[str, str] | None:
    """(text, pid) of one answer, on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GIVE_UP_SECONDS)
    try:
        conn.request("GET", "/")
        text, _, pid = conn.getresponse().read().decode().partition(" ")
        return text, pid
    except OSError:
        return None
    finally:
        conn.close()


def cpu_seconds(supervisor: int) -> float:
    """CPU time of ``supervisor`` and its children, reaped ones included (Linux /proc).

    A child that exits during the measurement moves its time into the supervisor's cutime and
    cstime, so restarts neither hide nor double-count CPU.
    """
    total = 0
    for pid in [supervisor, *children_of(supervisor)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            if pid == supervisor:
                total += int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    found.append(int(entry.name))
    return found


class Server:
    def __init__(self, candidate: str, project: Path, site: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(site)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as most developers run: .pyc files reused
        env.pop("WSGIDEV_RELOADER_TYPE", None)
        # The log goes beside the project, not in it: a file written on every request is a
        # case of its own (see tests/test_reloader_watch.py), not what is measured here.
        self.log = open(project.parent / f"{candidate}.log", "ab")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, sys.executable, "app.py", candidate, str(self.port)],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (get(self.port) or ("", ""))[0] != text:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server on {self.port} never answered {text!r}")
            time.sleep(0.05)

    def supervisor_pid(self) -> int:
        """The Python process under ``taskset`` (taskset execs it, so the pid is the same)."""
        return self.proc.pid

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()


def measure_reload(server: Server, path: Path, text: str, new_code: str) -> float | None:
    """Seconds from saving ``path`` to the first answer from new code; None if none comes.

    New code is seen in the text (views.py) or, for any other module, in a new child pid.
    """
    before = get(server.port)
    path.write_text(new_code)
    start = time.monotonic()
    while time.monotonic() - start < GIVE_UP_SECONDS:
        answer = get(server.port)
        fresh = answer is not None and before is not None and answer[0] == text
        if fresh and answer is not None and before is not None and (text, answer[1]) != before:
            return time.monotonic() - start
        time.sleep(0.005)
    return None


@dataclass
class Sample:
    hot: list[float | None]
    cold: list[float | None]
    idle_cpu: float


def run_round(candidate: str, root: Path, saves: int, idle: float, counter: list[int]) -> Sample:
    project, site = root / "project", root / "site-packages"
    counter[0] += 1
    text = f"v{counter[0]}"
    (project / "views.py").write_text(f"TEXT = {text!r}\n")
    server = Server(candidate, project, site)
    sample = Sample([], [], 0.0)
    try:
        server.wait_ready(text)
        time.sleep(2.0)  # let the watcher finish its start before measuring
        supervisor = server.supervisor_pid()
        before = cpu_seconds(supervisor)
        time.sleep(idle)
        sample.idle_cpu = (cpu_seconds(supervisor) - before) / idle * 100
        for kind in ("hot", "cold"):
            for _ in range(saves):
                time.sleep(random.uniform(0.3, 1.3))
                counter[0] += 1
                if kind == "hot":  # views.py, saved a moment ago: the file being edited
                    # Each text has a new length: Werkzeug would otherwise load a stale .pyc
                    # for a same-size edit within the second (wsgidev drops it).
                    path, code = project / "views.py", f"TEXT = {_text(counter[0])!r}\n"
                else:  # a module untouched for a day
                    path = project / "pkg" / f"mod{counter[0] % MODULES:04d}.py"
                    code = f"NAME = {counter[0]}\n"
                expected = text if kind == "cold" else _text(counter[0])
                latency = measure_reload(server, path, expected, code)
                if kind == "hot" and latency is not None:
                    text = expected
                getattr(sample, kind).append(latency)
                if latency is None:
                    break  # it does not reload: later saves would not either
        return sample
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--saves", type=int, default=4, help="reloads measured per round")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU sampling")
    parser.add_argument("--only", nargs="*", choices=CANDIDATES, default=list(CANDIDATES))
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("needs taskset (util-linux)")
    os.sched_setaffinity(0, {CLIENT_CPU})
    samples: dict[str, list[Sample]] = {c: [] for c in args.only}
    counter = [0]
    with tempfile.TemporaryDirectory(prefix="wsgidev-bench-reloader-") as tmp:
        root = Path(tmp)
        (root / "project").mkdir()
        make_project(root / "project")
        install_wsgidev(root / "site-packages")
        for round_no in range(args.rounds):
            for candidate in args.only:
                sample = run_round(candidate, root, args.saves, args.idle, counter)
                samples[candidate].append(sample)
                print(
                    f"round {round_no + 1} {candidate:20} hot ms [{_ms(sample.hot)}] "
                    f"cold ms [{_ms(sample.cold)}] idle CPU {sample.idle_cpu:.2f}%",
                    file=sys.stderr,
                )
    print()
    print(
        "| candidate | reload, file saved recently (ms) | reload, file untouched for a day (ms) "
        "| idle CPU (% of a core) |"
    )
    print("|---|---:|---:|---:|")
    for candidate, runs in samples.items():
        hot = [x for run in runs for x in run.hot]
        cold = [x for run in runs for x in run.cold]
        cpu = statistics.median(run.idle_cpu for run in runs)
        print(f"| {candidate} | {_median(hot)} | {_median(cold)} | {cpu:.2f} |")


def _text(n: int) -> str:
    return f"v{n}" + "x" * (n % 7)


def _ms(values: list[float | None]) -> str:
    return ", ".join("never" if x is None else f"{x * 1000:.0f}" for x in values)


def _median(values: list[float | None]) -> str:
    seen = [x for x in values if x is not None]
    median = f"{statistics.median(seen) * 1000:.0f}" if seen else "never"
    return f"{median} ({len(seen)}/{len(values)} seen)"


if __name__ == "__main__":
    main()
