"""Start-up: from process start to the first 200, `wsgidev run --debug` against `flask --debug run`.

    python bench/bench_startup.py                 # 7 interleaved rounds
    python bench/bench_startup.py --rounds 11

One small Flask app in a temporary folder. Each round starts every candidate in turn, each on
a fresh free port, polls it with a new connection every 5 ms until it answers 200, and stops
it (Ctrl+C to its process group). Both run with their reloader and debugger, as a developer
starts them every day. Medians and ranges over the rounds are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = """\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello"
"""

CANDIDATES = {
    "wsgidev run app:app --debug": ["-m", "wsgidev", "run", "app:app", "--debug"],
    "wsgidev run --debug (no TARGET)": ["-m", "wsgidev", "run", "--debug"],
    "flask dev --debug (wsgidev)": ["-m", "flask", "--app", "app", "--debug", "dev"],
    "flask --debug run (Werkzeug)": ["-m", "flask", "--app", "app", "--debug", "run"],
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers_200(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return conn.recv(16).startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
    except OSError:
        return False


def time_to_first_200(args: list[str], folder: Path, timeout: float = 30.0) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args, "--port", str(port)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - started < timeout:
            if answers_200(port):
                return time.perf_counter() - started
            time.sleep(0.005)
        raise RuntimeError(f"{' '.join(args)} did not answer within {timeout} s")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    results: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        (folder / "app.py").write_text(APP)
        for _ in range(options.rounds):
            for name, args in CANDIDATES.items():
                results[name].append(time_to_first_200(args, folder))
    print("| command | median (s) | fastest | slowest |")
    print("|---|---|---|---|")
    for name, times in results.items():
        print(
            f"| `{name}` | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |"
        )


if __name__ == "__main__":
    main()
