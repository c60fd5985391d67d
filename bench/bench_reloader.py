"""The reloader side by side: wsgidev (stat, watchfiles, watchdog) and Werkzeug (stat, watchdog).

    python bench/bench_reloader.py                  # 5 interleaved rounds
    python bench/bench_reloader.py --rounds 7 --saves 5 --idle 10

One temporary project serves every candidate: an app importing 1,000 modules of a package, a
``views.py`` it answers from, and a ``node_modules/`` that brings the tree to 20,000 files. Each
round starts every candidate in turn (A B C D E, then again), with the server pinned to CPU 0 and
this script to CPU 1 (``taskset``), and measures:

- reload latency: from saving ``views.py`` (at a random moment, so the stat poll's phase is
  random too) to the first response carrying the new text, over a fresh connection each try;
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
    body = views.TEXT.encode()
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
    per_dir = 100
    for d in range(remaining // per_dir + 1):
        directory = root / "node_modules" / f"dep{d // 10}" / f"lib{d % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        for f in range(min(per_dir, remaining - d * per_dir)):
            (directory / f"file{f}.js").write_text("module.exports = 1;\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int) -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GIVE_UP_SECONDS)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    except OSError:
        return None
    finally:
        conn.close()


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the given processes, from /proc (Linux)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
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
    def __init__(self, candidate: str, project: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as most developers run: .pyc files reused
        env.pop("WSGIDEV_RELOADER_TYPE", None)
        self.log = open(project / f"{candidate}.log", "ab")  # noqa: SIM115  (closed in stop)
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
        while get(self.port) != text:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server on {self.port} never answered {text!r}")
            time.sleep(0.05)

    def pids(self) -> list[int]:
        return [self.proc.pid, *children_of(self.proc.pid)]

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()


def measure_reload(server: Server, project: Path, text: str) -> float | None:
    """Seconds from saving views.py to the first response with ``text``; None if it never comes."""
    (project / "views.py").write_text(f"TEXT = {text!r}\n")
    start = time.monotonic()
    while time.monotonic() - start < GIVE_UP_SECONDS:
        if get(server.port) == text:
            return time.monotonic() - start
        time.sleep(0.005)
    return None


def run_round(
    candidate: str, project: Path, saves: int, idle: float, counter: list[int]
) -> tuple[list[float | None], float]:
    counter[0] += 1
    text = f"v{counter[0]}"
    (project / "views.py").write_text(f"TEXT = {text!r}\n")
    server = Server(candidate, project)
    try:
        server.wait_ready(text)
        time.sleep(2.0)  # let the watcher finish its start before measuring
        pids = server.pids()
        before = cpu_seconds(pids)
        time.sleep(idle)
        idle_cpu = (cpu_seconds(pids) - before) / idle * 100
        latencies: list[float | None] = []
        for _ in range(saves):
            time.sleep(random.uniform(0.3, 1.3))
            counter[0] += 1
            latency = measure_reload(server, project, f"v{counter[0]}")
            latencies.append(latency)
            if latency is None:
                break  # it does not reload: later saves would not either
        return latencies, idle_cpu
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
    results: dict[str, tuple[list[float], list[float], int]] = {c: ([], [], 0) for c in args.only}
    counter = [0]
    with tempfile.TemporaryDirectory(prefix="wsgidev-bench-reloader-") as tmp:
        project = Path(tmp)
        make_project(project)
        for round_no in range(args.rounds):
            for candidate in args.only:
                latencies, idle_cpu = run_round(candidate, project, args.saves, args.idle, counter)
                done, cpus, missed = results[candidate]
                done.extend(x for x in latencies if x is not None)
                cpus.append(idle_cpu)
                results[candidate] = (done, cpus, missed + latencies.count(None))
                shown = ", ".join("never" if x is None else f"{x * 1000:.0f}" for x in latencies)
                print(
                    f"round {round_no + 1} {candidate:20} reload ms [{shown}]  "
                    f"idle CPU {idle_cpu:.2f}%",
                    file=sys.stderr,
                )
    print()
    print("| candidate | median reload (ms) | reloads seen | median idle CPU (% of a core) |")
    print("|---|---:|---:|---:|")
    for candidate, (done, cpus, missed) in results.items():
        median = f"{statistics.median(done) * 1000:.0f}" if done else "never"
        print(
            f"| {candidate} | {median} | {len(done)}/{len(done) + missed} | "
            f"{statistics.median(cpus):.2f} |"
        )


if __name__ == "__main__":
    main()
