"""Error responses, for every transport: the HTTP part here, the body by the transport.

Each mount (REST at `/`, GraphQL at `/graphql`) registers the renderer that turns a
`DomainError` into its body: `app.rest.errors.render_error` for the documented envelope,
`schema.rendering.render_error` for a GraphQL `errors` body. The edge middleware and the
framework's exception handlers only pick the renderer by path; neither knows a body's shape.
The headers an error calls for (WWW-Authenticate, Retry-After, Allow) are HTTP, so here.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import Response

from app.core.errors import DomainError, MethodNotAllowed, RateLimited, Unauthorized

ErrorRenderer = Callable[[DomainError], bytes]


class ErrorRenderers:
    """The renderer of each mount; the longest matching prefix wins."""

    def __init__(self, default: ErrorRenderer) -> None:
        self.default = default
        self._mounts: list[tuple[str, ErrorRenderer]] = []

    def mount(self, prefix: str, renderer: ErrorRenderer) -> None:
        self._mounts.append((prefix.rstrip("/"), renderer))
        self._mounts.sort(key=lambda mount: len(mount[0]), reverse=True)

    def for_path(self, path: str) -> ErrorRenderer:
        for prefix, renderer in self._mounts:
            if path == prefix or path.startswith(prefix + "/"):
                return renderer
        return self.default


def error_headers(error: DomainError) -> dict[str, str]:
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="clients"'}
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    if isinstance(error, MethodNotAllowed):
        return {"Allow": error.allow}
    return {}


def error_response(
    renderer: ErrorRenderer, error: DomainError, status: int | None = None
) -> Response:
    """`error` as a JSON response with its status (or `status`) and headers."""
    return Response(
        renderer(error),
        status_code=error.status if status is None else status,
        media_type="application/json",
        headers=error_headers(error),
    )
