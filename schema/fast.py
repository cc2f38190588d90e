"""A compiled fast path for plain read queries: `clients` and `client`.

graphql-core completes a result one leaf at a time (a page of 100 clients with 7 fields is
700 completions, most of the CPU of the request). For a query whose selections are plain
fields this module compiles the document once into a plan, kept per operation name with the
checked document (schema/documents.py: one cache, bounded by bytes), and runs the plan instead:

- Eligible: a query operation that the endpoint's document checker found valid; no
  fragments (except `... on T` directly under `client`) and no directives anywhere; no
  response key selected twice in one selection set; root fields `clients`, `client` and
  `__typename`; below them only fields without resolvers (and ClientConnection's `nodes`,
  `edges` and `totalCount`) and `__typename`, aliased or not.
- Running a plan: graphql-core coerces the variables and arguments, Strawberry converts them
  to the resolver's Python arguments, the functions behind the resolvers run
  (`list_clients`, `find_client`, `ClientConnection.make_edges`/`count_matches`), and the
  plan copies the selected values into dicts in selection order, each leaf coerced by its
  own GraphQL type, exactly as graphql-core completes it. A list's `nodes` are read straight
  from the page's database rows with `CLIENT_FROM_RECORD`, the table `ClientType.from_record`
  builds every client with: only the selected fields are computed (an unselected
  `invoiceReadiness` costs nothing), and no object is built per row.
- Everything else goes to the standard executor: documents that are not eligible, and every
  request whose plan raised anything (a bad argument, a client not found, an outage, a
  surprise). Nothing is rendered here, so every error has one code path; queries only read,
  so running one again is safe.
- Except an outage (ServiceUnavailable): running the query again would wait a second time
  for the same exhausted pool or unreachable server, so `run` raises `Unavailable` with the
  error located as graphql-core locates it, and the endpoint answers the 503 at once.
- Only a schema whose extensions are all known here (`KNOWN_EXTENSIONS`) has a fast path. Any
  other extension (metrics, tracing: `on_operation`, `on_execute`, `resolve` hooks) makes it
  step aside, so it is never silently skipped.
- It uses Strawberry's private API (`convert_arguments`, the schema converter's
  back-reference, `_schema`): strawberry-graphql is pinned to the tested minor release in
  pyproject.toml, and tests/unit/graphql/test_strawberry_api.py fails when it moves.

tests/api/test_graphql_fast_path.py checks both paths answer byte for byte the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from graphql import (
    BREAK,
    DocumentNode,
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLID,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLString,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    Undefined,
    VariableDefinitionNode,
    Visitor,
    get_operation_ast,
    visit,
)
from graphql.error import located_error
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import StrawberryArgument, convert_arguments

from app.core.errors import DomainError, ServiceUnavailable
from schema.context import Context
from schema.documents import PreparedDocument
from schema.resolvers import find_client, list_clients
from schema.types import CLIENT_FROM_RECORD, ClientConnection

if TYPE_CHECKING:
    from schema import GatewaySchema
    from schema.documents import CheckedDocument, DocumentChecker

log = logging.getLogger("clients.graphql")

# Root fields the plan can run: the functions behind their Strawberry resolvers.
# The extensions the plan stands in for (the endpoint parses and validates every document
# before either path runs it). Any other extension turns the fast path off.
KNOWN_EXTENSIONS: frozenset[type[SchemaExtension]] = frozenset({PreparedDocument})

_ROOT_CALLS: dict[str, Callable[..., Awaitable[Any]]] = {
    "clients": list_clients,
    "client": find_client,
}


async def _edges(connection: ClientConnection, ctx: Context) -> Any:
    return connection.make_edges(ctx.services.clients)


async def _node_records(connection: ClientConnection, ctx: Context) -> Any:
    return connection.records


async def _total_count(connection: ClientConnection, ctx: Context) -> Any:
    return await connection.count_matches(ctx.services.clients)


# Fields with resolvers the plan runs too (only on the object a root field returns).
_RESOLVED: dict[tuple[str, str], Callable[[Any, Context], Awaitable[Any]]] = {
    ("ClientConnection", "edges"): _edges,
    ("ClientConnection", "nodes"): _node_records,
    ("ClientConnection", "totalCount"): _total_count,
}
# Resolved fields whose items are records, not objects: each field of their items is read
# with its function of a record (the table ClientType.from_record itself builds with).
_RECORD_ITEMS: dict[tuple[str, str], dict[str, Callable[[Any], Any]]] = {
    ("ClientConnection", "nodes"): CLIENT_FROM_RECORD,
}

# Leaf types whose output coercion returns a value of this Python type unchanged.
_IDENTITY = ((GraphQLString, str), (GraphQLID, str), (GraphQLBoolean, bool))

# Kinds of planned fields.
_TYPENAME, _LEAF, _OBJECT, _LIST = range(4)


class _NotEligible(Exception):
    """The document has something the plan does not do: the standard path answers it."""


class Unavailable(Exception):
    """The database is unavailable: answer now, do not run the request again."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error  # located at the field that met the outage


