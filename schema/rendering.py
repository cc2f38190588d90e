"""GraphQL error bodies: every `errors` entry `/graphql` answers is built here.

- `render_error`: an error of the HTTP exchange (401, 405, 413, 429, 500, a body that is not
  a GraphQL request), as `{"errors": [{"message", "extensions": {"code", …}}]}`. The edge and
  the exception handlers use it for every path under /graphql (app.http.errors).
- `format_error`: an error graphql-core reports for a document (syntax, validation, variables,
  a resolver's exception), with the HTTP status it calls for.

Errors are classified by typed signals: no `original_error` (graphql-core's own syntax and
validation errors), a `DomainError`, a variable definition node (a variable that does not
coerce), or a `GraphQLError`/`ValueError` cause (an argument that does not coerce). Only the
parts graphql-core gives as text alone are read from the message: a variable's inner path
(".createdFrom") and an argument literal's name; and, in production, the "Did you mean"
suggestions are cut from messages (Strawberry does not pass graphql-core's
`hide_suggestions`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from graphql import GraphQLError, VariableDefinitionNode

from app.core.errors import DomainError, InternalError, Unauthorized, ValidationFailed

log = logging.getLogger("clients.graphql")

# graphql-core's suggestions ("Did you mean 'name'?") end at the first "?": names have none.
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")
# The inner path graphql-core prints into a variable's message ("… value at .createdFrom: …").
_VARIABLE_PATH = re.compile(r"^Variable '\$\w+' has invalid (?:default )?value(?: at ([^:]*))?: ")
_ARGUMENT_ERROR = re.compile(r"^Argument '(\w+)'")


def error_extensions(error: DomainError) -> dict[str, Any]:
    """`extensions` of a domain error: its code, and the fields of a validation error."""
    extensions: dict[str, Any] = {"code": error.code}
    if isinstance(error, ValidationFailed):
        extensions["fields"] = [{"field": k, "message": m} for k, m in error.fields.items()]
    if isinstance(error, InternalError):
        extensions["requestId"] = error.request_id
    return extensions


def render_error(error: DomainError) -> bytes:
    # The contract's GraphQL 401 body says only "Authentication required".
    message = Unauthorized.message if isinstance(error, Unauthorized) else error.message
    return orjson.dumps({"errors": [{"message": message, "extensions": error_extensions(error)}]})


def format_error(
    error: GraphQLError, *, request_id: str, production: bool
) -> tuple[dict[str, Any], int]:
    """One entry of `errors`, and the HTTP status it calls for (200 but for the service's
    own faults: 429 and 503)."""
    formatted: dict[str, Any] = dict(error.formatted)
    if production:
        # No field, argument or type suggestions: they would reveal the schema.
        formatted["message"] = _SUGGESTION.sub("", formatted["message"])
    original = error.original_error
    if original is None:
        # Malformed or invalid GraphQL (syntax, unknown field, limits): the caller's mistake.
        formatted["extensions"] = {
            "code": "GRAPHQL_VALIDATION_FAILED",
            **(formatted.get("extensions") or {}),
        }
        return formatted, 200
    if isinstance(original, DomainError):
        formatted["message"] = original.message
        formatted["extensions"] = error_extensions(original)
        # Faults of the service, not of the document, keep their HTTP status.
        return formatted, original.status if original.status in (429, 503) else 200
    if _is_coercion_error(error):
        field, message = _bad_value(error, formatted["message"])
        formatted["extensions"] = {
            "code": "VALIDATION_ERROR",
            "fields": [{"field": field, "message": _json_wording(message)}],
        }
        formatted["message"] = ValidationFailed.message
        return formatted, 200
    return _masked(error, formatted, request_id), 200


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


def _bad_value(error: GraphQLError, message: str) -> tuple[str, str]:
    """The field a value of the wrong shape belongs to (a variable is named after itself,
    "$filter.createdFrom"; a literal after its argument), and what is wrong with it."""
    variable = next((n for n in error.nodes or () if isinstance(n, VariableDefinitionNode)), None)
    if variable is not None:
        match = _VARIABLE_PATH.match(message)
        if match is None:
            return "variables", message
        return f"${variable.variable.name.value}{match[1] or ''}", message[match.end() :]
    argument = _ARGUMENT_ERROR.match(message)
    if argument:
        return argument[1], message
    return ("variables" if message.startswith("Variable ") else "query"), message


def _masked(error: GraphQLError, formatted: dict[str, Any], request_id: str) -> dict[str, Any]:
    """An unexpected error: logged whole, shown as nothing internal."""
    log.error(
        "unexpected GraphQL error", exc_info=error.original_error, extra={"request_id": request_id}
    )
    masked: dict[str, Any] = {
        "message": "Internal server error",
        "extensions": {"code": "INTERNAL_ERROR", "requestId": request_id},
    }
    if formatted.get("path") is not None:
        masked["path"] = formatted["path"]
    if formatted.get("locations") is not None:
        masked["locations"] = formatted["locations"]
    return masked
