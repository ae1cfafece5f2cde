"""`stedi serve`: the report (stedi.report) live over HTTP, with a read-only SQL box at its top.

Routes: `GET /` the report (`?as_of=` a past state), `POST /sql` one query as JSON (the first rows),
`GET /sql.csv?q=` every row as CSV. Queries go through `Lakehouse.sql_batches`: the same guard as
`stedi sql` (one read-only statement, no file access beyond the tables) and its timeout.

The report is made once per state of the lakehouse (it takes seconds) and kept: a page is made again
only when a command changed a table (any commit makes a table's metadata location new: run, optimize,
rollback, tag, erase) or the landed files changed. Checking costs one query of the embedded catalog (a
shared one: a load of each table) and a read of the landing manifest.

It listens on 127.0.0.1 unless told otherwise and answers only requests addressed to the host it listens
on (a page elsewhere cannot reach it through DNS rebinding). Beyond loopback every request needs the
server's token (`Authorization: Bearer`, or `?token=` once, which sets a cookie for the page's own
requests), and the SQL box may be limited to some zones' tables (`zones`). A request it cannot read (a bad
Content-Length, a body that never comes) gets a 400 or is dropped after TIMEOUT seconds. Its pages may
load nothing from anywhere (a Content-Security-Policy that allows only inline styles, inline scripts,
data: images, and fetches to itself). Readers never lock: it serves while runs go on, each page showing
the state then.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from stedi.errors import StediError

if TYPE_CHECKING:
    from stedi.api import Lakehouse

SHOWN_ROWS = 1000  # rows a query shows in the page (the CSV has every row)
DEFAULT_TIMEOUT = 60.0  # seconds a query of the box may run, unless the setting query_timeout says otherwise
MAX_BODY = 1 << 20
TIMEOUT = 5.0  # seconds a client may take to send a request
COOKIE = "stedi_token"
PAGES = 8  # pages kept (the current state's, and a few past states')
LOOPBACK = ("127.0.0.1", "localhost", "::1")
POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
          "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def page(lake: Lakehouse, as_of: str | None) -> str:
    """The report with the SQL box first."""
    from stedi.report import render_report
    from stedi.report.page import Lead

    box = resources.files("stedi.serve").joinpath("sql_box.html").read_text("utf-8")
    box = box.replace('"__AS_OF__"', json.dumps(as_of or "").replace("<", "\\u003c"))
    return render_report(lake, as_of=as_of, lead=Lead("sql", "SQL", box))


def state_key(lake: Lakehouse) -> tuple[object, ...]:
    """What the report of any state depends on: every table's metadata location (new with each commit; one
    query of the embedded catalog) and the landed files. Equal keys, equal pages (but for the time it says
    it was made)."""
    from stedi.iceberg.shared import registered_locations

    with lake.catalog.errors_about("the catalog"):
        tables = sorted(registered_locations(lake.catalog.iceberg).items()) if lake.catalog.exists else []
    landed = sorted((f.source, f.name, f.size, f.sha256) for f in lake.landed_files())
    return tuple(tables), tuple(landed)


def _jsonable(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


class _Handler(BaseHTTPRequestHandler):
    server: ReportServer
    timeout = TIMEOUT  # a socket read that waits longer ends the request

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if self.server.say is not None:
            self.server.say(f"{self.address_string()} {format % args}")

    def _refused_host(self) -> bool:
        """Whether the request was refused: addressed to another host, or without the token."""
        host = (self.headers.get("Host") or "").lower()
        if self.server.hosts is not None and host not in self.server.hosts:
            self._send(HTTPStatus.MISDIRECTED_REQUEST, "text/plain", b"this server answers only at " +
                       ", ".join(sorted(self.server.hosts)).encode())
            return True
        if self.server.token is None or self._token() is not None:
            return False
        self._error(HTTPStatus.UNAUTHORIZED, "this server needs its token: open the address `stedi serve` printed "
                    "(?token=...), or send `Authorization: Bearer <token>`")
        return True

    def _token(self) -> str | None:
        """The server's token when the request carries it (header, cookie or query), else None."""
        given = [self.headers.get("Authorization", "").removeprefix("Bearer ").strip(),
                 *parse_qs(urlsplit(self.path).query).get("token", [])]
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                given.append(value)
        token = self.server.token or ""
        return token if any(hmac.compare_digest(g.encode(), token.encode()) for g in given if g) else None

    def _send(self, status: HTTPStatus, kind: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        if self.server.token is not None and "token" in parse_qs(urlsplit(self.path).query):
            # the page's own requests (the SQL box, the CSV link) carry it from here on
            self.send_header("Set-Cookie", f"{COOKIE}={self.server.token}; HttpOnly; SameSite=Strict; Path=/")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._send(status, "application/json", json.dumps({"error": message}).encode())

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self._refused_host():
            return
        url = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path in ("/", "/index.html"):
                body = self.server.page(params.get("as_of") or self.server.as_of).encode()
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", body)
            elif url.path == "/sql.csv":
                self._csv(params.get("q", ""), params.get("as_of") or self.server.as_of)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found")
        except StediError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        if self._refused_host():
            return
        if urlsplit(self.path).path != "/sql":
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found")
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            # a form on another site cannot send JSON without the browser asking this server first
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the query as JSON: {\"q\": \"select ...\"}")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._error(HTTPStatus.BAD_REQUEST, "the Content-Length header is not a number of bytes")
            return
        if length > MAX_BODY:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "the query is too long")
            return
        try:
            asked = json.loads(self.rfile.read(length) or b"{}")
            query = str(asked.get("q") or "")
            as_of = asked.get("as_of") or self.server.as_of
        except (ValueError, AttributeError):
            self._error(HTTPStatus.BAD_REQUEST, "the body is not JSON of the form {\"q\": \"select ...\"}")
            return
        try:
            with self.server.lake.sql_batches(query, timeout=self.server.query_timeout, as_of=as_of,
                                              batch_rows=SHOWN_ROWS, zones=self.server.zones) as reader:
                columns = reader.schema.names
                rows: list[list[Any]] = []
                truncated = False
                for batch in reader:
                    for row in batch.to_pylist():
                        if len(rows) == SHOWN_ROWS:
                            truncated = True
                            break
                        rows.append([_jsonable(row[c]) for c in columns])
                    if truncated:
                        break
        except StediError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        body = json.dumps({"columns": columns, "rows": rows, "truncated": truncated}).encode()
        self._send(HTTPStatus.OK, "application/json", body)

    def _csv(self, query: str, as_of: str | None) -> None:
        import io

        from stedi.cli.output import write_csv

        out = io.BytesIO()  # whole, so an error can still be a clean 400
        with self.server.lake.sql_batches(query, timeout=self.server.query_timeout, as_of=as_of,
                                          zones=self.server.zones) as reader:
            write_csv(reader, out)
        self._send(HTTPStatus.OK, "text/csv; charset=utf-8", out.getvalue(),
                   {"Content-Disposition": 'attachment; filename="result.csv"'})


