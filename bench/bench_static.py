"""Static files side by side: Werkzeug's SharedDataMiddleware, WhiteNoise (default and
autorefresh=True) and wsgidev's SharedDataMiddleware.

    python bench/bench_static.py                 # in process and over the network
    python bench/bench_static.py --in-process    # only the in-process table
    python bench/bench_static.py --rounds 7 --duration 3

In process: each middleware is called as WSGI with the body consumed; median microseconds
per request over interleaved rounds (A B C D A B C D ...), for a 2 KiB file, a 304
revalidation, a Range request and a fall-through to the app.

Over the network: the server pinned to CPU 0 and wrk to CPU 1 (``taskset``), interleaved
rounds; req/s for the 2 KiB file and the 304, MB/s for a 50 MiB file, under gunicorn gthread
(every middleware), wsgidev's threaded server (wsgidev's middleware) and Werkzeug's threaded
server (Werkzeug's middleware, the baseline the targets are stated against).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ("werkzeug", "whitenoise", "whitenoise-autorefresh", "wsgidev")
SMALL = "small.2k.txt"
BIG = "big.bin"


def fallback_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = b"from the app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def build(candidate: str, root: str) -> Callable[..., Iterable[bytes]]:
    """The app the benchmark serves: ``fallback_app`` behind one middleware, files at /static/."""
    if candidate == "werkzeug":
        from werkzeug.middleware.shared_data import SharedDataMiddleware as WerkzeugSDM

        return WerkzeugSDM(fallback_app, {"/static": root})
    if candidate.startswith("whitenoise"):
        from whitenoise import WhiteNoise  # type: ignore[import-untyped]  # ships no py.typed

        autorefresh = candidate.endswith("autorefresh")
        app: Callable[..., Iterable[bytes]] = WhiteNoise(
            fallback_app, root=root, prefix="/static/", autorefresh=autorefresh
        )
        return app
    if candidate == "wsgidev":
        from wsgidev.middleware.shared_data import SharedDataMiddleware

        return SharedDataMiddleware(fallback_app, {"/static": root})
    raise ValueError(f"candidate must be one of {CANDIDATES}, got {candidate!r}")


def make_files(directory: Path, big: bool) -> None:
    (directory / SMALL).write_bytes((b"0123456789abcdef" * 128)[:2048])
    if big:
        with open(directory / BIG, "wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(50):
                out.write(block)


# ---------------------------------------------------------------- in process


def environ_for(path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.file_wrapper": FileWrapper,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def call(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any]
) -> tuple[str, dict[str, str], int]:
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))
        return None

    result = app(dict(environ), start_response)
    size = 0
    try:
        for chunk in result:
            size += len(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    status, headers = seen[0]
    return status, dict(headers), size


def scenarios(app: Callable[..., Iterable[bytes]]) -> dict[str, dict[str, Any]]:
    """The four requests, with the 304's validator taken from this middleware's own 200."""
    status, headers, size = call(app, environ_for(f"/static/{SMALL}"))
    assert status.startswith("200") and size == 2048, (status, size)
    revalidate = {"If-None-Match": headers["ETag"]} if "ETag" in headers else {}
    if "Last-Modified" in headers:
        revalidate["If-Modified-Since"] = headers["Last-Modified"]
    return {
        "2 KiB": environ_for(f"/static/{SMALL}"),
        "304": environ_for(f"/static/{SMALL}", revalidate),
        "Range": environ_for(f"/static/{SMALL}", {"Range": "bytes=100-1099"}),
        "fall-through": environ_for("/api/items"),
    }


def expected_status(name: str, candidate: str) -> tuple[str, ...]:
    # Werkzeug's middleware ignores Range and answers 200 with the whole file.
    return {"2 KiB": ("200",), "304": ("304",), "Range": ("206", "200"), "fall-through": ("200",)}[
        name
    ]


def _ignore_start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def time_one(app: Callable[..., Iterable[bytes]], environ: dict[str, Any], count: int) -> float:
    """Mean µs per call, as a server would make it: call, iterate the body, close it."""
    start = time.perf_counter_ns()
    for _ in range(count):
        result = app(environ, _ignore_start)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter_ns() - start) / count / 1000


def in_process(root: str, rounds: int, count: int) -> dict[str, dict[str, float]]:
    apps = {candidate: build(candidate, root) for candidate in CANDIDATES}
    cases = {candidate: scenarios(app) for candidate, app in apps.items()}
    for candidate, app in apps.items():
        for name, environ in cases[candidate].items():
            status = call(app, environ)[0]
            assert status[:3] in expected_status(name, candidate), (candidate, name, status)
    samples: dict[str, dict[str, list[float]]] = {
        c: {n: [] for n in cases["wsgidev"]} for c in (*CANDIDATES, "bare app")
    }
    bare = environ_for("/api/items")
    for _ in range(rounds):
        for name in cases["wsgidev"]:
            for candidate in CANDIDATES:
                samples[candidate][name].append(
                    time_one(apps[candidate], cases[candidate][name], count)
                )
            samples["bare app"][name].append(time_one(fallback_app, bare, count))
    return {
        c: {n: statistics.median(v) for n, v in by_name.items()} for c, by_name in samples.items()
    }


def print_in_process(medians: dict[str, dict[str, float]]) -> None:
    names = list(medians["wsgidev"])
    print("\nIn process, median µs per request (lower is better)")
    print(f"{'':24}" + "".join(f"{n:>14}" for n in names))
    for candidate in (*CANDIDATES, "bare app"):
        print(f"{candidate:24}" + "".join(f"{medians[candidate][n]:14.2f}" for n in names))
    for other in ("werkzeug", "whitenoise-autorefresh"):
        ratios = "".join(f"{medians['wsgidev'][n] / medians[other][n]:13.2f}x" for n in names)
        print(f"{'wsgidev / ' + other:24}{ratios}")
    # The fall-through is mostly the app itself; the middleware's own cost is the excess over it.
    bare = medians["bare app"]["fall-through"]
    over = {c: medians[c]["fall-through"] - bare for c in CANDIDATES}
    print("fall-through minus the bare app: " + ", ".join(f"{c} {v:.2f}" for c, v in over.items()))
    print(f"  wsgidev / werkzeug on that excess: {over['wsgidev'] / over['werkzeug']:.2f}x")


# ---------------------------------------------------------------- over the network


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(kind: str, candidate: str, root: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if kind == "gunicorn":
        target = f"bench.bench_static:build({candidate!r}, {root!r})"
        command = [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1"]
        command += ["-b", f"127.0.0.1:{port}", "--log-level", "warning", target]
    else:
        command = [
            sys.executable,
            "-m",
            "bench.bench_static",
            "--serve",
            kind,
            candidate,
            root,
            str(port),
        ]
    # Access logs would cost the servers time; stderr is kept to explain a failed start.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            ["taskset", "-c", "0", *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return proc
            except OSError:
                time.sleep(0.1)
        stop_server(proc)
        log.seek(0)
        tail = log.read()[-2000:].decode("utf-8", "replace")
    raise RuntimeError(
        f"{kind} server for {candidate} did not start (exit {proc.returncode}):\n{tail}"
    )


def start_with_retry(kind: str, candidate: str, root: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server on a free port, once more on another port if the first one was taken."""
    try:
        port = free_port()
        return start_server(kind, candidate, root, port), port
    except RuntimeError as error:
        print(f"retrying: {error}", file=sys.stderr)
        port = free_port()
        return start_server(kind, candidate, root, port), port


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def serve(kind: str, candidate: str, root: str, port: int) -> None:
    """Child process: serve build(candidate, root) with wsgidev's or Werkzeug's threaded server."""
    app = build(candidate, root)
    if kind == "wsgidev":
        from wsgidev._server.servers import make_server

        make_server("127.0.0.1", port, app, threaded=True).serve_forever()
    elif kind == "werkzeug":
        from werkzeug.serving import make_server as werkzeug_make_server

        werkzeug_make_server("127.0.0.1", port, app, threaded=True).serve_forever()
    else:
        raise ValueError(f"server kind must be wsgidev or werkzeug, got {kind!r}")


