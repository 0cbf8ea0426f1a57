"""A DVC HTTP remote with basic auth on 127.0.0.1, standing in for DagsHub in the tests.

    python3 http_remote.py PORT ROOT USER PASSWORD [FORBIDDEN_USER]

Serves HEAD and GET of files under ROOT and stores PUT and POST bodies there (DVC's HTTP
remote pushes with POST by default). Every request without the right credentials gets 401,
as DagsHub answers; FORBIDDEN_USER, with any password, gets 403 (a known user without access to
the repository, as DagsHub answers it). PORT 0 picks a free port; prints `ready <port>` on stderr once listening.
"""
import base64
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, ROOT, USER, PASSWORD = int(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3], sys.argv[4]
FORBIDDEN = sys.argv[5] if len(sys.argv) > 5 else None
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _path(self):
        rel = self.path.split("?", 1)[0].lstrip("/")
        full = os.path.abspath(os.path.join(ROOT, rel))
        return full if full.startswith(ROOT + os.sep) else None

    def _authorized(self):
        given = self.headers.get("Authorization") or ""
        if given == EXPECTED:
            return True
        try:
            user = base64.b64decode(given.removeprefix("Basic ")).decode().split(":", 1)[0]
        except Exception:
            user = None
        forbidden = FORBIDDEN is not None and user == FORBIDDEN
        body = b"forbidden" if forbidden else b"unauthorized"
        self.send_response(403 if forbidden else 401)
        self.send_header("WWW-Authenticate", 'Basic realm="dvc"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return False

    def _read(self, head):
        if not self._authorized():
            return
        path = self._path()
        if path is None or not os.path.isfile(path):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not head:
            with open(path, "rb") as f:
                self.wfile.write(f.read())

    def do_HEAD(self):
        self._read(True)

    def do_GET(self):
        self._read(False)

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _write(self):
        body = self._body()  # read it even when refusing, to keep the connection sane
        if not self._authorized():
            return
        path = self._path()
        if path is None:
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".part"
        with open(tmp, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = _write
    do_POST = _write


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", server.server_address[1], file=sys.stderr, flush=True)
server.serve_forever()
