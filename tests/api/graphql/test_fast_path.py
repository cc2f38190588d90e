"""The compiled fast path (schema/fast.py) answers exactly as the standard executor.

Two apps on one database: the module's own (fast path on, the default) and one with
GRAPHQL_FAST_PATH=false. A seeded generator writes a few hundred eligible documents (random
subsets and orders of fields, aliases, `__typename` anywhere, several root fields, arguments
as literals and as variables) over a few dozen varied clients; each document, with its
variables, must get the same status and byte-identical bodies from both apps. So must a list
of documents the fast path refuses (fragments, directives, mutations, invalid documents) or
gives back (bad arguments, a client not found). The fast app's counters show which path
answered every request, so no comparison passes by both apps taking the standard path.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from graphql import parse, specified_rules, validate
from strawberry.extensions import SchemaExtension

from app.clients.service import ClientService
from app.clients.types import Address, NewClient
from app.core.config import Settings
from app.db.database import Database
from app.main import create_app
from schema import build_schema
from schema.endpoint import build_gateway_schema, document_checker, document_rules
from schema.fast import KNOWN_EXTENSIONS, FastPath
from tests.conftest import make_settings
from tests.support import Key, create_key, new_rfc, unique_team

GENERATED = 300  # eligible documents in the generated corpus
SEED = 20240615

CLIENT_LEAVES = [
    "id",
    "name",
    "legalName",
    "rfc",
    "rfcCheckDigitValid",
    "email",
    "phone",
    "livemode",
    "createdAt",
    "updatedAt",
    "taxSystem",
    "cfdiUse",
    "metadata",
    "cfdiName",
]
ADDRESS_LEAVES = [
    "street",
    "exterior",
    "interior",
    "neighborhood",
    "city",
    "municipality",
    "state",
    "zipCode",
    "country",
]
PAGE_INFO_LEAVES = ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"]
REQUEST_ID = re.compile(rb'"requestId":"[0-9a-f]*"')
BENCHMARK = "{ clients(first: 100) { nodes { id name legalName rfc email phone createdAt } } }"


# -- two apps, one database -------------------------------------------------------------------


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    asgi = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield asgi, http
    finally:
        await asgi.app.state.services.db.dispose()


@pytest.fixture(scope="module")
async def standard(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The same app with GRAPHQL_FAST_PATH=false: Strawberry's executor for everything."""
    async with serving(make_settings(settings.database_url, graphql_fast_path=False)) as (
        asgi,
        http,
    ):
        assert asgi.app.state.graphql_fast_path is None
        yield http


@pytest.fixture(scope="module")
def fast(app: Any) -> FastPath:
    path: FastPath = app.app.state.graphql_fast_path
    assert path is not None, "GRAPHQL_FAST_PATH is on by default"
    return path


@dataclass
class World:
    """A team with varied clients, and values to filter and page them by."""

    key: Key
    other_key: Key  # another team: its cursors are refused
    ids: list[str]
    rfcs: list[str]
    emails: list[str]
    created: list[str]  # createdAt values as the API returns them
    cursors: list[str]  # real endCursors of the unfiltered list
    other_cursor: str


NAMES = [
    "José Pérez Ñúñez",
    "María García López",
    "Ángel Öztürk",
    "Zoë Ærø Ñandú",
    "Comercializadora del Norte",
    "Émilie Dubois",
    "ACME",
    "Tortillería La Güera",
    "Ōsaka Trading",
    'Quote "Marks" & \\Backslash',
    "Niño Jesús",
    "Abarrotes Doña Chuy",
]
ADDRESSES: list[Address | None] = [
    None,
    Address(city="Mérida"),
    Address(
        street="Av. Juárez 12, int. 3",
        city="Ciudad de México",
        state="CDMX",
        zip_code="06000",
        country="MX",
    ),
    Address(
        street="Calle 5 de Mayo",
        exterior="12",
        interior="3-A",
        neighborhood="Zona Centro",
        municipality="Aguascalientes",
        zip_code="20000",
    ),
    Address(street="1 Market St", city="San Francisco", zip_code="94105-1234", country="US"),
    Address(state="Jalisco"),
]


