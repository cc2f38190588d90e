"""The private Strawberry API schema/fast.py and schema/documents.py rely on, as they use it.

strawberry-graphql is pinned to the tested minor range in pyproject.toml; when an upgrade
moves or changes any of these, this test fails before the fast path silently misbehaves
(the differential suite in tests/api/graphql/test_fast_path.py then says how).
"""

from __future__ import annotations

import inspect

from graphql import GraphQLSchema, parse, specified_rules
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import StrawberryArgument, convert_arguments

from app.core.config import Settings
from schema import GatewaySchema
from schema.endpoint import build_gateway_schema
from schema.types import ClientConnection


def _schema() -> tuple[GatewaySchema, GraphQLSchema]:
    settings = Settings(secret_key="test")
    schema = build_gateway_schema(settings)
    return schema, schema._schema


def test_the_graphql_core_schema_and_its_back_references() -> None:
    _, core = _schema()
    assert isinstance(core, GraphQLSchema)
    connection = core.type_map["ClientConnection"]
    definition = connection.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
    assert definition.origin is ClientConnection


def test_validate_document_takes_a_schema_a_document_and_rules() -> None:
    _, core = _schema()
    assert list(inspect.signature(validate_document).parameters) == [
        "schema",
        "document",
        "validation_rules",
    ]
    assert validate_document(core, parse("{ clients { totalCount } }"), specified_rules) == []
    assert validate_document(core, parse("{ nope }"), specified_rules)


def test_convert_arguments_and_the_field_arguments() -> None:
    schema, _ = _schema()
    field = schema.get_field_for_type("clients", "Query")
    assert field is not None
    assert all(isinstance(argument, StrawberryArgument) for argument in field.arguments)
    parameters = inspect.signature(convert_arguments).parameters
    assert list(parameters)[:2] == ["value", "arguments"]
    assert {"scalar_registry", "config"} <= set(parameters)
    converted = convert_arguments(
        {"first": 3},
        field.arguments,
        scalar_registry=schema.schema_converter.scalar_registry,
        config=schema.config,
    )
    assert converted["first"] == 3


def test_extension_hooks_the_fast_path_knows_of() -> None:
    # FastPath reads `schema.get_extensions()` and `config.default_resolver`; an extension's
    # hooks are these (a new hook kind would need a look at the allow-list).
    schema, _ = _schema()
    assert schema.config.default_resolver is getattr
    assert all(isinstance(ext, SchemaExtension) for ext in schema.get_extensions())
    hooks = {name for name in vars(SchemaExtension) if name.startswith("on_") or name == "resolve"}
    assert hooks == {
        "on_operation",
        "on_validate",
        "on_parse",
        "on_execute",
        "on_stream_result",
        "resolve",
    }
