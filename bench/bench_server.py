"""The development server side by side with its peers, over real sockets on 127.0.0.1.

    apt-get install -y wrk apache2-utils          # wrk, ab (taskset is in util-linux)
    pip install -e ".[bench]"
    python bench/bench_server.py                  # 5 rounds x 3 s per measurement
    python bench/bench_server.py --rounds 7 --duration 5
    python bench/bench_server.py --servers wsgidev-threaded,werkzeug-threaded --scenarios hello-ka
    git worktree add /tmp/base main && python bench/bench_server.py --baseline /tmp/base

Each server runs pinned to CPU 0 and the load generator to CPU 1 (``taskset``). Every round
starts each server in turn (the order rotates from round to round), loads it with every
scenario, and stops it, so candidates are interleaved A B C ... A B C. Reported: the median
over rounds of requests/s (MB/s for the file), of the p99 latency, and of the per-round ratio
to Werkzeug's threaded dev server (paired within a round, which cancels most machine noise),
and the server's own CPU time per request (per GB for the file), summed over its process
group from /proc: the steadiest number on a shared machine, and the one that shows sendfile.

Scenarios: hello world with keep-alive (wrk), hello world with a new connection per request
(ab, which wrk cannot do), a streamed response of 16 x 1 KiB chunks without Content-Length
(chunked under HTTP/1.1; wrk) and a 50 MiB file through ``wsgi.file_wrapper``, loaded once by
wrk and once by a small keep-alive client that drops bodies in the kernel (MSG_TRUNC): wrk
copies every byte, which on one core caps it near the loopback copy speed, below what a
sendfile server delivers.
The ceiling is a bare epoll keep-alive loop that answers every request with a fixed response
(no WSGI, no parsing beyond finding the end of the head); it only takes part in the hello runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.util import FileWrapper

ROOT = Path(__file__).resolve().parent.parent
SERVERS = (
    "wsgidev-threaded",
    "wsgidev",
    "werkzeug-threaded",
    "werkzeug",
    "waitress",
    "gunicorn-sync",
    "gunicorn-gthread",
    "wsgiref",
    "bare-loop",
)
BASELINE = "werkzeug-threaded"
SCENARIOS = ("hello-ka", "hello-close", "stream", "file-50MiB", "file-50MiB-discard")
HELLO = b"Hello, World!"
STREAM_CHUNKS = 16
FILE_SIZE = 50 * 1024 * 1024
FILE_ENV = "BENCH_SERVER_FILE"
SERVER_CPU, LOAD_CPU = "0", "1"
CONNECTIONS = {
    "hello-ka": 8,
    "hello-close": 8,
    "stream": 8,
    "file-50MiB": 2,
    "file-50MiB-discard": 2,
}
# gthread's and waitress's worker threads; wsgidev and Werkzeug use their own defaults.
WORKER_THREADS = 8


# ------------------------------------------------------------------ the app every server runs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks()
    if path == "/file":
        handle = open(os.environ[FILE_ENV], "rb")  # noqa: SIM115 - closed by the file wrapper
        size = os.fstat(handle.fileno()).st_size
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
        )
        # Werkzeug's dev server offers no wsgi.file_wrapper; PEP 3333's fallback is a plain one.
        wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
        return wrapper(handle, 1 << 20)  # type: ignore[no-any-return]
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def _chunks() -> Iterator[bytes]:
    block = b"x" * 1024
    for _ in range(STREAM_CHUNKS):
        yield block


# ------------------------------------------------------------------ serving (child process)


def serve(server: str, port: int) -> None:
    """Run one server in this process until SIGINT/SIGTERM (access logs off everywhere)."""
    if server.startswith("wsgidev"):
        from wsgidev.serving import make_server

        logging.getLogger("wsgidev").setLevel(logging.WARNING)
        make_server("127.0.0.1", port, app, threaded=server.endswith("threaded")).serve_forever()
    elif server.startswith("werkzeug"):
        from werkzeug.serving import make_server as werkzeug_make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        threaded = server.endswith("threaded")
        werkzeug_make_server("127.0.0.1", port, app, threaded=threaded).serve_forever()
    elif server == "waitress":
        import waitress

        waitress.serve(app, host="127.0.0.1", port=port, threads=WORKER_THREADS, _quiet=True)
    elif server == "wsgiref":
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        make_server("127.0.0.1", port, app, handler_class=QuietHandler).serve_forever()
    elif server == "bare-loop":
        bare_loop(port)
    else:
        raise SystemExit(f"unknown server {server!r}; choose from {', '.join(SERVERS)}")


def bare_loop(port: int) -> None:
    """The ceiling: epoll, keep-alive, one fixed response per request head, no WSGI."""
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        + str(len(HELLO)).encode()
        + b"\r\n\r\n"
        + HELLO
    )
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    clients: dict[int, tuple[socket.socket, bytearray]] = {}
    while True:
        for fd, _ in poller.poll():
            if fd == listener.fileno():
                with contextlib.suppress(BlockingIOError):
                    while True:
                        conn, _ = listener.accept()
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        clients[conn.fileno()] = (conn, bytearray())
                        poller.register(conn.fileno(), select.EPOLLIN)
                continue
            conn, buffer = clients[fd]
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if not data:
                poller.unregister(fd)
                del clients[fd]
                conn.close()
                continue
            buffer += data
            close = False
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                head = bytes(buffer[:end]).lower()
                del buffer[: end + 4]
                conn.sendall(response)
                # ab speaks HTTP/1.0 without keep-alive: answer, then close like a real server.
                close = b"connection: close" in head or (
                    head.split(b"\r\n", 1)[0].endswith(b"http/1.0") and b"keep-alive" not in head
                )
                if close:
                    break
            if close:
                poller.unregister(fd)
                del clients[fd]
                conn.close()


# --baseline DIR: "wsgidev@base" and "wsgidev-threaded@base" are the wsgidev of another checkout
# (say a git worktree of the last release), served by that checkout's own copy of this script.
BASELINE_SUFFIX = "@base"
_baseline: list[Path] = []


def server_command(server: str, port: int) -> list[str]:
    if server.endswith(BASELINE_SUFFIX):
        script = _baseline[0] / "bench" / "bench_server.py"
        name = server.removesuffix(BASELINE_SUFFIX)
        return [sys.executable, str(script), "--serve", name, "--port", str(port)]
    if server.startswith("gunicorn"):
        worker = ["-k", "gthread", "--threads", str(WORKER_THREADS)] if "gthread" in server else []
        return [
            sys.executable, "-m", "gunicorn", "--chdir", str(ROOT / "bench"), "-w", "1",
            *worker, "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            "--backlog", "1024", "bench_server:app",
        ]  # fmt: skip
    return [sys.executable, str(Path(__file__).resolve()), "--serve", server, "--port", str(port)]


# ------------------------------------------------------------------ driving (parent process)


@dataclass(frozen=True, slots=True)
class Result:
    """One load run: throughput (req/s, or MB/s for the file), p99 latency in ms, and the
    server's CPU time per request (per GB for the file) in microseconds."""

    rate: float
    p99_ms: float
    cpu_us: float = 0.0


