"""`stedi serve` beyond loopback (issue 25): a token on every request, zones to hide, malformed HTTP answered.

The server is bound to 127.0.0.2: a loopback address (no traffic leaves the machine) that is not the one
`stedi serve` treats as private, so it behaves as on `--host 0.0.0.0`.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stedi import Lakehouse
from stedi.serve.server import TIMEOUT, ReportServer

from support import FIXTURES, stedi_process

HOST = "127.0.0.2"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lakehouse:
    lake = Lakehouse(tmp_path_factory.mktemp("serve") / "lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    return lake


@pytest.fixture
def exposed(lake: Lakehouse) -> Iterator[ReportServer]:
    server = ReportServer(lake, HOST, port=0, zones=frozenset({"curated"}))
    server.start()
    yield server
    server.shutdown()
    server.server_close()


def _ask(server: ReportServer, query: str, headers: dict[str, str] | None = None, path: str = "sql"
         ) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(f"{server.url}{path}", data=json.dumps({"q": query}).encode(),
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_beyond_loopback_every_request_needs_the_token(exposed: ReportServer) -> None:
    token = exposed.token
    assert token is not None and len(token) >= 32  # made, since none was given
    query = "select count(*) as n from machine_learning_curated"
    assert _ask(exposed, query)[0] == 401
    assert _ask(exposed, query, {"Authorization": "Bearer not-the-token"})[0] == 401
    status, body, _ = _ask(exposed, query, {"Authorization": f"Bearer {token}"})
    assert status == 200 and body["rows"][0][0] > 0
    # the address printed once: ?token= sets a cookie, which the page's own requests then carry
    status, _, headers = _ask(exposed, query, path=f"sql?token={token}")
    assert status == 200 and headers["Set-Cookie"].startswith(f"stedi_token={token}; HttpOnly; SameSite=Strict")
    assert _ask(exposed, query, {"Cookie": f"stedi_token={token}"})[0] == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(exposed.url, timeout=30)
    assert refused.value.code == 401


def test_zones_hide_the_other_tables(exposed: ReportServer) -> None:
    auth = {"Authorization": f"Bearer {exposed.token}"}
    assert _ask(exposed, "select count(*) from customers_curated", auth)[0] == 200
    for hidden in ("customer_landing", "customer_trusted", "accelerometer_trusted", "customer_quarantine"):
        status, body, _ = _ask(exposed, f"select * from {hidden}", auth)
        assert status == 400 and hidden in body["error"], body


def _raw(server: ReportServer, request: bytes) -> tuple[bytes, float]:
    """What the server answers to bytes sent as they are, and how long it took (the connection kept open
    for writing: an answer at once was not waiting for more bytes)."""
    host, port = server.server_address[:2]
    started = time.monotonic()
    with socket.create_connection((str(host), int(port)), timeout=TIMEOUT + 30) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


@pytest.mark.parametrize("length", ["abc", "-1", "1e3"])
def test_a_bad_content_length_is_a_400_at_once(lake: Lakehouse, length: str) -> None:
    server = ReportServer(lake, port=0)
    server.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        answer, took = _raw(server, (f"POST /sql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                                     f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode())
        # at once: before the read timeout that would end a wait for a body (a busy machine takes a while)
        assert answer.startswith(b"HTTP/1.0 400") and took < TIMEOUT, (answer[:200], took)
        # a body that never comes: the connection is dropped after TIMEOUT, and the server still answers
        answer, took = _raw(server, (f"POST /sql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 100\r\n\r\n{").encode())
        assert TIMEOUT <= took < TIMEOUT + 15, took  # dropped by the read timeout, not held open
        assert _ask(server, "select 1 as one")[0] == 200
    finally:
        server.shutdown()
        server.server_close()


def test_the_command_prints_the_token_once_and_checks_zones(lake: Lakehouse, tmp_path: Path) -> None:
    refused = stedi_process(lake.settings.home, "serve", "--zones", "curated,bogus", "--port", "0")
    assert refused.returncode == 2 and "give zones among landing, trusted, curated, audit" in refused.stderr
    import os
    import re
    import signal
    import subprocess

    from support import STEDI, TEST_KEY

    process = subprocess.Popen([str(STEDI), "--home", str(lake.settings.home), "serve", "--host", HOST,
                                "--port", "0", "--zones", "curated"],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY})
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(3)]
        assert "the curated tables" in lines[0]
        found = re.search(r"open (http://127\.0\.0\.2:\d+/)\?token=(\S+) \(the token is shown only now\)", lines[2])
        assert found, lines
        with pytest.raises(urllib.error.HTTPError) as without:
            urllib.request.urlopen(found.group(1), timeout=60)
        assert without.value.code == 401
        with urllib.request.urlopen(f"{found.group(1)}?token={found.group(2)}", timeout=60) as response:
            assert '<section id="sql"' in response.read().decode()
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_the_page_is_kept_until_the_lakehouse_changes(tmp_path: Path) -> None:
    """The report is made once per state: again after a tag (a commit to every table) or a landed file (the
    lineage counts them), not for a query or a page loaded again."""
    from stedi.serve.server import state_key

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    server = ReportServer(lake, port=0)
    keys = [state_key(lake)]
    assert server.page(None) == server.page(None) and server.renders == 1
    lake.tag("before-more")
    keys.append(state_key(lake))
    server.page(None)
    assert server.renders == 2
    more = tmp_path / "more" / "customer" / "customer-more.json"
    more.parent.mkdir(parents=True)
    more.write_text(json.dumps({"customerName": "Dana New", "email": "dana@test.com", "phone": "8015550400",
                                "birthDay": "1990-01-01", "serialNumber": "SN-DANA",
                                "registrationDate": 1655564376361, "lastUpdateDate": 1655564376361,
                                "shareWithResearchAsOfDate": None}) + "\n")
    assert lake.ingest(more).landed
    keys.append(state_key(lake))
    assert len(set(keys)) == 3
    server.page(None)
    server.page("before-more")
    server.page("before-more")
    assert server.renders == 4
    server.server_close()