class ReportServer(ThreadingHTTPServer):
    """The report and the SQL box of one lakehouse, on `host`:`port` (port 0: any free one)."""

    daemon_threads = True

    def __init__(self, lake: Lakehouse, host: str = "127.0.0.1", port: int = 8765, as_of: str | None = None,
                 say: Any = None, token: str | None = None, zones: frozenset[str] | None = None) -> None:
        """`token`: what every request must carry; beyond loopback one is made when none is given (`token`
        after this holds it). `zones`: the zones whose tables the SQL box may query (default: all)."""
        from stedi.report import require_extra

        require_extra()  # before the port is taken: the page is a report
        super().__init__((host, port), _Handler)
        self.lake, self.as_of, self.say, self.zones = lake, as_of, say, zones
        self.token = token or (None if host in LOOPBACK else secrets.token_urlsafe(24))
        self.query_timeout = lake.settings.query_timeout or DEFAULT_TIMEOUT
        bound = self.server_address[1]
        # on loopback, only requests addressed to it (None: a host given on purpose answers any name)
        loopback = host in LOOPBACK
        self.hosts = {f"{name}:{bound}" for name in ("localhost", "127.0.0.1", "[::1]")} if loopback else None
        self.renders = 0  # reports made: one per state asked for, unless it fell out of the PAGES kept
        self._pages: OrderedDict[tuple[object, ...], str] = OrderedDict()
        self._rendering = threading.Lock()  # one report made at a time, and never the same one twice

    def page(self, as_of: str | None) -> str:
        """The page of a state (default: the current one): kept, or made now if the lakehouse changed."""
        key = (as_of, state_key(self.lake))
        with self._rendering:
            html = self._pages.get(key)
            if html is None:
                started = time.monotonic()
                html = page(self.lake, as_of)
                self.renders += 1
                if self.say is not None:
                    self.say(f"made the report of {as_of or 'the current state'} in "
                             f"{time.monotonic() - started:.1f} s")
                self._pages[key] = html
                while len(self._pages) > PAGES:
                    self._pages.popitem(last=False)
            self._pages.move_to_end(key)
            return html

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests); `serve_forever()` serves in this one."""
        thread = threading.Thread(target=self.serve_forever, name="stedi-serve", daemon=True)
        thread.start()
        return thread
