"""The wheel a user installs works on its own: built from the sdist, installed outside the checkout.

Builds the sdist and the wheel with ``python -m build``, checks what they hold and their metadata
(``twine check``), installs the wheel into a fresh virtualenv, then serves an app from there with
``wsgidev run`` and loads the traceback page and every asset it references: proof that
``templates/`` and ``static/`` ship inside the wheel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself needs tomli before 3.11, so it is there
    import tomli as tomllib

from tests.conftest import ROOT, LiveServer, start_server_process
from tests.integration._pages import BROWSER_HEADERS, assert_traceback_page, fetch_assets

pytestmark = pytest.mark.slow

VERSION = re.search(
    r'^__version__ = "([^"]+)"', (ROOT / "wsgidev" / "_version.py").read_text(), re.M
)
RUNTIME_DEPENDENCIES = {"pygments", "markupsafe"}


@dataclass(frozen=True, slots=True)
class Dist:
    wheel: Path
    sdist: Path


@dataclass(frozen=True, slots=True)
class FreshEnv:
    root: Path
    python: Path
    wsgidev: Path


def _run(
    command: list[str], cwd: Path | None = None, timeout: float = 170
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return Dist(wheels[0], sdists[0])


@pytest.fixture(scope="module")
def fresh_env(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> FreshEnv:
    """A new virtualenv outside the checkout with only the wheel and its runtime dependencies."""
    root = tmp_path_factory.mktemp("fresh") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)])
    python = root / "bin" / "python"
    # The wheel by path; its dependencies (pygments, markupsafe) from the package index.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--disable-pip-version-check",
            str(dist.wheel),
        ]
    )
    return FreshEnv(root, python, root / "bin" / "wsgidev")


def _shipped_assets(folder: str) -> set[str]:
    base = ROOT / folder
    return {
        path.relative_to(base).as_posix()
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_version_comes_from_one_place(dist: Dist) -> None:
    assert VERSION, "wsgidev/_version.py has no __version__"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["version"] == {
        "path": "wsgidev/_version.py"
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert dist.wheel.name.startswith(f"wsgidev-{VERSION[1]}-")
    assert dist.sdist.name == f"wsgidev-{VERSION[1]}.tar.gz"
    with zipfile.ZipFile(dist.wheel) as wheel:
        metadata = wheel.read(f"wsgidev-{VERSION[1]}.dist-info/METADATA").decode()
    assert f"\nVersion: {VERSION[1]}\n" in metadata


def test_wheel_ships_templates_static_and_typing_marker(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
    templates, static = _shipped_assets("templates"), _shipped_assets("static")
    assert templates, "templates/ is empty in the checkout"
    assert static, "static/ is empty in the checkout"
    assert {f"wsgidev/templates/{name}" for name in templates} <= names
    assert {f"wsgidev/static/{name}" for name in static} <= names
    assert "wsgidev/py.typed" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in names if name.startswith(("tests/", "bench/"))]


def test_wheel_metadata_entry_point_and_runtime_dependencies(dist: Dist) -> None:
    assert VERSION
    with zipfile.ZipFile(dist.wheel) as wheel:
        info = f"wsgidev-{VERSION[1]}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert re.search(r"^wsgidev = wsgidev\.cli:main$", entry_points, re.M), entry_points
    runtime = {
        re.split(r"[\s<>=!~;\[]", line.removeprefix("Requires-Dist: "), maxsplit=1)[0].lower()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    }
    assert runtime == RUNTIME_DEPENDENCIES
    assert "Description-Content-Type: text/markdown" in metadata
    # A license a user can read, and no placeholder address.
    assert "\nLicense-Expression: BSD-3-Clause\n" in metadata
    assert "\nLicense-File: LICENSE\n" in metadata
    assert "example.invalid" not in metadata
    with zipfile.ZipFile(dist.wheel) as wheel:
        license_text = wheel.read(f"{info}/licenses/LICENSE").decode()
    assert "BSD 3-Clause License" in license_text


def test_sdist_holds_what_the_wheel_is_built_from(dist: Dist) -> None:
    assert VERSION
    with tarfile.open(dist.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for name in ("pyproject.toml", "README.md", "wsgidev/__init__.py", "wsgidev/py.typed"):
        assert name in names
    assert {f"templates/{name}" for name in _shipped_assets("templates")} <= names
    assert {f"static/{name}" for name in _shipped_assets("static")} <= names


def test_twine_check_passes(dist: Dist) -> None:
    result = _run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist.wheel), str(dist.sdist)]
    )
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_installed_wheel_runs_from_outside_the_checkout(fresh_env: FreshEnv) -> None:
    assert VERSION
    where = _run(
        [
            str(fresh_env.python),
            "-c",
            "import wsgidev, wsgidev._resources as r; print(wsgidev.__file__); print(r.asset_dir('static')); print(r.asset_dir('templates'))",
        ],
        cwd=fresh_env.root,
    )
    for line in where.stdout.splitlines():
        assert Path(line).resolve().is_relative_to(fresh_env.root.resolve()), where.stdout
    version = _run([str(fresh_env.wsgidev), "--version"], cwd=fresh_env.root)
    assert version.stdout.strip() == f"wsgidev {VERSION[1]}"


CRASHING_APP = """
def lookup_price(sku):
    prices = {"tea": 3}
    return prices[sku]