class _NotFast(Exception):
    """Something only the standard path answers right: variables that do not coerce, a null
    in a non-null field."""


class _Field(NamedTuple):
    key: str  # the response key: alias or name
    get: Callable[[Any], Any] | None  # reads the value from the parent; None: `__typename`
    # or resolved
    kind: int
    arg: Any  # _TYPENAME: the type name; _LEAF: (identity type, coerce); else a _Selection
    nullable: bool


class _Selection(NamedTuple):
    fields: tuple[_Field, ...]
    resolved: tuple[tuple[str, Callable[[Any, Context], Awaitable[Any]], FieldNode], ...]


class _Root(NamedTuple):
    key: str
    typename: str | None  # root `__typename`: nothing to run
    call: Callable[..., Awaitable[Any]] | None
    field: GraphQLField | None
    node: FieldNode
    arguments: list[StrawberryArgument]
    selections: dict[type, _Selection]  # by the Python class of the result (unions)


class Plan(NamedTuple):
    variable_definitions: tuple[VariableDefinitionNode, ...]
    roots: tuple[_Root, ...]


class FastPath:
    """Plans for eligible documents (kept with the checked document, in the endpoint's
    byte-bounded cache of documents: schema/documents.py) and their runs.

    `served` and `fell_back` count requests answered here and plans that gave the request
    back to the standard path, `unavailable` the outages answered at once; the tests read
    them to know which path answered.
    """

    def __init__(self, schema: GatewaySchema, documents: DocumentChecker) -> None:
        self.schema = schema
        self._graphql = schema._schema
        self._documents = documents
        # A schema with an extension not known here (it may time, trace or wrap every
        # operation or field), or that reads fields some other way, must run every request
        # through Strawberry: then nothing is eligible.
        self._enabled = schema.config.default_resolver is getattr and all(
            type(ext) in KNOWN_EXTENSIONS for ext in schema.get_extensions()
        )
        self.served = 0
        self.fell_back = 0
        self.unavailable = 0

    def plan(self, document: CheckedDocument | str, operation_name: str | None) -> Plan | None:
        """The plan of an eligible document (checked by the endpoint, or a query text);
        None sends the request to the standard path."""
        if isinstance(document, str):
            document = self._documents.check(document)
        plans = document.plans
        if operation_name not in plans:
            plans[operation_name] = self._compile(document, operation_name)
        plan: Plan | None = plans[operation_name]
        return plan

    async def run(
        self, plan: Plan, context: Context, variables: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """`data` of the response; None when the standard path must answer instead.
        Raises Unavailable when the database is."""
        try:
            data = await self._run(plan, context, variables)
        except Unavailable:
            self.unavailable += 1
            raise
        except Exception as exc:
            # Rendered by the standard path when it runs the request again.
            self.fell_back += 1
            expected = (DomainError, GraphQLError, _NotFast)
            if not isinstance(exc, expected):
                log.warning("GraphQL fast path gave up: %r", exc, exc_info=exc)
            return None
        self.served += 1
        return data

    # -- compiling --------------------------------------------------------------------------

    def _compile(self, checked: CheckedDocument, operation_name: str | None) -> Plan | None:
        document = checked.document
        if not self._enabled or document is None or checked.errors:
            return None  # invalid documents are the standard path's to answer
        try:
            if _has_fragments_or_directives(document):
                return None
            operation = get_operation_ast(document, operation_name)
            if operation is None or operation.operation is not OperationType.QUERY:
                return None
            roots = self._roots(operation.selection_set)
        except (GraphQLError, _NotEligible):
            return None
        except Exception:
            # Whatever broke here is the standard path's to meet and report.
            log.debug("GraphQL fast path: no plan", exc_info=True)
            return None
        return Plan(tuple(operation.variable_definitions or ()), roots)

    def _roots(self, selection_set: SelectionSetNode) -> tuple[_Root, ...]:
        query_type = self._graphql.query_type
        assert query_type is not None
        roots = []
        keys: set[str] = set()
        for node in _fields(selection_set.selections):
            key = _response_key(node, keys)
            name = node.name.value
            if name == "__typename":
                roots.append(_Root(key, query_type.name, None, None, node, [], {}))
                continue
            call = _ROOT_CALLS.get(name)
            strawberry_field = self.schema.get_field_for_type(name, query_type.name)
            if call is None or strawberry_field is None or strawberry_field.extensions:
                raise _NotEligible(name)
            field = query_type.fields[name]
            if not isinstance(field.type, GraphQLNonNull) or node.selection_set is None:
                raise _NotEligible(name)
            result_type = field.type.of_type
            selections: dict[type, _Selection] = {}
            if isinstance(result_type, GraphQLUnionType):
                for member in result_type.types:
                    selections[_origin(member)] = self._selection(
                        member, _union_member_fields(node.selection_set, member, result_type)
                    )
            elif isinstance(result_type, GraphQLObjectType):
                selections[_origin(result_type)] = self._selection(
                    result_type, _fields(node.selection_set.selections), root=True
                )
            else:
                raise _NotEligible(name)
            arguments = strawberry_field.arguments
            roots.append(_Root(key, None, call, field, node, arguments, selections))
        return tuple(roots)

    def _selection(
        self,
        parent: GraphQLObjectType,
        nodes: list[FieldNode],
        *,
        root: bool = False,
        getters: dict[str, Callable[[Any], Any]] | None = None,
    ) -> _Selection:
        """The plan of one selection set. `getters`: the parent objects are records, read
        with these functions (by Python field name) instead of attributes."""
        fields: list[_Field] = []
        resolved = []
        keys: set[str] = set()
        for node in nodes:
            key = _response_key(node, keys)
            name = node.name.value
            if name == "__typename":
                fields.append(_Field(key, None, _TYPENAME, parent.name, False))
                continue
            get: Callable[[Any], Any] | None
            item_getters = None
            resolver = _RESOLVED.get((parent.name, name))
            strawberry_field = self.schema.get_field_for_type(name, parent.name)
            if resolver is not None and root:
                get = None
                resolved.append((key, resolver, node))
                item_getters = _RECORD_ITEMS.get((parent.name, name))
            elif strawberry_field is not None and getters is not None:
                get = getters[strawberry_field.python_name]
            elif strawberry_field is not None and strawberry_field.is_basic_field:
                get = attrgetter(strawberry_field.python_name)
            else:
                raise _NotEligible(f"{parent.name}.{name}")
            if node.arguments:
                raise _NotEligible(f"{parent.name}.{name}(…)")
            shape = self._shape(parent.fields[name].type, node.selection_set, item_getters)
            kind, arg, nullable = shape
            fields.append(_Field(key, get, kind, arg, nullable))
        return _Selection(tuple(fields), tuple(resolved))

    def _shape(
        self,
        output: GraphQLOutputType,
        selection_set: SelectionSetNode | None,
        item_getters: dict[str, Callable[[Any], Any]] | None = None,
    ) -> tuple[int, Any, bool]:
        nullable = not isinstance(output, GraphQLNonNull)
        inner = output.of_type if isinstance(output, GraphQLNonNull) else output
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            identity = next((t for scalar, t in _IDENTITY if inner is scalar), None)
            return _LEAF, (identity, inner.coerce_output_value), nullable
        if selection_set is None:
            raise _NotEligible("a composite field without a selection")
        if isinstance(inner, GraphQLObjectType) and item_getters is None:
            return _OBJECT, self._selection(inner, _fields(selection_set.selections)), nullable
        if (
            isinstance(inner, GraphQLList)
            and isinstance(inner.of_type, GraphQLNonNull)
            and isinstance(inner.of_type.of_type, GraphQLObjectType)
        ):
            item = self._selection(
                inner.of_type.of_type, _fields(selection_set.selections), getters=item_getters
            )
            return _LIST, item, nullable
        raise _NotEligible(str(output))

    # -- running ----------------------------------------------------------------------------

    async def _run(
        self, plan: Plan, context: Context, variables: dict[str, Any] | None
    ) -> dict[str, Any]:
        coerced = get_variable_values(self._graphql, plan.variable_definitions, variables or {})
        if isinstance(coerced, list):
            raise _NotFast("variables")
        data: dict[str, Any] = {}
        schema = self.schema
        for root in plan.roots:
            if root.call is None:
                data[root.key] = root.typename
                continue
            assert root.field is not None
            raw = get_argument_values(root.field, root.node, coerced)
            kwargs = convert_arguments(
                raw,
                root.arguments,
                scalar_registry=schema.schema_converter.scalar_registry,
                config=schema.config,
            )
            value = await _located(root.call(context, **kwargs), root.node, [root.key])
            selection = root.selections[type(value)]
            resolved = {
                key: await _located(resolve(value, context), node, [root.key, key])
                for key, resolve, node in selection.resolved
            }
            data[root.key] = _walk(value, selection, resolved)
        return data


async def _located(call: Awaitable[Any], node: FieldNode, path: list[str | int]) -> Any:
    """`call`'s value; an outage raised as Unavailable, located where graphql-core would."""
    try:
        return await call
    except ServiceUnavailable as exc:
        raise Unavailable(located_error(exc, [node], path)) from exc


_NOTHING_RESOLVED: dict[str, Any] = {}


def _walk(obj: Any, selection: _Selection, resolved: dict[str, Any]) -> dict[str, Any]:
    """`obj` completed with `selection`, as graphql-core completes it (the hot loop)."""
    out: dict[str, Any] = {}
    for key, get, kind, arg, nullable in selection.fields:
        if kind == _TYPENAME:
            out[key] = arg
            continue
        value = resolved[key] if get is None else get(obj)
        if value is None:
            if not nullable:
                raise _NotFast(f"null for {key}")
            out[key] = None
        elif kind == _LEAF:
            identity, coerce = arg
            if type(value) is not identity:
                value = coerce(value)
                if value is None or value is Undefined:
                    raise _NotFast(f"{key} coerced to null")
            out[key] = value
        elif kind == _OBJECT:
            out[key] = _walk(value, arg, _NOTHING_RESOLVED)
        else:
            out[key] = [
                _walk(item, arg, _NOTHING_RESOLVED) if item is not None else _null_item(key)
                for item in value
            ]
    return out


def _null_item(key: str) -> Any:
    raise _NotFast(f"null item in {key}")


def _origin(object_type: GraphQLObjectType) -> type:
    """The Python class Strawberry built `object_type` from."""
    origin: type = object_type.extensions[GraphQLCoreConverter.DEFINITION_BACKREF].origin
    return origin


def _fields(selections: Sequence[SelectionNode]) -> list[FieldNode]:
    if not all(isinstance(s, FieldNode) for s in selections):
        raise _NotEligible("a fragment")
    return list(selections)  # type: ignore[arg-type]


def _union_member_fields(
    selection_set: SelectionSetNode, member: GraphQLObjectType, union: GraphQLUnionType
) -> list[FieldNode]:
    """The fields selected for one member of a union: its own `... on Member` fragments and
    the fields beside them (only `__typename` validates there), in document order."""
    nodes: list[FieldNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            nodes.append(selection)
            continue
        if not isinstance(selection, InlineFragmentNode) or selection.type_condition is None:
            raise _NotEligible("a fragment without a type")
        condition = selection.type_condition.name.value
        if condition not in {t.name for t in union.types}:
            raise _NotEligible("a fragment on an interface")
        if condition == member.name:
            nodes.extend(_fields(selection.selection_set.selections))
    return nodes


def _response_key(node: FieldNode, seen: set[str]) -> str:
    # graphql-core merges fields selected twice under one key; the plan does not.
    key = node.alias.value if node.alias else node.name.value
    if key in seen:
        raise _NotEligible(f"{key} selected twice")
    seen.add(key)
    return key


def _has_fragments_or_directives(document: DocumentNode) -> bool:
    finder = _FragmentOrDirective()
    visit(document, finder)
    return finder.found


class _FragmentOrDirective(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def _found(self, *_: Any) -> Any:
        self.found = True
        return BREAK

    enter_directive = enter_fragment_definition = enter_fragment_spread = _found
