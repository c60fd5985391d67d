"""A SyntaxError while the app imports: the page leads with the broken file, not importlib."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LiveServer, get

APP = 'import helper\n\ndef app(environ, start_response):\n    start_response("200 OK", [])\n    return [b"ok"]\n'
BROKEN = "first = 1\nsecond = 2\n\ndef broken(:\n    return second\n\nlast = 3\n"


def forms(server: LiveServer) -> tuple[str, str, dict[str, object]]:
    """The page as HTML, as plain text and as JSON."""
    html = get(server, headers={"Accept": "text/html"})[2].decode()
    text = get(server, headers={"Accept": "text/plain"})[2].decode()
    data = json.loads(get(server, headers={"Accept": "application/json"})[2])
    return html, text, data


@pytest.mark.parametrize("broken", ["app.py", "helper.py"])
def test_the_page_leads_with_the_file_that_does_not_compile(
    serve_cli: Callable[..., LiveServer], tmp_path: Path, broken: str
) -> None:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "helper.py").write_text("VALUE = 1\n")
    (tmp_path / broken).write_text(BROKEN)
    server = serve_cli("run", "app:app", "--debug", cwd=tmp_path)
    html, text, data = forms(server)

    where = re.search(r'<p class="where-raised">(.*?)</p>', html)
    assert where is not None
    assert "Python could not compile" in where[1] and f"{broken}</span>, line 4" in where[1]
    # The broken line with its caret, between highlighted neighbours of the file.
    syntax = re.search(r'<pre class="syntax-line">(.*?)</pre>', html, re.S)
    assert syntax is not None
    lines = re.sub(r"<[^>]+>", "", syntax[1]).splitlines()
    assert [line.split(" ", 1)[0] for line in lines if line[:1].isdigit()] == list("123456")
    assert any(line.strip() == "^" for line in lines)

    for form in (html, text, json.dumps(data)):
        assert "<frozen" not in form and "&lt;frozen" not in form and "importlib" not in form
    assert f'File "{tmp_path / broken}", line 4' in text
    chain = data["chain"]
    assert isinstance(chain, list) and chain[-1]["syntax_error"]["lineno"] == 4
    if broken == "helper.py":  # the import line is named, below the broken module
        assert 'File "' + str(tmp_path / "app.py") + '", line 1, in <module>' in text
    # The terminal too starts at the user's code.
    server.wait_for(r"SyntaxError")
    assert "<frozen" not in server.log
