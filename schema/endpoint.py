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
import logging
import re
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
from app.core.errors import DomainError, ValidationFailed
from app.http import metrics
from app.http.deps import authenticate, services
from app.http.ui import graphiql_page
from schema import GatewaySchema, build_schema
from schema.context import Context
from schema.documents import CheckedDocument, DocumentChecker, PreparedDocument, current_document
from schema.fast import FastPath
from schema.limits import DocumentLimits, validation_rules

log = logging.getLogger("clients.graphql")

# graphql-core's suggestions ("Did you mean 'name'?") end at the first "?": names have none.
_ARGUMENT_ERROR = re.compile(r"^Argument '(\w+)'")
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")
# A variable value that cannot be coerced: "Variable '$f' has invalid value at .createdFrom: …"
_VARIABLE_ERROR = re.compile(
    r"^Variable '\$(\w+)' has invalid (?:default )?value(?: at ([^:]*))?: "
)
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
    checked: CheckedDocument, operation_name: str | None, request: Request, production: bool
) -> Response | None:
    """The answer to a document that must not run (None when it may): a syntax error, errors
    of the limits and of validation, no operation to run (several without `operationName`
    is a request error, GraphQL spec §6.1), or a subscription."""
    document = checked.document
    if document is None:  # a syntax error
        return _errors_response(checked.errors, request, production)
    if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
        return _document_error("The document contains no operation")
    if checked.errors:
        return _errors_response(checked.errors, request, production)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        if operation_name is not None:
            return _document_error(f"Unknown operation named {operation_name!r}")
        return _document_error("Must provide operation name if query contains multiple operations")
    if operation.operation is GraphQLOperationType.SUBSCRIPTION:
        return _document_error("Subscriptions are not supported: send a query or a mutation")
    return None


def _errors_response(errors: list[GraphQLError], request: Request, production: bool) -> Response:
    formatted = [_format_error(error, request, production)[0] for error in errors]
    return _json_response({"errors": formatted})


