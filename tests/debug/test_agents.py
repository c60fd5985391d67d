"""Errors for editors and coding agents, over a live server: Markdown, the error list, MCP."""

from __future__ import annotations

import http.client
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer

MCP = "/__wsgidev__/mcp"
MARKDOWN = {"Accept": "text/markdown"}


@pytest.fixture
def server(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "WSGIDEV_DEBUG_PIN": "off"}
    return live_server("agent_errors", "--debugger", "--threaded", env=env)


def request(
    server: LiveServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        conn.request(method, path, body, {"Host": f"127.0.0.1:{server.port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


# -- Markdown ------------------------------------------------------------------------------------


def test_a_chain_as_markdown(server: LiveServer) -> None:
    status, headers, body = request(server, "GET", "/chain", headers=MARKDOWN)
    text = body.decode()
    assert status == 500 and headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert text.startswith("# `ValueError`\n")
    assert f"Request: `GET http://127.0.0.1:{server.port}/chain`" in text
    headings = re.findall(r"^(#+ .*)$", text, re.M)
    assert headings.index("### `KeyError`") < headings.index("### `ValueError`")  # oldest first
    assert "*The above exception was the direct cause of the following exception:*" in text
    # The raising line is marked inside fenced Python source.
    assert re.search(r"```python\n(?:.*\n)*> +\d+ \| +return data\[key\]\n", text)
    # Backticks the app wrote never close a fence: a run of three gets a longer fence.
    assert "```text\ncould not load ``b`` for the `report`\n```" in text
    assert re.search(r"````+python\n(?:.*\n)*.*template = \"```python", text)
    assert "## Locals of `app`" in text and "environ" in text
    assert f"Interactive traceback: <http://127.0.0.1:{server.port}/?__debugger__=yes&tb=" in text


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is new in 3.11")
def test_a_group_as_markdown(server: LiveServer) -> None:
    text = request(server, "GET", "/group", headers=MARKDOWN)[2].decode()
    assert text.startswith("# `ExceptionGroup`")
    assert "#### Sub-exception 1 of 2" in text and "#### Sub-exception 2 of 2" in text
    assert "`ValueError`" in text and "`TypeError`" in text


def test_a_syntax_error_as_markdown(server: LiveServer) -> None:
    text = request(server, "GET", "/syntax", headers=MARKDOWN)[2].decode()
    assert text.startswith("# `SyntaxError`")
    assert "Python could not compile `report.py`, line 1:" in text
    assert re.search(r"```python\ntotal = \(1 \+\n +\^+\n```", text)


# -- the error list ------------------------------------------------------------------------------


def test_the_error_list_in_json_and_html_newest_first(server: LiveServer) -> None:
    for path in ("/chain", "/syntax"):
        request(server, "GET", path)
    status, headers, body = request(
        server, "GET", "/?__debugger__=yes&cmd=errors", headers={"Accept": "application/json"}
    )
    data = json.loads(body)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    first, second = data["errors"][:2]
    assert (first["type"], first["url"]) == (
        "SyntaxError",
        f"http://127.0.0.1:{server.port}/syntax",
    )
    assert (second["type"], second["method"]) == ("ValueError", "GET")
    assert second["message"] == "could not load ``b`` for the `report`"
    assert first["page_url"].endswith(f"tb={first['id']}") and first["console_available"]
    assert request(server, "GET", first["page_url"].split(str(server.port), 1)[1])[0] == 200
    status, headers, body = request(
        server, "GET", "/?__debugger__=yes&cmd=errors", headers={"Accept": "text/html"}
    )
    page = body.decode()
    assert status == 200 and "Content-Security-Policy" in headers
    assert page.index("SyntaxError") < page.index("ValueError")
    assert f'href="http://127.0.0.1:{server.port}/?__debugger__=yes&amp;tb={first["id"]}"' in page
    # The traceback page links to the list.
    traceback_page = request(server, "GET", "/chain", headers={"Accept": "text/html"})[2]
    assert b'href="?__debugger__=yes&amp;cmd=errors"' in traceback_page


def test_the_error_list_forgets_what_the_store_forgets() -> None:
    from tests.conftest import call_app
    from wsgidev import DebuggedApplication

    def failing(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise LookupError(environ["PATH_INFO"])

    debugger = DebuggedApplication(failing, max_tracebacks=2, pin_logging=False)
    for path in ("/one", "/two", "/three"):
        call_app(debugger, path)
    listed = call_app(
        debugger, "/?__debugger__=yes&cmd=errors", headers={"Accept": "application/json"}
    )
    assert [e["message"] for e in json.loads(listed.body)["errors"]] == ["/three", "/two"]


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({"Host": "attacker.example"}, 400, "host"),  # DNS rebinding
        ({"Origin": "http://attacker.example"}, 403, "cross-site"),
        ({"Sec-Fetch-Site": "cross-site"}, 403, "cross-site"),
    ],
)
def test_the_error_list_and_mcp_refuse_what_the_console_refuses(
    server: LiveServer, headers: dict[str, str], status: int, reason: str
) -> None:
    request(server, "GET", "/chain")
    listed = request(server, "GET", "/?__debugger__=yes&cmd=errors", headers=headers)
    assert (listed[0], json.loads(listed[2])["reason"]) == (status, reason)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    mcp_headers = {"Content-Type": "application/json", **headers}
    answer = request(server, "POST", MCP, body, mcp_headers)
    assert (answer[0], json.loads(answer[2])["reason"]) == (status, reason)
    # The positive control: the same requests from the page's own origin are answered.
    own = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert request(server, "GET", "/?__debugger__=yes&cmd=errors", headers=own)[0] == 200
    assert request(server, "POST", MCP, body, {"Content-Type": "application/json", **own})[0] == 200


def test_untrusted_clients_are_refused_the_list() -> None:
    from tests.conftest import call_app
    from wsgidev import DebuggedApplication

    debugger = DebuggedApplication(lambda e, s: [], trusted_clients=["10.0.0.0/8"])
    refused = call_app(debugger, "/?__debugger__=yes&cmd=errors", REMOTE_ADDR="127.0.0.1")
    assert refused.code == 403 and json.loads(refused.body)["reason"] == "client"
    allowed = call_app(debugger, "/?__debugger__=yes&cmd=errors", REMOTE_ADDR="10.1.2.3")
    assert allowed.code == 200


# -- MCP -----------------------------------------------------------------------------------------


class McpClient:
    """The client side of MCP's Streamable HTTP transport, as the 2025-06-18 spec writes it."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.next_id = 0
        self.version: str | None = None

    def post(self, message: dict[str, Any]) -> tuple[int, Any]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        if self.version:
            headers["MCP-Protocol-Version"] = self.version
        status, _, body = request(self.server, "POST", MCP, json.dumps(message).encode(), headers)
        return status, json.loads(body) if body else None

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.next_id += 1
        status, answer = self.post(
            {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        )
        assert status == 200 and answer["jsonrpc"] == "2.0" and answer["id"] == self.next_id
        assert "error" not in answer, answer
        return answer["result"]


def test_an_mcp_session_lists_and_reads_the_errors(server: LiveServer) -> None:
    request(server, "GET", "/chain")
    client = McpClient(server)
    init = client.call(
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    )
    assert init["protocolVersion"] == "2025-06-18"
    assert init["capabilities"]["tools"] == {"listChanged": False}
    assert init["serverInfo"]["name"] == "wsgidev"
    client.version = init["protocolVersion"]
    assert client.post({"jsonrpc": "2.0", "method": "notifications/initialized"}) == (202, None)

    tools = {tool["name"]: tool for tool in client.call("tools/list")["tools"]}
    assert set(tools) == {"list_errors", "get_error", "server_status"}
    assert all(tool["annotations"]["readOnlyHint"] for tool in tools.values())

    listed = client.call("tools/call", {"name": "list_errors", "arguments": {}})
    errors = listed["structuredContent"]["errors"]
    assert errors[0]["type"] == "ValueError" and listed["isError"] is False
    assert json.loads(listed["content"][0]["text"])["errors"] == errors

    markdown = client.call(
        "tools/call", {"name": "get_error", "arguments": {"id": errors[0]["id"]}}
    )
    assert markdown["content"][0]["text"].startswith("# `ValueError`")
    as_json = client.call(
        "tools/call", {"name": "get_error", "arguments": {"id": errors[0]["id"], "format": "json"}}
    )
    assert json.loads(as_json["content"][0]["text"])["type"] == "ValueError"
    missing = client.call("tools/call", {"name": "get_error", "arguments": {"id": "nope"}})
    assert missing["isError"] is True and "list_errors" in missing["content"][0]["text"]

    status = client.call("tools/call", {"name": "server_status", "arguments": {}})
    report = status["structuredContent"]
    assert report["import_error"] is None and report["python"] and report["wsgidev"]
    assert report["errors_kept"] >= 1


def test_mcp_negotiates_versions_and_answers_protocol_errors(server: LiveServer) -> None:
    client = McpClient(server)
    older = client.call("initialize", {"protocolVersion": "2025-03-26", "capabilities": {}})
    assert older["protocolVersion"] == "2025-03-26"
    future = client.call("initialize", {"protocolVersion": "2099-01-01", "capabilities": {}})
    assert future["protocolVersion"] == "2025-06-18"  # ours: the client decides whether to go on
    _, answer = client.post({"jsonrpc": "2.0", "id": 9, "method": "resources/list"})
    assert answer["error"]["code"] == -32601
    _, answer = client.post(
        {
            "jsonrpc": "2.0",
            "id": 10,
            "method": "tools/call",
            "params": {"name": "run_code", "arguments": {}},
        }
    )
    assert answer["error"]["code"] == -32602  # there is no tool that runs code
    bad = request(server, "POST", MCP, b"{not json", {"Content-Type": "application/json"})
    assert bad[0] == 400 and json.loads(bad[2])["error"]["code"] == -32700
    batch = json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).encode()
    answer = json.loads(
        request(server, "POST", MCP, batch, {"Content-Type": "application/json"})[2]
    )
    assert answer["error"]["code"] == -32600
    assert request(server, "GET", MCP)[0] == 405
    versioned = {"Content-Type": "application/json", "MCP-Protocol-Version": "1999-01-01"}
    ping = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}).encode()
    assert json.loads(request(server, "POST", MCP, ping, versioned)[2])["error"]["code"] == -32600


def test_mcp_is_off_when_the_debugger_is_wrapped_by_hand() -> None:
    from tests.conftest import call_app
    from wsgidev import DebuggedApplication

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"the app's own 404"]

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    answer = call_app(
        DebuggedApplication(app), MCP, "POST", {"Content-Type": "application/json"}, body
    )
    assert answer.body == b"the app's own 404"


# -- wsgidev errors ------------------------------------------------------------------------------

BROKEN_APP = """\
def app(environ, start_response):
    orders = {}
    return orders[environ["PATH_INFO"] + "\\x1b[2J"]
"""


def test_wsgidev_errors_lists_and_prints_the_last_error_of_this_folders_server(
    serve_cli: Callable[..., LiveServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "off")
    project = tmp_path / "project"
    project.mkdir()
    (project / "app.py").write_text(BROKEN_APP)
    nothing = run_cli("errors", cwd=project)
    assert nothing.returncode == 2 and "pass --url" in nothing.stderr

    server = serve_cli("run", "app:app", "--debug", "--no-reload", cwd=project)
    assert run_cli("errors", cwd=project).stdout.startswith("No errors kept by")
    request(server, "GET", "/orders")
    listed = run_cli("errors", cwd=project)
    assert listed.returncode == 0
    assert "KeyError" in listed.stdout and "GET http://127.0.0.1:" in listed.stdout
    assert "\x1b" not in listed.stdout and "\\x1b[2J" in listed.stdout  # shown, not obeyed
    last = run_cli("errors", "--last", cwd=project)
    assert last.returncode == 0 and last.stdout.startswith("# `KeyError`")
    assert "\x1b" not in last.stdout
    as_json = json.loads(run_cli("errors", "--json", cwd=project).stdout)
    error_id = as_json["errors"][0]["id"]
    one = run_cli("errors", "--url", server.url, "--id", error_id, cwd=tmp_path)
    assert one.stdout == last.stdout
    gone = run_cli("errors", "--id", "nope", cwd=project)
    assert gone.returncode == 1 and "keeps no error with the id 'nope'" in gone.stderr
    server.stop()
    down = run_cli("errors", cwd=project)
    assert down.returncode == 1 and "no server answers at" in down.stderr


def mcp_tool(server: LiveServer, name: str) -> dict[str, Any]:
    client = McpClient(server)
    client.call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
    result: dict[str, Any] = client.call("tools/call", {"name": name, "arguments": {}})
    return result["structuredContent"]


def test_server_status_shows_the_import_error_and_the_url_map(
    serve_cli: Callable[..., LiveServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("flask")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("WSGIDEV_DEBUG_PIN", "off")
    (tmp_path / "app.py").write_text(
        "from flask import Flask\napp = Flask(__name__)\n\n@app.route('/orders/<int:n>')\n"
        "def order(n):\n    return str(n)\n"
    )
    server = serve_cli("run", "app:app", "--debug", "--reloader-type", "stat", cwd=tmp_path)
    status = mcp_tool(server, "server_status")
    assert status["reloader"] == "running" and status["import_error"] is None
    assert status["framework"] == "Flask" and "flask" in status["packages"]
    assert {
        "rule": "/orders/<int:n>",
        "endpoint": "order",
        "methods": ["GET", "HEAD", "OPTIONS"],
    } in (status["url_map"])
    (tmp_path / "app.py").write_text("def app(:\n")
    server.wait_for(r"The application failed to start")
    status = mcp_tool(server, "server_status")
    assert "SyntaxError" in status["import_error"] and "app.py" in status["import_error"]
