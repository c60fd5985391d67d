"""What the reloader watches, and how each watcher backend notices a change.

In process, on a temporary project: every backend must report an edit, a new or deleted .py,
files named by ``extra_files`` (directly, as a directory, as a glob), and must ignore excluded
files, editor noise and what happens inside ``node_modules``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wsgidev._reload.watch.paths import glob_to_regex, is_library_path, is_noise
from wsgidev._reload.watch.scope import (
    WatcherName,
    WatchOptions,
    WatchScope,
    available_watchers,
    make_watcher,
    resolve_watcher_name,
)

BACKENDS: list[WatcherName] = ["stat", "watchfiles", "watchdog"]
# How long a backend may take to report a change, and how long we wait to be sure it does not.
REPORT_WITHIN = 5.0
QUIET_FOR = 0.6


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project: a package, a script directory, templates and a node_modules tree."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "views.py").write_text("VERSION = 1\n")
    (tmp_path / "templates" / "sub").mkdir(parents=True)
    (tmp_path / "templates" / "sub" / "page.html").write_text("<p>1</p>")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.toml").write_text("a = 1\n")
    (tmp_path / "node_modules" / "dep").mkdir(parents=True)
    (tmp_path / "node_modules" / "dep" / "index.js").write_text("1")
    (tmp_path / "local_settings.py").write_text("X = 1\n")
    return tmp_path


class _Module:
    def __init__(self, path: Path) -> None:
        self.__file__ = str(path)


def _scope(
    project: Path, extra_files: tuple[str, ...] = (), exclude_patterns: tuple[str, ...] = ()
) -> WatchScope:
    """The scope of a program that imported pkg.views (not this test process's modules)."""
    options = WatchOptions(
        extra_files=extra_files,
        exclude_patterns=exclude_patterns,
        interval=0.05,
        project_dirs=(str(project),),
    )
    return WatchScope(options, modules={"pkg.views": _Module(project / "pkg" / "views.py")})


class Running:
    """A backend waiting for a change in a thread, as the reloaded child runs it."""

    def __init__(self, name: WatcherName, scope: WatchScope) -> None:
        self.watcher = make_watcher(name, scope)
        self.stop = threading.Event()
        self.result: list[str | None] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        time.sleep(0.3)  # let event backends register their watches

    def _run(self) -> None:
        self.result.append(self.watcher.wait_for_change(self.stop))

    def changed(self, timeout: float) -> str | None:
        self.thread.join(timeout)
        return self.result[0] if self.result else None

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.watcher.close()
        assert not self.thread.is_alive()


@pytest.fixture(params=BACKENDS)
def watch(request: pytest.FixtureRequest) -> Iterator[Callable[[WatchScope], Running]]:
    name: WatcherName = request.param
    if name not in available_watchers():
        pytest.skip(f"{name} is not installed (pip install 'wsgidev[watch]')")
    started: list[Running] = []

    def start(scope: WatchScope) -> Running:
        running = Running(name, scope)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


def _touch(path: Path, text: str) -> None:
    path.write_text(text)
    # Some file systems keep mtimes in whole seconds; make the change visible to stat.
    later = time.time() + 2
    os.utime(path, (later, later))


def test_an_edited_python_file_is_reported(
    project: Path, watch: Callable[[WatchScope], Running]
) -> None:
    running = watch(_scope(project))
    _touch(project / "pkg" / "views.py", "VERSION = 2\n")
    assert running.changed(REPORT_WITHIN) == str(project / "pkg" / "views.py")


def test_a_new_python_file_in_the_project_is_reported(
    project: Path, watch: Callable[[WatchScope], Running]
) -> None:
    running = watch(_scope(project))
    _touch(project / "pkg" / "models.py", "X = 1\n")
    assert running.changed(REPORT_WITHIN) == str(project / "pkg" / "models.py")


def test_a_new_python_file_in_a_new_directory_is_reported(
    project: Path, watch: Callable[[WatchScope], Running]
) -> None:
    running = watch(_scope(project))
    (project / "pkg" / "api").mkdir()
    time.sleep(0.3)  # event backends add the new directory's watch
    _touch(project / "pkg" / "api" / "routes.py", "X = 1\n")
    assert running.changed(REPORT_WITHIN) == str(project / "pkg" / "api" / "routes.py")


def test_a_deleted_python_file_is_reported(
    project: Path, watch: Callable[[WatchScope], Running]
) -> None:
    running = watch(_scope(project))
    (project / "local_settings.py").unlink()
    assert running.changed(REPORT_WITHIN) == str(project / "local_settings.py")


@pytest.mark.parametrize(
    ("extra", "changed"),
    [
        ("config/settings.toml", "config/settings.toml"),
        ("templates", "templates/sub/page.html"),
        ("templates/**/*.html", "templates/sub/page.html"),
    ],
    ids=["file", "directory", "glob"],
)
def test_extra_files_are_watched(
    project: Path, watch: Callable[[WatchScope], Running], extra: str, changed: str
) -> None:
    running = watch(_scope(project, extra_files=(str(project / extra),)))
    _touch(project / changed, "changed")
    assert running.changed(REPORT_WITHIN) == str(project / changed)


def test_a_file_outside_extra_files_is_not_watched(
    project: Path, watch: Callable[[WatchScope], Running]
) -> None:
    running = watch(_scope(project))
    _touch(project / "templates" / "sub" / "page.html", "changed")
    _touch(project / "config" / "settings.toml", "b = 2\n")
    assert running.changed(QUIET_FOR) is None


def test_excluded_files_editor_noise_and_node_modules_are_ignored(
    project: Path, watch: Callable[[WatchScope], Running]
) -> None:
    running = watch(_scope(project, exclude_patterns=("*/local_settings.py",)))
    _touch(project / "local_settings.py", "X = 2\n")
    _touch(project / "pkg" / ".views.py.swp", "x")
    _touch(project / "pkg" / "views.py~", "x")
    _touch(project / "pkg" / "4913", "x")
    (project / "pkg" / "__pycache__").mkdir()
    _touch(project / "pkg" / "__pycache__" / "views.cpython-311.pyc", "x")
    _touch(project / "node_modules" / "dep" / "setup.py", "x")
    assert running.changed(QUIET_FOR) is None
    _touch(project / "pkg" / "views.py", "VERSION = 3\n")
    assert running.changed(REPORT_WITHIN) == str(project / "pkg" / "views.py")


def test_a_module_imported_after_the_start_is_watched(
    tmp_path: Path, watch: Callable[[WatchScope], Running]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "late.py").write_text("X = 1\n")
    modules: dict[str, object] = {}
    running = watch(WatchScope(WatchOptions(interval=0.05), modules=modules))
    modules["late"] = _Module(outside / "late.py")  # what an import does to sys.modules
    time.sleep(1.5)  # event backends look for new modules once a second
    _touch(outside / "late.py", "X = 2\n")
    assert running.changed(REPORT_WITHIN) == str(outside / "late.py")


@pytest.mark.parametrize("name", ["watchfiles", "watchdog"])
def test_a_file_written_all_the_time_does_not_hold_back_a_change(
    project: Path, name: WatcherName
) -> None:
    if name not in available_watchers():
        pytest.skip(f"{name} is not installed (pip install 'wsgidev[watch]')")
    running = Running(name, _scope(project))
    stop = threading.Event()

    def churn() -> None:  # a request log or a SQLite database inside the project
        with open(project / "app.log", "a") as log:
            for _ in range(1000):
                if stop.wait(0.005):
                    return
                log.write("GET / 200\n")
                log.flush()

    writer = threading.Thread(target=churn)
    writer.start()
    try:
        time.sleep(0.2)
        started = time.monotonic()
        (project / "pkg" / "views.py").write_text("VERSION = 7\n")
        assert running.changed(REPORT_WITHIN) == str(project / "pkg" / "views.py")
        assert time.monotonic() - started < 0.8
    finally:
        stop.set()
        writer.join(10)
        running.close()


def test_stat_polls_a_recently_saved_file_faster_than_its_interval(project: Path) -> None:
    options = WatchOptions(interval=30, project_dirs=(str(project),))
    running = Running("stat", WatchScope(options, modules={}))
    try:
        (project / "pkg" / "views.py").write_text("VERSION = 22\n")
        assert running.changed(2.0) == str(project / "pkg" / "views.py")
    finally:
        running.close()


def _untouched_for_a_day(path: Path) -> None:
    day_ago = time.time() - 86_400
    os.utime(path, (day_ago, day_ago))


def test_stat_ticks_as_often_as_a_cheap_project_allows_under_the_default_interval(
    project: Path,
) -> None:
    """A small project's tick costs microseconds, so a file nobody saved for a day is looked at
    every quarter of a second, not once per default interval."""
    views = project / "pkg" / "views.py"
    _untouched_for_a_day(views)
    options = WatchOptions(interval=1.0, project_dirs=(str(project),))
    scope = WatchScope(options, modules={})
    watcher = make_watcher("stat", scope)
    # 0.25 s unless this machine is so loaded that one tick of ten files took over 1.5 ms.
    assert watcher.period < 0.5  # type: ignore[attr-defined]
    watcher.close()
    running = Running("stat", scope)
    try:
        views.write_text("VERSION = 3\n")
        assert running.changed(2.0) == str(views)
    finally:
        running.close()


def test_stat_keeps_a_longer_interval_as_asked(project: Path) -> None:
    options = WatchOptions(interval=5.0, project_dirs=(str(project),))
    watcher = make_watcher("stat", WatchScope(options, modules={}))
    try:
        assert watcher.period == 5.0  # type: ignore[attr-defined]
    finally:
        watcher.close()


def test_stat_spaces_expensive_ticks_to_stay_within_its_cpu_budget(project: Path) -> None:
    from wsgidev._reload.watch.stat import CPU_BUDGET, StatWatcher

    watcher = StatWatcher(WatchScope(WatchOptions(interval=1.0), modules={}))
    for _ in range(30):
        watcher._learn_cost(0.004)  # 1,000 modules on this machine
    assert watcher.period == pytest.approx(0.004 / CPU_BUDGET, rel=0.01)
    for _ in range(30):
        watcher._learn_cost(0.02)  # a slow network mount: the interval is the bound
    assert watcher.period == 1.0


def test_watchdog_needs_few_emitters_for_a_big_tree(project: Path) -> None:
    if "watchdog" not in available_watchers():
        pytest.skip("watchdog is not installed (pip install 'wsgidev[watch]')")
    for i in range(40):
        (project / "pkg" / f"sub{i}").mkdir()
        (project / "node_modules" / f"dep{i}" / "lib").mkdir(parents=True)
    watcher = make_watcher("watchdog", _scope(project))
    try:
        # One per project directory level around node_modules, none for each subdirectory:
        # watchdog spends an inotify instance (128 per user) on every scheduled path.
        assert len(watcher._observer.emitters) <= 6  # type: ignore[attr-defined]
    finally:
        watcher.close()


def test_scope_skips_the_standard_library_and_site_packages() -> None:
    scope = WatchScope(WatchOptions(), modules=dict(sys.modules))
    assert os.path.abspath(os.__file__) not in scope.module_files
    assert os.path.abspath(pytest.__file__) not in scope.module_files
    assert is_library_path(os.path.abspath(os.__file__))
    assert is_library_path(os.path.abspath(pytest.__file__))
    assert __file__ in scope.module_files  # this test module lives in the project


@pytest.mark.parametrize(
    "name", ["views.py~", ".views.py.swp", "4913", "views.pyc", "#views.py#", ".#views.py"]
)
def test_editor_noise(name: str) -> None:
    assert is_noise(os.path.join(os.sep, "p", name))
    assert not is_noise(os.path.join(os.sep, "p", "views.py"))


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/p/templates/**/*.html", "/p/templates/a.html", True),
        ("/p/templates/**/*.html", "/p/templates/a/b/c.html", True),
        ("/p/templates/*.html", "/p/templates/a/b.html", False),
        ("/p/t?.txt", "/p/t1.txt", True),
        ("/p/[!a]*.py", "/p/a.py", False),
        ("/p/[!a]*.py", "/p/b.py", True),
    ],
)
def test_glob_patterns(pattern: str, path: str, matches: bool) -> None:
    if os.sep != "/":
        pytest.skip("POSIX paths")
    assert bool(glob_to_regex(pattern).match(path)) is matches


def test_the_reloader_type_variable_overrides_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSGIDEV_RELOADER_TYPE", "stat")
    assert resolve_watcher_name("auto") == "stat"
    monkeypatch.setenv("WSGIDEV_RELOADER_TYPE", "inotify")
    with pytest.raises(ValueError, match="WSGIDEV_RELOADER_TYPE must be one of"):
        resolve_watcher_name("auto")
    monkeypatch.delenv("WSGIDEV_RELOADER_TYPE")
    assert resolve_watcher_name("auto") == available_watchers()[0]
    with pytest.raises(ValueError, match="reloader_type must be one of"):
        resolve_watcher_name("poll")
