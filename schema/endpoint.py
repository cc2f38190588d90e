"""`/graphql`: a thin HTTP transport over the Strawberry schema in schema/.

Strawberry's own router answers some malformed bodies with text/plain or a 500 and resolves
the context before it knows whether a request is only the GraphiQL page; this endpoint does
the HTTP part itself (JSON in and out, authentication, status codes) and hands validated
requests to `Schema.execute`, with parser and validation caches and document limits.

Plain `clients`/`client` queries are first offered to the compiled fast path
(schema/fast.py, GRAPHQL_FAST_PATH): it answers them with the same bytes, or gives the request
back untouched, and everything it does not answer (errors included) is answered below.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    get_operation_ast,
    specified_rules,
)
from graphql import OperationType as GraphQLOperationType
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from app.core.config import Settings
from app.core.errors import MethodNotAllowed, UnsupportedMediaType, ValidationFailed
from app.http import metrics
from app.http.deps import authenticate, services
from app.http.errors import ErrorRenderers, error_response
from app.http.ui import graphiql_page
from schema import GatewaySchema, build_schema
from schema.context import Context
from schema.documents import CheckedDocument, DocumentChecker, PreparedDocument, current_document
from schema.fast import FastPath, Unavailable
from schema.limits import DocumentLimits, validation_rules
from schema.rendering import format_error, render_error

_ALLOWED = frozenset({OperationType.QUERY, OperationType.MUTATION})
_JSON_TYPES = ("application/json", "application/graphql-response+json")


# What /openapi.json says of POST /graphql (the handler reads the body itself).
_OPENAPI_REQUEST: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["query"],
                "properties": {
                    "query": {"type": "string", "pattern": r"\S"},
                    "variables": {"type": ["object", "null"]},
                    "operationName": {"type": ["string", "null"]},
                },
            }
        }
    },
}
_GRAPHQL_BODY = {
    "type": "object",
    "properties": {
        "data": {"type": ["object", "null"]},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def _documented(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _GRAPHQL_BODY}}}


_OPENAPI_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _documented("A GraphQL response: business errors are data, bad documents `errors`"),
    400: _documented("VALIDATION_ERROR: the body is not a JSON object with a `query` string"),
    401: _documented("UNAUTHORIZED: missing, malformed, unknown or revoked API key"),
    413: _documented("PAYLOAD_TOO_LARGE: body over 256 KiB"),
    415: _documented("UNSUPPORTED_MEDIA_TYPE: the body must be JSON"),
    429: _documented("RATE_LIMITED"),
    500: _documented("INTERNAL_ERROR"),
    503: _documented("SERVICE_UNAVAILABLE: the database is unreachable"),
}


def document_limits(settings: Settings) -> DocumentLimits:
    return DocumentLimits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_cost=settings.graphql_max_cost,
        count_cost=settings.graphql_count_cost,
    )


def document_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The validation rules added to graphql-core's: the standard path and the fast path
    validate with these same classes."""
    rules: list[type[ASTValidationRule]] = validation_rules(document_limits(settings))
    if settings.is_production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return rules


def build_gateway_schema(settings: Settings) -> GatewaySchema:
    """The schema as the endpoint runs it: documents come parsed and validated (see
    schema/documents.py), so Strawberry's own parse and validation steps are skipped."""
    return build_schema(extensions=[PreparedDocument])


def document_checker(settings: Settings, schema: GatewaySchema) -> DocumentChecker:
    return DocumentChecker(
        schema._schema,
        rules=(*specified_rules, *document_rules(settings)),
        limits=document_limits(settings),
        max_tokens=settings.graphql_max_tokens,
        max_bytes=settings.graphql_cache_mb * 1024 * 1024,
    )