def _error_response(message: str, code: str, status: int) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _bad_request(message: str, status: int = 400) -> Response:
    body = {
        "errors": [
            {
                "message": "Invalid request parameters",
                "extensions": {
                    "code": "VALIDATION_ERROR",
                    "fields": [{"field": "body", "message": message}],
                },
            }
        ]
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _document_error(message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
    return Response(orjson.dumps(body), status_code=200, media_type="application/json")


def mount_graphql(app: FastAPI, settings: Settings) -> None:
    schema = build_gateway_schema(settings)
    documents = document_checker(settings, schema)
    app.state.graphql_documents = documents
    fast = FastPath(schema, documents) if settings.graphql_fast_path else None
    app.state.graphql_fast_path = fast  # None when off; its counters say what it answered
    production = settings.is_production
    router = APIRouter(tags=["graphql"])

    @router.get("/graphql", include_in_schema=False)
    async def graphql_get(request: Request) -> Response:
        accepts_html = "text/html" in request.headers.get("accept", "")
        if not production and accepts_html and "query" not in request.query_params:
            return graphiql_page(request)
        body = {
            "errors": [
                {
                    "message": "Send GraphQL operations with POST",
                    "extensions": {"code": "METHOD_NOT_ALLOWED"},
                }
            ]
        }
        return Response(
            orjson.dumps(body), 405, media_type="application/json", headers={"Allow": "POST"}
        )

    @router.post(
        "/graphql",
        summary="GraphQL endpoint",
        description="POST {query, variables, operationName} as JSON. Explore the schema in "
        "GraphiQL (GET /graphql in a browser, development only).",
        responses=_OPENAPI_RESPONSES,
        openapi_extra={"requestBody": _OPENAPI_REQUEST},
    )
    async def graphql_post(request: Request) -> Response:
        principal = await authenticate(request)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in _JSON_TYPES:
            return _error_response(
                "Content-Type must be application/json", "UNSUPPORTED_MEDIA_TYPE", 415
            )
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
        request.state.operation = operation_name
        checked = await documents.prepare(query)
        refused = _refusal(checked, operation_name, request, production)
        if refused is not None:
            return refused
        context = Context(principal=principal, services=services(request))
        if fast is not None and (plan := fast.plan(checked, operation_name)) is not None:
            data = await fast.run(plan, context, variables)
            metrics.fast_path(answered=data is not None)
            if data is not None:
                return _json_response({"data": data})
            # Not answered there (a bad argument, say): the standard path answers, errors too.
        token = current_document.set(checked)
        try:
            result = await schema.execute(
                query,
                variable_values=variables,
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
        payload: dict[str, Any] = {}
        status = 200
        if result.errors:
            errors = []
            for error in result.errors:
                formatted, error_status = _format_error(error, request, production)
                errors.append(formatted)
                status = max(status, error_status)
            payload["errors"] = errors
        # Errors with a path were raised while executing: then `data` is present, if null.
        # Errors before execution (syntax, validation, variables) come without it.
        if result.data is not None or not result.errors or any(e.path for e in result.errors):
            payload["data"] = result.data
        return _json_response(payload, status)

    app.include_router(router)

    from schema.websocket import mount_subscriptions

    mount_subscriptions(app, schema, settings)


def _json_response(payload: dict[str, Any], status: int = 200) -> Response:
    try:
        body = orjson.dumps(payload)
    except TypeError:
        # A message quoting a value with a lone surrogate (a variable of the wrong type, say):
        # orjson refuses those; the standard library writes them as escapes.
        body = json.dumps(payload, default=str).encode()
    return Response(body, status_code=status, media_type="application/json")


def _format_error(
    error: GraphQLError, request: Request, production: bool
) -> tuple[dict[str, Any], int]:
    original = error.original_error
    formatted: dict[str, Any] = dict(error.formatted)
    if production:
        # No field, argument or type suggestions: they would reveal the schema.
        formatted["message"] = _SUGGESTION.sub("", formatted["message"])
    if original is None:
        # Malformed or invalid GraphQL (syntax, unknown field, limits): the caller's mistake.
        formatted["extensions"] = {
            "code": "GRAPHQL_VALIDATION_FAILED",
            **(formatted.get("extensions") or {}),
        }
        return formatted, 200
    if isinstance(original, DomainError):
        ext: dict[str, Any] = {"code": original.code}
        if isinstance(original, ValidationFailed):
            ext["fields"] = [{"field": k, "message": m} for k, m in original.fields.items()]
        formatted["message"] = original.message
        formatted["extensions"] = ext
        # Faults of the service, not of the document, keep their HTTP status.
        return formatted, original.status if original.status in (429, 503) else 200
    if _is_coercion_error(error):
        # A value of the wrong shape (a bad DateTime, say): a bad argument. A variable's is
        # named after it ("$filter.createdFrom"); a literal's is somewhere in the query.
        message = formatted["message"]
        field = "variables" if message.startswith("Variable ") else "query"
        match = _VARIABLE_ERROR.match(message)
        argument = _ARGUMENT_ERROR.match(message)
        if match:
            field = f"${match[1]}{match[2] or ''}"
            message = message[match.end() :]
        elif argument:
            field = argument[1]
        formatted["extensions"] = {
            "code": "VALIDATION_ERROR",
            "fields": [{"field": field, "message": message}],
        }
        formatted["extensions"]["fields"][0]["message"] = _json_wording(message)
        formatted["message"] = ValidationFailed.message
        return formatted, 200
    # Unexpected: log it whole, show nothing internal.
    request_id = getattr(request.state, "request_id", "")
    log.error("unexpected GraphQL error", exc_info=original, extra={"request_id": request_id})
    masked = {
        "message": "Internal server error",
        "extensions": {"code": "INTERNAL_ERROR", "requestId": request_id},
    }
    if formatted.get("path") is not None:
        masked["path"] = formatted["path"]
    if formatted.get("locations") is not None:
        masked["locations"] = formatted["locations"]
    return masked, 200


# graphql-core words a few JSON values as Python does (None, True, False).
_PYTHON_VALUE = re.compile(r"(not to be|found:?) (None|True|False)(?=[.,;]|$)")
_JSON_NAMES = {"None": "null", "True": "true", "False": "false"}


def _json_wording(message: str) -> str:
    """`not to be None.` → `not to be null.`: values named as JSON names them."""
    return _PYTHON_VALUE.sub(lambda m: f"{m[1]} {_JSON_NAMES[m[2]]}", message)


def _is_coercion_error(error: GraphQLError) -> bool:
    # Variable values that fail scalar parsing carry the ValueError as original_error; an
    # argument refused while a field runs (a null variable for `first: Int!`) a GraphQLError.
    original = error.original_error
    return isinstance(original, GraphQLError) or (
        isinstance(original, ValueError) and not error.path
    )
