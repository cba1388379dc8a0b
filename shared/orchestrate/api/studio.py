"""The Studio's files: the single-page app Vite builds into ``orchestrate/studio_dist``.

``/`` answers index.html (or a one-line hint when nothing is built: never a 500),
``/assets/*`` the hashed bundles with a long cache, and any other GET outside the API
falls back to index.html, so a reload on a client route still opens the app. The API's
own paths (``/v1``, ``/docs``, ``/openapi.json``) are never shadowed: the fallback does
not match them, so they keep their problem+json 404s.

Only Starlette pieces FastAPI has already imported: nothing here adds to a cold start."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Match, Route
from starlette.types import Scope

STUDIO_DIR = Path(__file__).resolve().parent.parent / "studio_dist"
NOT_BUILT = "The Studio is not built: run `make ui`."
RESERVED = ("/v1", "/assets/", "/docs", "/redoc", "/openapi.json")

# Model answers are untrusted: the app renders them sanitized, and this policy is the
# second line (no inline or foreign script, no framing). Styles may be inline (the
# editor and the graph set them at run time). The only other origin the app may talk
# to is the Supabase project's (Auth over https, Realtime over wss).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src {connect}; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _headers(supabase_url: str | None) -> dict[str, str]:
    connect = "'self'"
    parts = urlsplit(supabase_url or "")
    if parts.scheme in ("http", "https") and parts.netloc:
        socket = "wss" if parts.scheme == "https" else "ws"
        connect += f" {parts.scheme}://{parts.netloc} {socket}://{parts.netloc}"
    return {"Content-Security-Policy": _CSP.format(connect=connect), "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

_INDEX_CACHE = "no-cache"  # always revalidated: it names the current bundles
_ASSET_CACHE = "public, max-age=31536000, immutable"  # file names carry a content hash


class Studio:
    """Serves one build folder (looked up per request: ``make ui`` may run meanwhile)."""

    def __init__(self, directory: Path = STUDIO_DIR, supabase_url: str | None = None) -> None:
        self.directory = directory
        self.headers = _headers(supabase_url)

    def index(self, request: Request) -> Response:
        page = self.directory / "index.html"
        if not page.is_file():
            html = f"<!doctype html><title>Orchestrate Studio</title><p>{NOT_BUILT}</p>\n"
            return HTMLResponse(html, headers={**self.headers, "Cache-Control": "no-store"})
        return FileResponse(page, media_type="text/html; charset=utf-8", headers={**self.headers, "Cache-Control": _INDEX_CACHE})

    def asset(self, request: Request) -> Response:
        found = self._file("assets", request.path_params["path"])
        if found is None:
            return _not_found(request)
        return FileResponse(found, headers={"Cache-Control": _ASSET_CACHE, "X-Content-Type-Options": "nosniff"})

    def fallback(self, request: Request) -> Response:
        """A top-level file of the build (favicon, robots.txt) or, for a path that names
        no file, the app itself."""
        name = request.url.path.lstrip("/")
        found = self._file(name) if name and "/" not in name else None
        if found is not None:
            return FileResponse(found, headers={"Cache-Control": _INDEX_CACHE, "X-Content-Type-Options": "nosniff"})
        if "." in name.rsplit("/", 1)[-1]:  # a file that is not there: a 404, not the app
            return _not_found(request)
        return self.index(request)

    def _file(self, *parts: str) -> Path | None:
        """The build's file at ``parts``, or None if it is missing or outside the build."""
        root = self.directory.resolve()
        try:
            path = root.joinpath(*parts).resolve()
        except (OSError, ValueError):
            return None
        return path if path.is_relative_to(root) and path.is_file() else None


class _Fallback(Route):
    """Matches any GET or HEAD outside the API's paths; everything else stays a 404/405
    of the API."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD") or path.startswith(RESERVED):
            return Match.NONE, {}
        return super().matches(scope)


def _not_found(request: Request) -> Response:
    from .problems import problem_response

    return problem_response(request, 404, "not-found", f"no such resource: {request.url.path}")


def mount(app: FastAPI, directory: Path = STUDIO_DIR, supabase_url: str | None = None) -> None:
    """Add the Studio's routes; call after the API's routers so they match first."""
    studio = Studio(directory, supabase_url)
    app.add_route("/", studio.index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/assets/{path:path}", studio.asset, methods=["GET", "HEAD"], include_in_schema=False)
    app.router.routes.append(_Fallback("/{path:path}", studio.fallback, methods=["GET", "HEAD"], include_in_schema=False))