def parse_json_body(raw: bytes) -> Any:
    """A request body as REST reads it: a UTF-8 byte-order mark is skipped (RFC 8259 lets a
    parser ignore it), and an escaped lone surrogate (`"\\ud800"`) is kept, so that the field
    rules refuse it with their own message instead of the whole body being malformed."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc):
            raise ValueError(str(exc)) from None
    try:
        return json.loads(raw)  # the standard library keeps lone surrogates
    except (ValueError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def _refusal(
    checked: CheckedDocument, operation_name: str | None, request_id: str, production: bool
) -> Response | None:
    """The answer to a document that must not run (None when it may): a syntax error, errors
    of the limits and of validation, no operation to run (several without `operationName`
    is a request error, GraphQL spec §6.1), or a subscription."""
    document = checked.document
    if document is None:  # a syntax error
        return _errors_response(checked.errors, request_id, production)
    if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
        return _document_error("The document contains no operation")
    if checked.errors:
        return _errors_response(checked.errors, request_id, production)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        if operation_name is not None:
            return _document_error(f"Unknown operation named {operation_name!r}")
        return _document_error("Must provide operation name if query contains multiple operations")
    if operation.operation is GraphQLOperationType.SUBSCRIPTION:
        return _document_error("Subscriptions are not supported: send a query or a mutation")
    return None


def _errors_response(errors: list[GraphQLError], request_id: str, production: bool) -> Response:
    formatted = [
        format_error(error, request_id=request_id, production=production)[0] for error in errors
    ]
    return _json_response({"errors": formatted})


def _bad_request(message: str) -> Response:
    return error_response(render_error, ValidationFailed({"body": message}))


def _document_error(message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
    return _json_response(body)


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


async def _read_request(request: Request) -> GraphQLRequest | Response:
    """The GraphQL request in the body, or the 4xx that refuses it."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in _JSON_TYPES:
        refusal = UnsupportedMediaType("Content-Type must be application/json")
        return error_response(render_error, refusal)
    try:
        data = parse_json_body(await request.body())
    except ValueError as exc:
        return _bad_request(f"Malformed JSON: {exc}")
    if not isinstance(data, dict):
        return _bad_request("The body must be a JSON object (batching is not supported)")
    query = data.get("query")
    variables = data.get("variables")
    operation_name = data.get("operationName")
    if not isinstance(query, str) or not query.strip():
        return _bad_request("`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        return _bad_request("`variables` must be an object")
    if operation_name is not None and not isinstance(operation_name, str):
        return _bad_request("`operationName` must be a string")
    return GraphQLRequest(query, variables, operation_name)


class GraphQLEndpoint:
    """GET (the IDE page, development only) and POST /graphql."""

    def __init__(self, settings: Settings) -> None:
        self.schema = build_gateway_schema(settings)
        self.documents = document_checker(settings, self.schema)
        self.fast = FastPath(self.schema, self.documents) if settings.graphql_fast_path else None
        self.production = settings.is_production

    async def graphql_get(self, request: Request) -> Response:
        accepts_html = "text/html" in request.headers.get("accept", "")
        if not self.production and accepts_html and "query" not in request.query_params:
            return graphiql_page(request)
        refusal = MethodNotAllowed("Send GraphQL operations with POST", allow="POST")
        return error_response(render_error, refusal)

    async def graphql_post(self, request: Request) -> Response:
        principal = await authenticate(request)
        graphql_request = await _read_request(request)
        if isinstance(graphql_request, Response):
            return graphql_request
        operation_name = graphql_request.operation_name
        request.state.operation = operation_name
        request_id = getattr(request.state, "request_id", "")
        checked = await self.documents.prepare(graphql_request.query)
        refused = _refusal(checked, operation_name, request_id, self.production)
        if refused is not None:
            return refused
        context = Context(principal=principal, services=services(request))
        if self.fast is not None:
            answered = await self._run_fast(checked, graphql_request, context, request_id)
            if answered is not None:
                return answered
        return await self._execute(checked, graphql_request, context, request_id)

    async def _run_fast(
        self,
        checked: CheckedDocument,
        graphql_request: GraphQLRequest,
        context: Context,
        request_id: str,
    ) -> Response | None:
        """The fast path's answer; None when the standard path must answer (a bad argument,
        say: it answers errors too). An outage is answered here: the request is not run a
        second time to wait for the same exhausted pool."""
        assert self.fast is not None
        plan = self.fast.plan(checked, graphql_request.operation_name)
        if plan is None:
            return None
        try:
            data = await self.fast.run(plan, context, graphql_request.variables)
        except Unavailable as outage:
            return self._respond([outage.error], None, request_id)
        metrics.fast_path(answered=data is not None)
        return None if data is None else _json_response({"data": data})

    async def _execute(
        self,
        checked: CheckedDocument,
        graphql_request: GraphQLRequest,
        context: Context,
        request_id: str,
    ) -> Response:
        operation_name = graphql_request.operation_name
        token = current_document.set(checked)
        try:
            result = await self.schema.execute(
                graphql_request.query,
                variable_values=graphql_request.variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=_ALLOWED,
            )
        except CannotGetOperationTypeError:  # refused above already; kept as a safety net
            # Strawberry raises these before validation; they are the document's fault.
            if operation_name is None:
                return _document_error("The document contains no operation")
            return _document_error(f"Unknown operation named {operation_name!r}")
        except InvalidOperationTypeError:
            return _document_error("Subscriptions are not supported: send a query or a mutation")
        finally:
            current_document.reset(token)
        return self._respond(list(result.errors or []), result.data, request_id)

    def _respond(
        self, errors: list[GraphQLError], data: dict[str, Any] | None, request_id: str
    ) -> Response:
        payload: dict[str, Any] = {}
        status = 200
        if errors:
            entries = []
            for error in errors:
                entry, error_status = format_error(
                    error, request_id=request_id, production=self.production
                )
                entries.append(entry)
                status = max(status, error_status)
            payload["errors"] = entries
        # Errors with a path were raised while executing: then `data` is present, if null.
        # Errors before execution (syntax, validation, variables) come without it.
        if data is not None or not errors or any(e.path for e in errors):
            payload["data"] = data
        return _json_response(payload, status)


def mount_graphql(app: FastAPI, settings: Settings, renderers: ErrorRenderers) -> None:
    """POST /graphql (and GET, the IDE page), its errors rendered as GraphQL bodies."""
    endpoint = GraphQLEndpoint(settings)
    app.state.graphql_documents = endpoint.documents
    app.state.graphql_fast_path = endpoint.fast  # None when off; its counters say what it did
    renderers.mount("/graphql", render_error)
    router = APIRouter(tags=["graphql"])
    router.add_api_route("/graphql", endpoint.graphql_get, methods=["GET"], include_in_schema=False)
    router.add_api_route(
        "/graphql",
        endpoint.graphql_post,
        methods=["POST"],
        summary="GraphQL endpoint",
        description="POST {query, variables, operationName} as JSON. Explore the schema in "
        "GraphiQL (GET /graphql in a browser, development only).",
        responses=_OPENAPI_RESPONSES,
        openapi_extra={"requestBody": _OPENAPI_REQUEST},
    )
    app.include_router(router)

    from schema.websocket import mount_subscriptions

    mount_subscriptions(app, endpoint.schema, settings)


def _json_response(payload: dict[str, Any], status: int = 200) -> Response:
    try:
        body = orjson.dumps(payload)
    except TypeError:
        # A message quoting a value with a lone surrogate (a variable of the wrong type, say):
        # orjson refuses those; the standard library writes them as escapes.
        body = json.dumps(payload, default=str).encode()
    return Response(body, status_code=status, media_type="application/json")