_SIZE = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def run_wrk(url: str, duration: float, connections: int, header: str | None) -> tuple[float, float]:
    """(requests/s, MB/s) from one wrk run pinned to CPU 1."""
    command = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        url,
    ]
    if header:
        command[5:5] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", output)
    if rps is None or transfer is None:
        raise RuntimeError(f"could not read wrk output:\n{output}")
    return float(rps.group(1)), float(transfer.group(1)) * _SIZE[transfer.group(2)] / 1e6


def etag_of(url: str) -> str | None:
    import requests

    response = requests.get(url, timeout=10)
    return response.headers.get("ETag")


Samples = dict[tuple[str, str], dict[str, list[float]]]
METRICS = ("2 KiB", "304", "50 MiB")


def network(root: str, rounds: int, duration: float, setups: list[tuple[str, str]]) -> Samples:
    """Per setup and metric, one sample per round, in round order (so rounds can be paired)."""
    samples: Samples = {s: {n: [] for n in METRICS} for s in setups}
    for _ in range(rounds):
        for kind, candidate in setups:
            proc, port = start_with_retry(kind, candidate, root)
            try:
                base = f"http://127.0.0.1:{port}/static/"
                etag = etag_of(base + SMALL)
                small = run_wrk(base + SMALL, duration, 8, None)[0]
                header = f"If-None-Match: {etag}" if etag else None
                not_modified = run_wrk(base + SMALL, duration, 8, header)[0]
                big = run_wrk(base + BIG, duration, 2, None)[1]
            finally:
                stop_server(proc)
            samples[(kind, candidate)]["2 KiB"].append(small)
            samples[(kind, candidate)]["304"].append(not_modified)
            samples[(kind, candidate)]["50 MiB"].append(big)
    return samples