def app(environ, start_response):
    if environ["PATH_INFO"] == "/ok":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    lookup_price("coffee")
"""


def _start(command: list[str], cwd: Path, env_root: Path) -> LiveServer:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env.update(
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        PATH=f"{env_root / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    ready = r" \* Running on (?P<url>http://127\.0\.0\.1:\d+)"
    return start_server_process(command, ready, env, cwd, timeout=30)


@pytest.fixture
def served(fresh_env: FreshEnv, tmp_path: Path) -> Iterator[LiveServer]:
    (tmp_path / "shop.py").write_text(CRASHING_APP)
    server = _start(
        [str(fresh_env.wsgidev), "run", "shop:app", "--port", "0", "--debug"],
        tmp_path,
        fresh_env.root,
    )
    try:
        yield server
    finally:
        server.stop()
        print(f"--- log of wsgidev run ---\n{server.log}")


def test_wsgidev_run_serves_the_traceback_page_and_every_asset(served: LiveServer) -> None:
    with requests.Session() as session:
        assert session.get(served.url + "/ok", timeout=10).text == "ok"
        page = session.get(served.url + "/checkout", headers=BROWSER_HEADERS, timeout=10)
        html = assert_traceback_page(page, "KeyError", "lookup_price", "shop.py")
        assets = fetch_assets(session, page.url, html)
    names = {url.rsplit("f=", 1)[-1] for url in assets}
    assert any(name.endswith(".css") for name in names), names
    assert any(name.endswith(".js") for name in names), names


def test_wsgidev_demo_from_the_wheel(fresh_env: FreshEnv, tmp_path: Path) -> None:
    server = _start([str(fresh_env.wsgidev), "demo", "--port", "0"], tmp_path, fresh_env.root)
    try:
        with requests.Session() as session:
            index = session.get(server.url + "/", headers=BROWSER_HEADERS, timeout=10)
            assert index.status_code == 200
            for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', index.text):
                assert session.get(server.url + asset, timeout=10).status_code == 200, asset
            page = session.get(server.url + "/error", headers=BROWSER_HEADERS, timeout=10)
            fetch_assets(session, page.url, assert_traceback_page(page))
    finally:
        server.stop()


def test_an_app_that_has_not_failed_starts_without_the_error_page_machinery() -> None:
    """The traceback model, its rendering and the console are imported on the first error."""
    probe = (
        "import sys\n"
        "from wsgidev import DebuggedApplication\n"
        "DebuggedApplication(lambda e, s: [], evalex=True, pin_logging=False)\n"
        "lazy = ['wsgidev.debug.model', 'wsgidev.debug.render', 'wsgidev.debug.commands',\n"
        "        'wsgidev.debug.console', 'pygments']\n"
        "print(sorted(name for name in lazy if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
