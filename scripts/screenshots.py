"""Regenerate the README's screenshots: the traceback page, a console in one of its frames, and
the live-reload overlay over a page whose ``fetch()`` failed.

Writes a small Flask shop with a bug into a temporary project folder, serves it with
``wsgidev run shop:app --debug`` on a free port of 127.0.0.1 with a known PIN, drives headless
Chromium through Playwright, and writes ``docs/traceback.png``, ``docs/console.png``, and the
pair ``docs/live-off.png`` (a failed ``fetch()`` under ``--no-live``) and
``docs/live-overlay.png`` (the same with live reload on).

    python scripts/screenshots.py [--out docs] [--chromium /usr/bin/chromium]

Needs the ``test`` extra (Playwright) and Debian's ``chromium`` (``apt-get install -y chromium``);
Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty, Queue

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
PIN = "246-813-579"
ERROR_ROUTE = "/checkout"
# The app in the pictures: Flask's frames fold away as library frames, the shop's stay open,
# and the secret-looking local is masked.
SHOP_APP = """\
from flask import Flask, render_template

app = Flask(__name__)
app.config["PROPAGATE_EXCEPTIONS"] = True  # let errors reach wsgidev's debugger

PRICES = {"apple": 0.5, "bread": 2.25}
PAYMENT_TOKEN = "sk-live-51HtXq"


def line_total(item, quantity):
    return PRICES[item] * quantity


def order_total(cart):
    api_token = PAYMENT_TOKEN  # a secret-looking name: masked on the page
    return sum(line_total(item, quantity) for item, quantity in cart.items())


@app.get("/checkout")
def checkout():
    cart = {"apple": 3, "pear": 1}
    return {"total": order_total(cart)}


@app.get("/")
def shop():
    return render_template("shop.html")
"""
SHOP_PAGE = """\
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>My shop</title>
  <link rel="stylesheet" href="/static/shop.css">
  <script src="/static/shop.js" defer></script>
</head>
<body>
  <h1>My shop</h1>
  <p>3 apples, 1 pear.</p>
  <button id="checkout">Check out</button>
  <p id="total">Total: not computed yet</p>