@dataclass(frozen=True, slots=True)
class Load:
    """What a load generator reported: rate and p99, and how much work that was."""

    rate: float
    p99_ms: float
    work: float  # requests completed, or GB transferred for the file


@dataclass(frozen=True, slots=True)
class Running:
    """A started server: where to reach it and its process group (for its CPU time)."""

    base: str
    pgid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running(server: str, file_path: str) -> Iterator[Running]:
    """Start ``server`` pinned to CPU 0, yield where it listens, and always stop it."""
    port = free_port()
    root = _baseline[0] if server.endswith(BASELINE_SUFFIX) else ROOT
    env = {**os.environ, FILE_ENV: file_path, "PYTHONPATH": str(root), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *server_command(server, port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until_listening(port, proc, timeout=20)
        yield Running(f"http://127.0.0.1:{port}", proc.pid)
    finally:
        stop(proc)


def wait_until_listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}:\n{error}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (a graceful stop for the dev servers), then SIGTERM, then SIGKILL."""
    for signum, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    if proc.stderr is not None:
        proc.stderr.close()


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def server_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process in the server's group (gunicorn's workers too)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Fields after "(comm)": state ppid pgrp ... utime(14) stime(15), 1-based.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def load(command: list[str], duration: float) -> str:
    result = subprocess.run(
        ["taskset", "-c", LOAD_CPU, *command],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    )
    return result.stdout + result.stderr


def _tail(output: str) -> str:
    """The last few lines of a tool's output, on one line, for an error message."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return " | ".join(lines[-4:]) or "(no output)"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_SIZES = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}


def wrk(url: str, duration: float, connections: int, megabytes: bool) -> Load:
    output = load(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", url],
        duration,
    )
    if "Non-2xx" in output:
        raise RuntimeError(f"{url} answered errors under load: {_tail(output)}")
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    if megabytes:
        transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", output)
        rate = float(transfer[1]) * _SIZES[transfer[2]] if transfer else 0.0
    else:
        requests = re.search(r"Requests/sec:\s+([\d.]+)", output)
        rate = float(requests[1]) if requests else 0.0
    done = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)([KMG]?B) read", output)
    if not p99 or not rate or not done:
        raise RuntimeError(f"could not read wrk's output: {_tail(output)}")
    work = float(done[2]) * _SIZES[done[3]] / 1000 if megabytes else float(done[1])
    return Load(rate, float(p99[1]) * _UNITS[p99[2]], work)


