"""A fake OAuth2 provider on 127.0.0.1, in a thread: Dovecot's token introspection, the token
endpoint (refresh and device-code grants) and the RFC 8628 device endpoint. It records every
request so that tests can count them."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class OAuthServer:
    def __init__(self, port: int = 0) -> None:
        self.access: dict[str, str] = {}  # valid access token → user
        self.refresh: dict[str, str] = {}  # valid refresh token → user
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, form fields)
        self.expires_in: int | None = 3600
        self.pending = 0  # device flow: polls answered authorization_pending before approval
        self.device_user = "nobody"
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                fields = dict(urllib.parse.parse_qsl(self.rfile.read(size).decode()))
                status, body = server.answer(self.path, fields)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def posts(self, path: str) -> list[dict[str, str]]:
        return [f for p, f in self.requests if p == path]

    def answer(self, path: str, f: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            self.requests.append((path, f))
            if path == "/introspect":  # Dovecot asks whether a token is valid
                user = self.access.get(f.get("token", ""))
                return 200, {"active": True, "username": user} if user else {"active": False}
            if path == "/device":
                return 200, {
                    "device_code": "dev-code",
                    "user_code": "WDJB-MJHT",
                    "verification_uri": f"{self.url}/verify",
                    "expires_in": 600,
                    "interval": 0,
                }
            if path != "/token":
                return 404, {"error": "not_found"}
            grant = f.get("grant_type")
            if grant == "refresh_token":
                user = self.refresh.get(f.get("refresh_token", ""))
                if user is None:
                    return 400, {"error": "invalid_grant", "error_description": "Bad token."}
                token = f"at-{next(self._ids)}"
                self.access[token] = user
                body: dict[str, object] = {"access_token": token, "token_type": "Bearer"}
                if self.expires_in is not None:
                    body["expires_in"] = self.expires_in
                return 200, body
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                if f.get("device_code") != "dev-code":
                    return 400, {"error": "invalid_grant"}
                if self.pending > 0:
                    self.pending -= 1
                    return 400, {"error": "authorization_pending"}
                token = f"rt-{next(self._ids)}"
                self.refresh[token] = self.device_user
                return 200, {"access_token": "x", "refresh_token": token, "expires_in": 60}
            return 400, {"error": "unsupported_grant_type"}

    def __enter__(self) -> OAuthServer:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()