</body>
</html>
"""
SHOP_SCRIPT = """\
document.querySelector("#checkout").addEventListener("click", async () => {
  const response = await fetch("/checkout");
  if (response.ok) {
    document.querySelector("#total").textContent = "Total: " + (await response.json()).total;
  }
});
"""
SHOP_STYLE = "body { font-family: sans-serif; margin: 2rem 3rem; }\n"
RUNNING_ON = re.compile(r" \* Running on (http://127\.0\.0\.1:\d+)")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What a developer types into the console of the frame that raised.
CONSOLE_SESSION = [
    "item, quantity",
    "PRICES",
    "def price_of(name):",
    "    return PRICES.get(name, 0.0)",
    "",
    "price_of(item) * quantity",
]


@contextmanager
def shop_server(*extra: str, startup_timeout: float = 30.0) -> Iterator[str]:
    """Serve the shop with the debugger; yield its URL; stop it (Ctrl+C, then kill)."""
    # A stable, ordinary-looking project path: it is printed on the page.
    project = Path(tempfile.gettempdir()) / "myshop"
    project.mkdir(exist_ok=True)
    (project / "shop.py").write_text(SHOP_APP, encoding="utf-8")
    for folder, name, text in (
        ("templates", "shop.html", SHOP_PAGE),
        ("static", "shop.js", SHOP_SCRIPT),
        ("static", "shop.css", SHOP_STYLE),
    ):
        (project / folder).mkdir(exist_ok=True)
        (project / folder / name).write_text(text, encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "WSGIDEV_DEBUG_PIN": PIN}
    command = [sys.executable, "-m", "wsgidev", "run", "shop:app", "--debug", *extra]
    proc = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", "0"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: Queue[str] = Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield _wait_for_url(proc, lines, startup_timeout)
    finally:
        proc.send_signal(2)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        reader.join(5)
        stdout.close()


def _wait_for_url(proc: subprocess.Popen[str], lines: Queue[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = RUNNING_ON.search(line)
        if match:
            return match[1]
    raise SystemExit("the shop app did not start:\n" + "".join(seen))


@contextmanager
def browser(chromium: str, width: int, height: int) -> Iterator[BrowserContext]:
    """Headless Chromium with a throwaway profile, so it neither reads nor writes the user's."""
    profile = tempfile.mkdtemp(prefix="wsgidev-screenshots-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": width, "height": height},
                device_scale_factor=1,
                color_scheme="light",
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def watch_for_errors(page: Page) -> list[str]:
    """Collect script errors and CSP violations; the screenshots must not hide a broken page."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # The error route itself answers 500 on purpose; Chromium logs that as a failed load.
        if message.type == "error" and not message.location.get("url", "").endswith(ERROR_ROUTE):
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("pageerror", lambda error: errors.append(f"script error: {error}"))
    page.on("console", on_console)
    return errors


def shoot_traceback(page: Page, url: str, out: Path) -> None:
    page.goto(url + ERROR_ROUTE, wait_until="networkidle")
    page.wait_for_selector("[data-frame-id]", state="attached")
    # Open the locals of the frame that holds a secret-looking name, to show it masked.
    frame = page.locator("[data-frame-id]:visible").filter(
        has=page.locator("code", has_text=re.compile(r"^order_total$"))
    )
    frame.locator("details.locals > summary").click()
    page.screenshot(path=str(out))


def shoot_console(page: Page, out: Path, width: int) -> None:
    frame = page.locator("[data-frame-id]:visible").last
    frame.locator(".console-toggle").first.click()
    pin = page.locator(".console-pin-input")
    pin.wait_for(timeout=10_000)
    pin.fill(PIN)
    page.locator(".console-pin-submit").click()
    prompt = frame.locator(".console-input")
    prompt.wait_for(state="visible", timeout=10_000)
    for number, line in enumerate(CONSOLE_SESSION, start=1):
        prompt.fill(line)
        prompt.press("Enter")
        # Each command echoes one line; wait for this one before typing the next.
        page.wait_for_function(
            "([root, n]) => root.querySelectorAll('.console-echo').length >= n && !root.querySelector('.wsgidev-console.busy')",
            arg=[frame.element_handle(), number],
            timeout=10_000,
        )
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    if box is None:
        raise SystemExit("the frame with the console is not visible")
    top = max(box["y"] - 40, 0)
    page.screenshot(
        path=str(out),
        clip={
            "x": 0,
            "y": top,
            "width": width,
            "height": min(box["height"] + 80, 900),
        },
    )


def shoot_overlay(page: Page, url: str, out: Path) -> None:
    """The shop's page after its Check out button's fetch() failed: the overlay shows why."""
    with page.expect_console_message(lambda m: "live reload connected" in m.text):
        page.goto(url + "/")
    page.click("#checkout")
    page.locator("wsgidev-overlay .entry").first.wait_for(timeout=10_000)
    page.screenshot(path=str(out))


def shoot_without_overlay(page: Page, url: str, out: Path) -> None:
    """The same click under ``--no-live``: the error only reaches the network tab."""
    page.goto(url + "/")
    with page.expect_response(lambda response: response.url.endswith(ERROR_ROUTE)):
        page.click("#checkout")
    page.wait_for_timeout(500)  # what the page would show by now, it shows
    page.screenshot(path=str(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs", help="folder for the PNG files (default: docs/)"
    )
    parser.add_argument(
        "--chromium", default="/usr/bin/chromium", help="the Chromium binary (default: %(default)s)"
    )
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit(
            f"no Chromium at {args.chromium}; install it with: apt-get install -y chromium"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    with shop_server() as url, browser(args.chromium, args.width, args.height) as context:
        page = context.new_page()
        errors = watch_for_errors(page)
        shoot_traceback(page, url, args.out / "traceback.png")
        shoot_console(page, args.out / "console.png", args.width)
        page = context.new_page()
        errors += watch_for_errors(page)
        shoot_overlay(page, url, args.out / "live-overlay.png")
    with shop_server("--no-live") as url, browser(args.chromium, args.width, 600) as context:
        page = context.new_page()
        errors += watch_for_errors(page)
        shoot_without_overlay(page, url, args.out / "live-off.png")
    if errors:
        print("the page reported errors:\n" + "\n".join(errors), file=sys.stderr)
        return 1
    for name in ("traceback.png", "console.png", "live-overlay.png", "live-off.png"):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
