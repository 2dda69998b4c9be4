"""The demo page's static files, served over plain HTTP from the WebSocket port.

Only the files of an allow-list are served, read once from the package, so no
request path ever reaches the file system.
"""

from __future__ import annotations

import importlib.resources
from typing import Dict, Optional, Tuple

from ..handshake import Headers, Request, Response, reject

__all__ = ["CONTENT_SECURITY_POLICY", "FILES", "StaticFiles"]

#: URL path -> (file in ``wscodec/demo/static``, content type).
FILES: Dict[str, Tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

#: Scripts and styles from our own files only; WebSocket connections to our own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def _read(name: str) -> bytes:
    return importlib.resources.files("wscodec.demo").joinpath("static").joinpath(name).read_bytes()


class StaticFiles:
    """Answers GET requests for the allow-listed files; 404 for any other path."""

    def __init__(self) -> None:
        self._bodies = {name: _read(name) for name, _ in FILES.values()}

    def response(self, request: Request) -> Response:
        """The response to a plain HTTP request (never an upgrade)."""
        if request.method != "GET":
            return reject(405, f"method {request.method} not allowed", [("Allow", "GET")])
        found = FILES.get(request.path.split("?", 1)[0])
        if found is None:
            return reject(404, "not found")
        name, content_type = found
        body = self._bodies[name]
        headers = Headers(
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
                ("Referrer-Policy", "no-referrer"),
                ("Connection", "close"),
            ]
        )
        return Response(200, headers, body)

    def get(self, path: str) -> Optional[bytes]:
        """The body served for ``path``, if any."""
        found = FILES.get(path)
        return None if found is None else self._bodies[found[0]]