@pytest.fixture(scope="module")
async def world(app: Any, db: Database, client: httpx.AsyncClient) -> World:
    key = await create_key(db, team=unique_team("fast"))
    other_key = await create_key(db, team=unique_team("fast-other"))
    service = app.app.state.services.clients
    rng = random.Random(SEED)
    for i in range(36):
        name = NAMES[i % len(NAMES)]
        generic = i in (7, 19)  # two clients share the generic RFC
        moral = i % 4 == 0
        # Régimen, use and metadata varied: ready clients, clients with issues, none at all.
        tax_system = None if i % 3 == 1 else "616" if generic else "601" if moral else "612"
        data = NewClient(
            name=f"{name} {i}" if i % 5 else name,
            rfc="XAXX010101000" if generic else new_rfc(moral=moral),
            legal_name=None if i % 3 else f"{name} S.A. de C.V.",
            email=None if i % 4 == 1 else f"Cliente.{i}@Ejemplo.MX",
            phone=None if i % 2 else f"+52 55 1234 {i:04d}",
            address=rng.choice(ADDRESSES),
            tax_system=tax_system,
            cfdi_use=None if i % 5 == 2 else "S01" if generic else "G03",
            metadata={"erp": f"E-{i}", "nota": 'con "comillas" y ñ'} if i % 4 == 3 else None,
        )
        await service.create(principal=key.principal, data=data)
    await service.create(principal=other_key.principal, data=NewClient(name="Ajena", rfc=new_rfc()))

    async def nodes(http_key: Key, first: int) -> dict[str, Any]:
        query = (
            f"{{ clients(first: {first}) {{ nodes {{ id rfc email createdAt }} "
            "edges { cursor } } }"
        )
        response = await client.post("/graphql", json={"query": query}, headers=http_key.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["data"]["clients"]
        return result

    mine = await nodes(key, 100)
    theirs = await nodes(other_key, 1)
    assert len(mine["nodes"]) == 36
    return World(
        key=key,
        other_key=other_key,
        ids=[n["id"] for n in mine["nodes"]],
        rfcs=sorted({n["rfc"] for n in mine["nodes"]}),
        emails=sorted({n["email"] for n in mine["nodes"] if n["email"]}),
        created=[n["createdAt"] for n in mine["nodes"]],
        cursors=[e["cursor"] for e in mine["edges"]],
        other_cursor=theirs["edges"][0]["cursor"],
    )


# -- the generator ----------------------------------------------------------------------------


def literal(value: Any) -> str:
    """A GraphQL literal (JSON string escapes are GraphQL's too)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


@dataclass
class Document:
    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    path: str = "fast"  # "fast" (served), "fallback" (planned, given back), "standard"
    label: str = ""


@dataclass
class Variables:
    definitions: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    names: Iterator[int] = field(default_factory=itertools.count)

    def use(self, rng: random.Random, type_: str, value: Any) -> str:
        name = f"v{next(self.names)}"
        if rng.random() < 0.15 and value is not None:  # a default, left out of `variables`
            self.definitions.append(f"${name}: {type_} = {literal(value)}")
        else:
            self.definitions.append(f"${name}: {type_}")
            self.values[name] = value
        return f"${name}"


class Generator:
    def __init__(self, rng: random.Random, world: World) -> None:
        self.rng = rng
        self.world = world

    def keyed(self, items: list[tuple[str, str]], typename: bool = True) -> str:
        """Selections (name, text after the name) with unique response keys: some aliased,
        some to another field's name, and `__typename` somewhere."""
        rng = self.rng
        if typename and rng.random() < 0.35:
            items.insert(rng.randrange(len(items) + 1), ("__typename", ""))
        used: set[str] = set()
        out = []
        pool = [n for n, _ in items] + ["a", "b", "_x", "node", "Client", "k9"]
        for name, rest in items:
            key = name
            if rng.random() < 0.3 or name in used:
                free = [p for p in pool if p not in used and p != name]
                key = rng.choice(free) if free else f"k{len(used)}"
            if key in used:
                key = f"{key}_{len(used)}"
            used.add(key)
            prefix = f"{key}: " if key != name else ""
            out.append(f"{prefix}{name}{rest}")
        return " ".join(out)

    def subset(self, names: list[str]) -> list[str]:
        picked = self.rng.sample(names, self.rng.randint(1, len(names)))
        return picked

    def client(self, typename: bool = True) -> str:
        items = [(n, "") for n in self.subset(CLIENT_LEAVES)]
        if self.rng.random() < 0.4:
            address = " ".join(self.subset(ADDRESS_LEAVES))
            if self.rng.random() < 0.3:
                address += " __typename"
            items.insert(self.rng.randrange(len(items) + 1), ("address", f" {{ {address} }}"))
        return self.keyed(items, typename)

    def connection(self) -> str:
        rng = self.rng
        parts: list[tuple[str, str]] = []
        if rng.random() < 0.7:
            parts.append(("nodes", f" {{ {self.client()} }}"))
        if rng.random() < 0.4:
            edge = [("cursor", "")] if rng.random() < 0.7 else []
            if not edge or rng.random() < 0.7:
                edge.append(("node", f" {{ {self.client()} }}"))
            rng.shuffle(edge)
            parts.append(("edges", f" {{ {self.keyed(edge)} }}"))
        if rng.random() < 0.4:
            parts.append(("pageInfo", f" {{ {' '.join(self.subset(PAGE_INFO_LEAVES))} }}"))
        if rng.random() < 0.35 or not parts:
            parts.append(("totalCount", ""))
        rng.shuffle(parts)
        return self.keyed(parts)

    def filter_value(self) -> dict[str, Any]:
        rng, w = self.rng, self.world
        f: dict[str, Any] = {}
        if rng.random() < 0.4:
            f["name"] = rng.choice(
                ["jos", "JOSÉ", "perez", "garcía", "s.a.", "zzz nada", "ñ", "  maria  ", "doña"]
            )
        if rng.random() < 0.15:
            rfc = rng.choice([*w.rfcs, "XAXX010101000"])
            f["rfc"] = rfc.lower() if rng.random() < 0.3 else rfc
        if rng.random() < 0.15:
            f["email"] = rng.choice(w.emails).upper()
        if rng.random() < 0.15:
            f["taxSystem"] = rng.choice(["601", "612", "616", "605"])
        if rng.random() < 0.15:
            f["invoiceReady"] = rng.random() < 0.5
        if rng.random() < 0.3:
            low, high = sorted(rng.sample(range(len(w.created)), 2))
            start, end = w.created[high], w.created[low]  # newest first: high is older
            start = rng.choice([start, start.replace("Z", "+00:00"), start[:-1], start[:10]])
            if rng.random() < 0.6:
                f["createdFrom"] = start
            if rng.random() < 0.6:
                f["createdTo"] = end
        return f

    def arguments(self, variables: Variables) -> str:
        rng, w = self.rng, self.world
        args: list[str] = []

        def add(name: str, type_: str, value: Any) -> None:
            if rng.random() < 0.5:
                args.append(f"{name}: {variables.use(rng, type_, value)}")
            else:
                args.append(f"{name}: {literal(value)}")

        if rng.random() < 0.8:
            add("first", rng.choice(["Int!", "Int"]), rng.choice([1, 2, 3, 5, 10, 40, 100]))
        if rng.random() < 0.25:
            add("offset", "Int", rng.choice([0, 1, 3, 10, 35, 50, None]))
        if rng.random() < 0.25:
            add("after", "String", rng.choice([*w.cursors, None]))
        if rng.random() < 0.5:
            value = self.filter_value()
            choice = rng.random()
            if choice < 0.4:
                args.append(f"filter: {variables.use(rng, 'ClientFilter', value)}")
            elif choice < 0.6 and value:  # one variable per filter field
                types = {
                    "createdFrom": "DateTime",
                    "createdTo": "DateTime",
                    "invoiceReady": "Boolean",
                }
                inner = ", ".join(
                    f"{k}: {variables.use(rng, types.get(k, 'String'), v)}"
                    for k, v in value.items()
                )
                args.append(f"filter: {{{inner}}}")
            else:
                args.append(f"filter: {literal(value)}")
        rng.shuffle(args)
        return f"({', '.join(args)})" if args else ""

    def get_client(self, variables: Variables, client_id: str) -> str:
        rng = self.rng
        argument = (
            variables.use(rng, "ID!", client_id) if rng.random() < 0.5 else literal(client_id)
        )
        # `__typename` beside the fragments and in one would be one key twice: not eligible.
        typename = rng.random() < 0.6
        members = ["__typename"] if typename else []
        if rng.random() < 0.85:
            members.append(f"... on Client {{ {self.client(typename=not typename)} }}")
        if rng.random() < 0.6 or not members:
            members.append("... on NotFoundError { code message id }")
        rng.shuffle(members)
        return f"client(id: {argument}) {{ {' '.join(members)} }}"

    def document(self) -> Document:
        rng = self.rng
        variables = Variables()
        roots: list[tuple[str, str]] = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            roots.append(("clients", f"{self.arguments(variables)} {{ {self.connection()} }}"))
        path = "fast"
        if rng.random() < 0.15:
            found = rng.random() < 0.8
            client_id = rng.choice(self.world.ids) if found else "client_01J0000000000000000000000"
            path = "fast" if found else "fallback"  # a NotFoundError is the standard path's
            text = self.get_client(variables, client_id)
            name, rest = text.split("(", 1)
            roots.insert(rng.randrange(len(roots) + 1), (name, "(" + rest))
        body = self.keyed(roots)
        operation_name = None
        if variables.definitions or rng.random() < 0.3:
            operation_name = rng.choice([None, "Page"])
            header = f"query {operation_name or ''}"
            if variables.definitions:
                header += f"({', '.join(variables.definitions)})"
            query = f"{header} {{ {body} }}"
            if operation_name and rng.random() < 0.3:  # another operation beside it
                query += ' mutation Other { deleteClient(id: "x") { __typename } }'
        else:
            query = f"{{ {body} }}"
        return Document(query, variables.values or None, operation_name, path, "generated")


def corpus(world: World, settings: Settings) -> tuple[list[Document], int]:
    """GENERATED eligible documents (and two fixed ones), and how many generated documents
    were dropped for breaking a document limit (cost, aliases): those are not eligible."""
    schema = build_gateway_schema(settings)
    rules = [*specified_rules, *document_rules(settings)]
    generator = Generator(random.Random(SEED), world)
    documents: list[Document] = []
    dropped = 0
    while len(documents) < GENERATED:
        document = generator.document()
        if validate(schema._schema, parse(document.query), rules):
            dropped += 1
        else:
            documents.append(document)
    documents.append(Document(BENCHMARK, label="benchmark"))
    documents.append(Document("{ __typename }", label="root __typename only"))
    return documents, dropped


def refused(world: World) -> list[Document]:
    """Documents the fast path must not plan ("standard") or must give back ("fallback")."""
    w = world
    nodes = "{ nodes { id name } }"
    list_query = (
        "query L($first: Int!, $f: ClientFilter, $after: String, $offset: Int) "
        f"{{ clients(first: $first, filter: $f, after: $after, offset: $offset) {nodes} }}"
    )
    wide = " ".join([*CLIENT_LEAVES, "address { street city state zipCode country }"])
    costly = " ".join(f"c{i}: clients(first: 100) {{ nodes {{ {wide} }} }}" for i in range(3))
    many_aliases = " ".join(f"a{i}: id" for i in range(31))
    standard = [
        # fragments of every kind, directives
        "fragment F on Client { id name } { clients { nodes { ...F } } }",
        f"{{ clients {nodes} }} fragment Unused on Client {{ id }}",
        "{ clients { ... on ClientConnection { totalCount } } }",
        "{ clients { nodes { ... { id } } } }",
        "{ clients { nodes { ... on Client { id } } } }",
        '{ client(id: "x") { ... on Error { code message } } }',
        '{ client(id: "x") { ... on Client { ... on Client { id } } } }',
        "{ clients { nodes { id name @include(if: false) } } }",
        "{ clients { nodes { id @skip(if: true) name } } }",
        "query Q($s: Boolean!) { clients { totalCount @include(if: $s) } }",
        "query Q @deprecated { clients { totalCount } }",
        # the same response key twice (valid GraphQL, merged by graphql-core)
        "{ clients { nodes { id id } } }",
        "{ clients { nodes { name: email name: email } } }",
        "{ a: clients { totalCount } a: clients { totalCount } }",
        "{ clients { nodes { address { city } address { zipCode } } } }",
        # mutations and subscriptions (invalid inputs: nothing is written)
        'mutation { createClient(input: {name: "", rfc: "X"}) { __typename '
        "... on ValidationError { code message fields { field message } } } }",
        'mutation { deleteClient(id: "nope") { __typename ... on NotFoundError { code id } } }',
        "subscription { clients { totalCount } }",
        # introspection (allowed in development, but not the fast path's)
        "{ __schema { queryType { name } } }",
        '{ __type(name: "Client") { name } clients { totalCount } }',
        # invalid documents
        "{ clients { nodes { id nam } } }",
        "{ clients(last: 3) { totalCount } }",
        '{ clients(first: "ten") { totalCount } }',
        '{ clients(filter: {createdFrom: "yesterday"}) { totalCount } }',
        "{ clients { nodes { id } }",
        "{ clients { nodes } }",
        # Empty selections: graphql-core 3.3 parses them, Strawberry's depth rule fails on them.
        "{ clients { } }",
        "{ }",
        "{ clients { nodes { address } } }",
        "query Q($x: Int) { clients { totalCount } }",
        "query Q { clients(first: $undefined) { totalCount } }",
        "{ clients { totalCount } } { clients { totalCount } }",
        f"{{ clients {{ nodes {{ {many_aliases} }} }} }}",
        f"{{ {costly} }}",
        "{ clients { nodes { " + "id " * 2100 + "} } }",
        "",
        "   ",
    ]
    documents = [Document(q, path="standard", label="refused") for q in standard]
    documents += [
        Document(
            "query A { clients { totalCount } } query B { clients { nodes { id } } }",
            operation_name="C",
            path="standard",
            label="unknown operation",
        ),
        Document(
            'query A { clients { totalCount } } mutation B { deleteClient(id: "x") '
            "{ __typename } }",
            operation_name="B",
            path="standard",
            label="the mutation of two operations",
        ),
    ]
    fallback = [
        ("{ clients(first: 0) { totalCount } }", None),
        ("{ clients(first: 101) { nodes { id } } }", None),
        ("{ clients(first: -1, offset: -5) { nodes { id } } }", None),
        ("{ clients(offset: 10001) { nodes { id } } }", None),
        ('{ clients(after: "nope") { nodes { id } } }', None),
        (f'{{ clients(after: "{w.other_cursor}") {{ nodes {{ id }} }} }}', None),
        (f'{{ a: clients {{ totalCount }} b: clients(after: "{w.cursors[0]}x") {nodes} }}', None),
        (list_query, {"first": 0}),
        (list_query, {"first": 5, "offset": -1, "after": "bad"}),
        (list_query, {"first": 5, "f": {"createdFrom": "yesterday"}}),
        (list_query, {"first": 5, "f": {"createdFrom": "2030-01-01", "createdTo": "2020-01-01"}}),
        (list_query, {"first": 5, "f": {"name": "x" * 500}}),
        (list_query, {"first": "ten"}),
        (list_query, {}),
        (list_query, {"first": 5, "f": {"unknown": 1}}),
        ("query Q($n: Int) { clients(first: $n) { totalCount } }", {"n": None}),
        ('{ client(id: "nope") { __typename ... on NotFoundError { code message id } } }', None),
        (
            "query G($id: ID!) { client(id: $id) { __typename ... on Client { id } } }",
            {"id": "client_01J0000000000000000000000"},
        ),
    ]
    documents += [Document(q, v, path="fallback", label="given back") for q, v in fallback]
    return documents


# -- the comparison ---------------------------------------------------------------------------


async def compare(
    fast_http: httpx.AsyncClient,
    standard_http: httpx.AsyncClient,
    fast: FastPath,
    key: Key,
    document: Document,
) -> bytes:
    """Posts `document` to both apps; returns the (equal) body."""
    body: dict[str, Any] = {"query": document.query}
    if document.variables is not None:
        body["variables"] = document.variables
    if document.operation_name is not None:
        body["operationName"] = document.operation_name
    content = json.dumps(body, ensure_ascii=False).encode()
    headers = {**key.headers, "Content-Type": "application/json"}
    served, fell_back = fast.served, fast.fell_back
    quick = await fast_http.post("/graphql", content=content, headers=headers)
    path = {
        (1, 0): "fast",
        (0, 1): "fallback",
        (0, 0): "standard",
    }.get((fast.served - served, fast.fell_back - fell_back), "?")
    slow = await standard_http.post("/graphql", content=content, headers=headers)
    where = f"{document.label}: {document.query!r} variables={document.variables!r}"
    assert quick.status_code == slow.status_code, where
    assert quick.headers["content-type"] == slow.headers["content-type"], where
    # A masked fault names its own request; nothing else may differ.
    assert REQUEST_ID.sub(b"", quick.content) == REQUEST_ID.sub(b"", slow.content), (
        f"{where}\nfast:     {quick.text}\nstandard: {slow.text}"
    )
    assert path == document.path, f"{where}: answered by the {path} path, not {document.path}"
    return quick.content


async def test_generated_documents_answer_byte_for_byte_as_the_standard_executor(
    client: httpx.AsyncClient,
    standard: httpx.AsyncClient,
    fast: FastPath,
    world: World,
    settings: Settings,
) -> None:
    documents, dropped = corpus(world, settings)
    bodies = [await compare(client, standard, fast, world.key, d) for d in documents]
    # The corpus exercises what it claims to: mostly answers with clients in them.
    assert sum(b'"client_' in body for body in bodies) > GENERATED // 2
    assert sum(b":null" in body for body in bodies) > GENERATED // 4
    assert dropped < GENERATED // 4
    assert [d.path for d in documents].count("fast") > GENERATED * 3 // 4
    joined = " ".join(d.query for d in documents)
    for needle in ("$v", "edges", "pageInfo", "totalCount", "address", "__typename", "client("):
        assert needle in joined, needle
    assert any(d.operation_name for d in documents)
    assert sum(len(d.query.split(" clients")) > 2 for d in documents) > GENERATED // 10


async def test_refused_and_invalid_documents_answer_as_the_standard_executor(
    client: httpx.AsyncClient, standard: httpx.AsyncClient, fast: FastPath, world: World
) -> None:
    for document in refused(world):
        await compare(client, standard, fast, world.key, document)


async def test_malformed_bodies_never_reach_either_path(
    client: httpx.AsyncClient, standard: httpx.AsyncClient, fast: FastPath, world: World
) -> None:
    headers = {**world.key.headers, "Content-Type": "application/json"}
    for content in (b"{not json", b"[]", b'{"query": 5}', b'{"query": "{ x }", "variables": 1}'):
        served, fell_back = fast.served, fast.fell_back
        quick = await client.post("/graphql", content=content, headers=headers)
        slow = await standard.post("/graphql", content=content, headers=headers)
        assert (quick.status_code, quick.content) == (slow.status_code, slow.content)
        assert quick.status_code == 400
        assert (fast.served, fast.fell_back) == (served, fell_back)


async def test_production_answers_alike_and_refuses_introspection(
    settings: Settings, world: World
) -> None:
    """APP_ENV=production adds a validation rule (no introspection) and hides suggestions:
    the fast path validates with the same rules, so it plans exactly what production runs."""
    production = {"app_env": "production"}
    on = make_settings(settings.database_url, **production)
    off = make_settings(settings.database_url, graphql_fast_path=False, **production)
    documents = [
        Document(BENCHMARK, label="benchmark"),
        Document("{ __typename clients(first: 2) { totalCount } }", label="typename"),
        Document("{ __schema { queryType { name } } }", path="standard", label="introspection"),
        Document("{ clients { nodes { nam } } }", path="standard", label="suggestion"),
        Document("{ clients(first: 0) { totalCount } }", path="fallback", label="argument"),
    ]
    async with serving(on) as (asgi, quick), serving(off) as (_, slow):
        fast: FastPath = asgi.app.state.graphql_fast_path
        for document in documents:
            await compare(quick, slow, fast, world.key, document)


async def test_plans_are_cached_per_document_and_operation(fast: FastPath) -> None:
    query = "query A { clients { totalCount } } query B { clients { nodes { id } } }"
    a = fast.plan(query, "A")
    assert a is not None
    assert fast.plan(query, "A") is a
    assert fast.plan(query, "B") not in (None, a)
    assert fast.plan(query, None) is None  # two operations, none named: the standard path's
    assert fast.plan("{ clients { nodes { id id } } }", None) is None


# -- outages and extensions ------------------------------------------------------------------


def unreachable_clients(asgi: Any, directory: Any) -> Database:
    """Point the app's client service at a real database that cannot be opened (a directory
    where the SQLite file should be), keeping authentication on the working one."""
    services = asgi.app.state.services
    broken = Database(make_settings(f"sqlite+aiosqlite:///{directory}"))
    services.clients = ClientService(
        broken, services.clients.signer, services.idempotency, services.clients.outbox
    )
    return broken


async def test_an_outage_is_answered_at_once_as_the_standard_executor_answers_it(
    settings: Settings, world: World, tmp_path: Any
) -> None:
    """A 503 met on the fast path is answered there: the query is not run a second time on
    the standard path (which would wait again for the same exhausted pool)."""
    on = make_settings(settings.database_url)
    off = make_settings(settings.database_url, graphql_fast_path=False)
    headers = {**world.key.headers, "Content-Type": "application/json"}
    async with serving(on) as (quick_app, quick), serving(off) as (slow_app, slow):
        broken = [unreachable_clients(quick_app, tmp_path), unreachable_clients(slow_app, tmp_path)]
        fast: FastPath = quick_app.app.state.graphql_fast_path
        try:
            for query in ("{ clients(first: 2) { nodes { id } } }", "{ clients { totalCount } }"):
                before = (fast.served, fast.fell_back, fast.unavailable)
                quick_body = await quick.post("/graphql", json={"query": query}, headers=headers)
                slow_body = await slow.post("/graphql", json={"query": query}, headers=headers)
                assert quick_body.status_code == slow_body.status_code == 503
                assert quick_body.content == slow_body.content
                assert quick_body.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
                assert (fast.served, fast.fell_back, fast.unavailable) == (
                    before[0],
                    before[1],
                    before[2] + 1,
                )
        finally:
            for database in broken:
                await database.dispose()


class _Timing(SchemaExtension):
    """An extension the fast path does not know (metrics would look like this)."""

    def on_operation(self) -> Iterator[None]:
        yield


def test_an_unknown_extension_turns_the_fast_path_off(settings: Settings) -> None:
    known = build_gateway_schema(settings)
    assert {type(ext) for ext in known.get_extensions()} <= KNOWN_EXTENSIONS
    assert FastPath(known, document_checker(settings, known)).plan(BENCHMARK, None)
    extended = build_schema(extensions=[*known.extensions, _Timing])
    fast = FastPath(extended, document_checker(settings, extended))
    assert fast.plan(BENCHMARK, None) is None