def print_network(samples: Samples) -> None:
    print("\nOver the network, medians over rounds (higher is better)")
    print(f"{'server / middleware':40}{'2 KiB req/s':>14}{'304 req/s':>14}{'50 MiB MB/s':>14}")
    for (kind, candidate), values in samples.items():
        medians = "".join(f"{statistics.median(values[n]):14.0f}" for n in METRICS)
        print(f"{kind + ' / ' + candidate:40}{medians}")
    print("Ratios: median of the ratios paired within each round (lowest-highest)")
    pairs = [
        ("wsgidev/wsgidev vs werkzeug/werkzeug", ("wsgidev", "wsgidev"), ("werkzeug", "werkzeug")),
        ("gunicorn: wsgidev vs werkzeug", ("gunicorn", "wsgidev"), ("gunicorn", "werkzeug")),
        ("gunicorn: wsgidev vs whitenoise", ("gunicorn", "wsgidev"), ("gunicorn", "whitenoise")),
    ]
    for label, ours, theirs in pairs:
        if ours not in samples or theirs not in samples:
            continue
        cells = ""
        for n in METRICS:
            ratios = [a / b for a, b in zip(samples[ours][n], samples[theirs][n], strict=True)]
            cells += f"{statistics.median(ratios):6.2f}x ({min(ratios):.1f}-{max(ratios):.1f})"
        print(f"{label:40}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds over the network")
    # Many short in-process samples: on a shared machine a median of many resists the
    # scheduler's interruptions better than a few long samples.
    parser.add_argument(
        "--in-process-rounds", type=int, default=31, help="interleaved rounds in process"
    )
    parser.add_argument("--count", type=int, default=1000, help="requests per in-process sample")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--in-process", action="store_true", help="skip the network part")
    parser.add_argument("--network", action="store_true", help="skip the in-process part")
    parser.add_argument(
        "--servers",
        default="gunicorn,wsgidev,werkzeug",
        help="comma-separated servers for the network part (gunicorn runs every middleware)",
    )
    parser.add_argument(
        "--serve", nargs=4, metavar=("KIND", "CANDIDATE", "ROOT", "PORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        kind, candidate, root, port = args.serve
        serve(kind, candidate, root, int(port))
        return
    directory = Path(tempfile.mkdtemp(prefix="bench-static-"))
    try:
        make_files(directory, big=not args.in_process)
        if not args.network:
            print_in_process(in_process(str(directory), args.in_process_rounds, args.count))
        if not args.in_process:
            if shutil.which("wrk") is None or shutil.which("taskset") is None:
                sys.exit("the network part needs wrk and taskset (apt-get install wrk util-linux)")
            servers = args.servers.split(",")
            # The two dev servers first and side by side, so their pairing is tightest.
            setups = [(s, s) for s in ("wsgidev", "werkzeug") if s in servers]
            setups += [("gunicorn", c) for c in CANDIDATES if "gunicorn" in servers]
            print_network(network(str(directory), args.rounds, args.duration, setups))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