def ab(url: str, duration: float, connections: int) -> Load:
    # -t bounds the time; the large -n keeps ab from stopping at its default 50000 requests.
    output = load(
        ["ab", "-q", "-r", "-t", str(max(1, round(duration))), "-n", "10000000",
         "-c", str(connections), url],
        duration,
    )  # fmt: skip
    failed = re.search(r"^(Failed requests|Non-2xx responses):\s+([1-9]\d*)", output, re.M)
    if failed:
        raise RuntimeError(f"{url} answered errors under load: {_tail(output)}")
    requests = re.search(r"Requests per second:\s+([\d.]+)", output)
    p99 = re.search(r"^\s*99%\s+(\d+)", output, re.M)
    done = re.search(r"^Complete requests:\s+(\d+)", output, re.M)
    if not requests or not p99 or not done:
        raise RuntimeError(f"could not read ab's output: {_tail(output)}")
    return Load(float(requests[1]), float(p99[1]), float(done[1]))


def discard_client(url: str, duration: float, connections: int) -> None:
    """Fetch ``url`` over keep-alive connections for ``duration`` s, dropping each body in the
    kernel (``recv`` with MSG_TRUNC: no copy to user space), and print ``MB/s p99_ms GB``.

    wrk copies and parses every byte it receives, so on one core it is the limit for a large
    file long before a sendfile server is; this client costs almost nothing per byte.
    """
    target = urlsplit(url)
    request = f"GET {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n\r\n".encode()
    received = [0] * connections
    latencies: list[float] = []
    deadline = time.monotonic() + duration

    def fetch_one(sock: socket.socket, index: int) -> bool:
        """One request; returns whether the server keeps the connection open."""
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            byte = sock.recv(1)  # the head is tiny; reading it bytewise keeps the body untouched
            if not byte or len(head) > 65536:
                raise ConnectionError("the server closed or sent no end of head")
            head += byte
        fields = head.lower().split(b"\r\n")
        length = next(int(f.split(b":", 1)[1]) for f in fields if f.startswith(b"content-length:"))
        while length > 0:
            got = len(sock.recv(min(length, 1 << 20), socket.MSG_TRUNC))
            if got == 0:
                raise ConnectionError("the server closed mid-body")
            length -= got
            received[index] += got
        return b"connection: close" not in fields and not fields[0].endswith(b"1.0")

    def worker(index: int) -> None:
        sock: socket.socket | None = None
        while time.monotonic() < deadline:
            if sock is None:
                sock = socket.create_connection((target.hostname, target.port), timeout=10)
            started = time.monotonic()
            keep = fetch_one(sock, index)
            latencies.append(time.monotonic() - started)
            if not keep:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    begin = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 30)
    elapsed = time.monotonic() - begin
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else 0
    print(f"{sum(received) / elapsed / 1e6:.1f} {p99:.2f} {sum(received) / 1e9:.4f}")


def discard(url: str, duration: float, connections: int) -> Load:
    output = load(
        [sys.executable, str(Path(__file__).resolve()), "--discard", url,
         "--duration", str(duration), "--connections", str(connections)],
        duration,
    )  # fmt: skip
    match = re.search(r"^([\d.]+) ([\d.]+) ([\d.]+)$", output, re.M)
    if not match or float(match[1]) == 0:
        raise RuntimeError(f"the discarding client failed: {_tail(output)}")
    return Load(float(match[1]), float(match[2]), float(match[3]))


def measure(scenario: str, server: Running, duration: float) -> Result:
    connections = CONNECTIONS[scenario]
    before = server_cpu_seconds(server.pgid)
    if scenario == "hello-ka":
        result = wrk(server.base + "/hello", duration, connections, megabytes=False)
    elif scenario == "hello-close":
        result = ab(server.base + "/hello", duration, connections)
    elif scenario == "stream":
        result = wrk(server.base + "/stream", duration, connections, megabytes=False)
    elif scenario == "file-50MiB":
        result = wrk(server.base + "/file", duration, connections, megabytes=True)
    else:
        result = discard(server.base + "/file", duration, connections)
    cpu = server_cpu_seconds(server.pgid) - before
    return Result(result.rate, result.p99_ms, cpu * 1e6 / result.work if result.work else 0.0)


