"""GraphQL documents, parsed and checked once per query text, kept in an LRU bounded by bytes.

Invariants:
- Every document a request sends is parsed with the token limit, then held to the document
  limits (schema/limits.py, linear in its size), and only a document within them reaches
  graphql-core's validation rules (some of which are quadratic in repeated fields). So the
  work on any document is bounded by the token limit (graphql-core's parser, about 20-100 µs
  a token, is the largest part).
- A document not in the cache is checked in a worker thread, at most CHECKS_AT_ONCE at a
  time, so the event loop goes on serving other requests while one is checked (the
  interpreter hands it the GIL every few milliseconds).
- The cache holds at most `max_bytes` of estimated weight (the query text, its syntax tree
  and the fast path's plans of it); a document heavier than a sixteenth of that, or whose
  text is over MAX_CACHED_QUERY, is checked and not kept. Memory does not grow with the
  number or the size of distinct documents.
- Entries are shared by the standard path (through `PreparedDocument`) and the fast path
  (its plans live in `CheckedDocument.plans`): one parse, one validation per document.
"""

from __future__ import annotations

import asyncio
import sys
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.limits import DocumentLimits, limit_errors

# Bytes a parsed document keeps per token (nodes, locations, the token list), measured with
# tracemalloc on graphql-core 3.3 (about 350 to 650): the weight errs on the heavy side.
_BYTES_PER_TOKEN = 700
# Longer query texts are checked and never kept: legitimate documents are a few KiB, and a
# cache of large transient texts fragments the heap (the RSS grows though the cache is bounded).
MAX_CACHED_QUERY = 32 * 1024
# Documents checked in worker threads at the same time (per process): more would only share
# the GIL with the event loop more thinly.
CHECKS_AT_ONCE = 2


@dataclass(eq=False)
class CheckedDocument:
    """A query text, its syntax tree (None when it does not parse) and everything found wrong
    with it: syntax, limits or validation errors. Valid when `errors` is empty."""

    query: str
    document: DocumentNode | None
    errors: list[GraphQLError]
    weight: int
    plans: dict[str | None, Any] = field(default_factory=dict)  # the fast path's, by operation


class DocumentChecker:
    """Parse, limits, validation: once per distinct query text, in a byte-bounded LRU."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        rules: Sequence[type[ASTValidationRule]],
        limits: DocumentLimits,
        max_tokens: int,
        max_bytes: int,
    ) -> None:
        self._schema = schema
        self._rules = tuple(rules)
        self._limits = limits
        self._max_tokens = max_tokens
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // 16
        self._entries: OrderedDict[str, CheckedDocument] = OrderedDict()
        self.bytes = 0  # the weight of what the cache holds now
        self._checks: asyncio.Semaphore | None = None  # made in the event loop, when first used

    async def prepare(self, query: str) -> CheckedDocument:
        """`check`, with the work on a new document done off the event loop."""
        entry = self._cached(query)
        if entry is not None:
            return entry
        if self._checks is None:
            self._checks = asyncio.Semaphore(CHECKS_AT_ONCE)
        async with self._checks:
            entry = await asyncio.to_thread(self._check, query)
        self._keep(entry)  # the cache is only touched from the event loop
        return entry

    def check(self, query: str) -> CheckedDocument:
        """The checked document for `query`, from the cache or checked now."""
        entry = self._cached(query)
        if entry is None:
            entry = self._check(query)
            self._keep(entry)
        return entry

    def _cached(self, query: str) -> CheckedDocument | None:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def _keep(self, entry: CheckedDocument) -> None:
        query = entry.query
        if (
            query not in self._entries
            and entry.weight <= self.max_entry_bytes
            and len(query) <= MAX_CACHED_QUERY
        ):
            self._entries[query] = entry
            self.bytes += entry.weight
            while self.bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= evicted.weight

    def __len__(self) -> int:
        return len(self._entries)

    def _check(self, query: str) -> CheckedDocument:
        text_weight = sys.getsizeof(query)
        try:
            document = parse(query, max_tokens=self._max_tokens)
        except GraphQLError as error:
            return CheckedDocument(query, None, [error], text_weight)
        except RecursionError:
            too_deep = GraphQLError("Syntax Error: Document is nested too deeply.")
            return CheckedDocument(query, None, [too_deep], text_weight)
        # The plans of the fast path are about as heavy as the tree: counted twice.
        weight = text_weight + 2 * _BYTES_PER_TOKEN * _token_count(document)
        errors = limit_errors(document, self._limits)
        if not errors:
            errors = validate_document(self._schema, document, self._rules)
        return CheckedDocument(query, document, errors, weight)


def _token_count(document: DocumentNode) -> int:
    count = 0
    token = document.loc.start_token if document.loc else None
    while token is not None:
        count += 1
        token = token.next
    return count


# The document the endpoint checked for the request being executed (see PreparedDocument).
current_document: ContextVar[CheckedDocument | None] = ContextVar("current_document", default=None)


class PreparedDocument(SchemaExtension):
    """Hands Strawberry the document the endpoint already parsed and validated, so that its
    executor neither parses nor validates again (it replaces ParserCache and ValidationCache:
    their caches count entries, not bytes)."""

    def on_parse(self) -> Iterator[None]:
        checked = current_document.get()
        context = self.execution_context
        if checked is not None and checked.query == context.query and not checked.errors:
            context.graphql_document = checked.document
        yield

    def on_validate(self) -> Iterator[None]:
        checked = current_document.get()
        context = self.execution_context
        if checked is not None and checked.document is context.graphql_document:
            context.pre_execution_errors = []  # already validated: Strawberry skips it
        yield
