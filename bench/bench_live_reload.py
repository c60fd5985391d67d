"""Live reload: from a save to the open page showing it, in headless Chromium.

    python bench/bench_live_reload.py               # 7 rounds of each kind of save
    python bench/bench_live_reload.py --rounds 11 --reloader-type stat

One Flask project in a temporary folder, served by ``wsgidev run app:app --debug --static
/assets=assets``. Each round saves, in turn, the Python module (the reloader restarts the app
and the page reloads), the Jinja template (the page reloads, no restart) and the stylesheet
(swapped in place), and measures from just before the write until the page shows the change:
new text for the first two, a new computed colour for the third. Needs the ``test`` extra
(Playwright) and Debian's ``chromium``. Medians and ranges are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

APP = """\
from flask import Flask, render_template

app = Flask(__name__)


@app.get("/")
def index():
    return render_template("index.html", code="code-{n}")
"""
TEMPLATE = """\
<!doctype html>
<html><head><link rel="stylesheet" href="/assets/site.css"></head>
<body><h1 id="title">{{{{ code }}}} template-{n}</h1></body></html>
"""
CSS = "h1 {{ color: rgb({n}, 0, 0); }}\n"
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def start_server(project: Path, reloader_type: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "wsgidev", "run", "app:app", "--debug", "--port", "0"]
    command += ["--static", "/assets=assets", "--reloader-type", reloader_type]
    proc = subprocess.Popen(
        command,
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"Running on (http://\S+)", line)
        if found:
            return proc, found.group(1)
    raise RuntimeError("the server did not start")


def measure(page: Page, path: Path, text: str, condition: str) -> float:
    started = time.perf_counter()
    path.write_text(text)
    page.wait_for_function(condition, timeout=10_000, polling="raf")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reloader-type", default="auto")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"Python module": [], "Jinja template": [], "stylesheet": []}
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "templates").mkdir()
        (project / "assets").mkdir()
        (project / "app.py").write_text(APP.format(n=0))
        (project / "templates" / "index.html").write_text(TEMPLATE.format(n=0))
        (project / "assets" / "site.css").write_text(CSS.format(n=0))
        proc, url = start_server(project, args.reloader_type)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page()
                with page.expect_console_message(lambda m: "live reload connected" in m.text):
                    page.goto(url + "/")
                for n in range(1, args.rounds + 1):
                    title = "document.querySelector('#title')?.textContent"
                    results["Python module"].append(
                        measure(
                            page,
                            project / "app.py",
                            APP.format(n=n),
                            f"{title}?.startsWith('code-{n} ')",
                        )
                    )
                    time.sleep(0.5)  # the restarted server settles (its watch starts)
                    results["Jinja template"].append(
                        measure(
                            page,
                            project / "templates" / "index.html",
                            TEMPLATE.format(n=n),
                            f"{title}?.endsWith('template-{n}')",
                        )
                    )
                    time.sleep(0.3)
                    color = "getComputedStyle(document.querySelector('#title')).color"
                    results["stylesheet"].append(
                        measure(
                            page,
                            project / "assets" / "site.css",
                            CSS.format(n=n),
                            f"{color} === 'rgb({n}, 0, 0)'",
                        )
                    )
                    time.sleep(0.3)
                browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(10)
    print(f"Save to page updated, {args.rounds} rounds, reloader {args.reloader_type}:\n")
    print("| saved file | median | min | max |")
    print("|---|---:|---:|---:|")
    for name, times in results.items():
        print(
            f"| {name} | {statistics.median(times) * 1000:.0f} ms | {min(times) * 1000:.0f} ms "
            f"| {max(times) * 1000:.0f} ms |"
        )


if __name__ == "__main__":
    main()