def applies(server: str, scenario: str) -> bool:
    # The bare loop only knows one fixed response.
    return server != "bare-loop" or scenario.startswith("hello")


def make_file(directory: str) -> str:
    path = os.path.join(directory, "big.bin")
    block = os.urandom(1 << 20)
    with open(path, "wb") as out:
        for _ in range(FILE_SIZE // len(block)):
            out.write(block)
    return path


def run(servers: list[str], scenarios: list[str], rounds: int, duration: float) -> None:
    results: dict[tuple[str, str], list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-server-") as directory:
        file_path = make_file(directory)
        for number in range(rounds):
            shift = number % len(servers)
            order = servers[shift:] + servers[:shift]
            print(f"round {number + 1}/{rounds}: {' '.join(order)}", file=sys.stderr, flush=True)
            for server in order:
                with running(server, file_path) as started:
                    # A short unmeasured run: imports, thread pools and caches warm up.
                    wrk(started.base + "/hello", 1, 2, megabytes=False)
                    for scenario in scenarios:
                        if not applies(server, scenario):
                            continue
                        try:
                            result = measure(scenario, started, duration)
                        except (RuntimeError, subprocess.TimeoutExpired) as exc:
                            # One broken run is reported and left out; the others still count.
                            first_line = str(exc).splitlines()[0] if str(exc) else repr(exc)
                            print(f"  {server} {scenario}: {first_line}", file=sys.stderr)
                            continue
                        results.setdefault((server, scenario), []).append(result)
    print_table(results, servers, scenarios)


def print_table(
    results: dict[tuple[str, str], list[Result]], servers: list[str], scenarios: list[str]
) -> None:
    for scenario in scenarios:
        unit = "MB/s" if scenario.startswith("file") else "req/s"
        rounds = max((len(runs) for runs in results.values()), default=0)
        print(f"\n{scenario} (median of {rounds} rounds, server on CPU {SERVER_CPU}, "
              f"load on CPU {LOAD_CPU}, {CONNECTIONS[scenario]} connections)")  # fmt: skip
        per, scale = ("ms/GB", 1e-3) if scenario.startswith("file") else ("us/req", 1.0)
        # Ratios are paired within each round (which cancels most machine noise), then the median.
        references = [r for r in (BASELINE, "waitress") if results.get((r, scenario))]
        columns = "".join(f" x {r} |" for r in references)
        print(f"| server | {unit} | p99 ms |{columns} server CPU {per} |")
        print("|---|---:|---:|" + "---:|" * len(references) + "---:|")
        for server in servers:
            runs = results.get((server, scenario))
            if not runs:
                continue
            rate = statistics.median(r.rate for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            ratios = ""
            for reference in references:
                other = results[(reference, scenario)]
                ratio = "-"
                if len(other) == len(runs):
                    paired = zip(runs, other, strict=True)
                    ratio = f"{statistics.median(r.rate / b.rate for r, b in paired):.2f}"
                ratios += f" {ratio} |"
            cpu = statistics.median(r.cpu_us for r in runs) * scale
            print(f"| {server} | {rate:,.1f} | {p99:.2f} |{ratios} {cpu:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load run")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. a git worktree of main): its wsgidev servers take part too, "
        "as wsgidev@base and wsgidev-threaded@base",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: run one server
    parser.add_argument("--discard", help=argparse.SUPPRESS)  # internal: the discarding client
    parser.add_argument("--connections", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.discard:
        discard_client(args.discard, args.duration, args.connections)
        return
    if args.serve:
        with contextlib.suppress(KeyboardInterrupt):
            serve(args.serve, args.port)
        return
    servers = [s for s in args.servers.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(servers) - set(SERVERS)) + sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown server or scenario: {', '.join(unknown)}")
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    if args.baseline is not None:
        if not (args.baseline / "bench" / "bench_server.py").is_file():
            parser.error(f"--baseline {args.baseline} has no bench/bench_server.py")
        _baseline.append(args.baseline.resolve())
        servers += [s + BASELINE_SUFFIX for s in servers if s in ("wsgidev", "wsgidev-threaded")]
    missing = [tool for tool in ("wrk", "ab", "taskset") if shutil.which(tool) is None]
    if missing:
        parser.error(f"missing {', '.join(missing)}: apt-get install -y wrk apache2-utils")
    run(servers, scenarios, args.rounds, args.duration)


if __name__ == "__main__":
    main()
