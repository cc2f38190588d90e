"""Document limits: depth, aliases, repeated fields and an estimated cost (the nodes a
document can return: page sizes multiplied through nesting, a count priced by what it may
have to count), checked before graphql-core's validation rules and before any resolver runs.

Invariant: every measure here takes time linear in the document's size. A fragment is
measured once and its measure reused at every spread of it (a document of 22 fragments that
each spread the next one twice measures 23 fragments, not 2**22 spreads); a fragment met
again while it is being measured (a cycle, which graphql-core refuses) counts as empty.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

from app.clients.service import DEFAULT_LIMIT, MAX_LIMIT

# List fields and the argument that sizes them, with its default and maximum.
PAGED_FIELDS = {"clients": ("first", DEFAULT_LIMIT, MAX_LIMIT)}
# Fields that count rows: priced by DocumentLimits.count_cost, whatever the page size.
COUNT_FIELDS = frozenset({"totalCount"})
# How often one response key may be selected in one selection set (fragments merged in):
# graphql-core compares every pair of them, so a thousand would cost half a million checks.
MAX_REPEATED_FIELDS = 20


@dataclass(frozen=True)
class DocumentLimits:
    max_depth: int
    max_aliases: int
    max_cost: int
    count_cost: int
    max_repeated_fields: int = MAX_REPEATED_FIELDS


class _Measure(NamedTuple):
    depth: int  # nesting of selection sets below this one (introspection fields not counted)
    aliases: int  # aliased fields, every fragment spread counted again
    cost: int  # nodes it can return, page sizes multiplied through
    counts: int  # the part of `cost` due to counts selected right here (not per node)


_EMPTY = _Measure(0, 0, 0, 0)


class _Walker:
    """Measures selection sets, each fragment once (see the module's invariant)."""

    def __init__(self, document: DocumentNode, limits: DocumentLimits) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.limits = limits
        self.measured: dict[str, _Measure] = {}
        self.keys: dict[str, Counter[str]] = {}
        self.in_progress: set[str] = set()
        self.repeated: tuple[str, int, FieldNode] | None = None

    def selection_set(self, node: SelectionSetNode | None) -> _Measure:
        if node is None:
            return _EMPTY
        depth = aliases = cost = counts = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                part = self.field(selection)
                if selection.name.value in COUNT_FIELDS:
                    counts += part.cost
            elif isinstance(selection, InlineFragmentNode):
                part = self.selection_set(selection.selection_set)
                counts += part.counts
            elif isinstance(selection, FragmentSpreadNode):
                part = self.fragment(selection.name.value)
                counts += part.counts
            else:  # pragma: no cover - the grammar has no other selection
                continue
            depth, aliases, cost = max(depth, part.depth), aliases + part.aliases, cost + part.cost
        self._count_keys(node)
        return _Measure(depth, aliases, cost, counts)

    def field(self, node: FieldNode) -> _Measure:
        children = self.selection_set(node.selection_set)
        name = node.name.value
        depth = 0
        if node.selection_set is not None and not name.startswith("__"):
            depth = 1 + children.depth
        if name in COUNT_FIELDS:
            cost = self.limits.count_cost
        elif name in PAGED_FIELDS:
            # A count runs once per page, the rest once per node of it.
            per_node = children.cost - children.counts
            cost = 1 + per_node * _page_size(node) + children.counts
        else:
            cost = 1 + children.cost
        return _Measure(depth, children.aliases + (node.alias is not None), cost, 0)

    def fragment(self, name: str) -> _Measure:
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.in_progress:
            return _EMPTY  # unknown or cyclic: graphql-core's rules refuse the document
        self.in_progress.add(name)
        measure = self.measured[name] = self.selection_set(definition.selection_set)
        self.in_progress.discard(name)
        return measure

    def _count_keys(self, node: SelectionSetNode) -> None:
        if self.repeated is not None:
            return
        for key, count in self.merged_keys(node).items():
            if count > self.limits.max_repeated_fields:
                self.repeated = (key, count, _first_field(node, key))
                return

    def merged_keys(self, node: SelectionSetNode) -> Counter[str]:
        """Response keys of one selection set as graphql-core merges it (inline fragments and
        each distinct fragment spread included), with how often each is selected."""
        keys: Counter[str] = Counter()
        spreads: set[str] = set()
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                keys[_key(selection)] += 1
            elif isinstance(selection, InlineFragmentNode):
                keys.update(self.merged_keys(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                spreads.add(selection.name.value)
        for name in spreads:
            keys.update(self.fragment_keys(name))
        return keys

    def fragment_keys(self, name: str) -> Counter[str]:
        if name not in self.keys:
            definition = self.fragments.get(name)
            self.keys[name] = Counter()  # a cycle meets an empty one
            if definition is not None:
                self.keys[name] = self.merged_keys(definition.selection_set)
        return self.keys[name]


def limit_errors(document: DocumentNode, limits: DocumentLimits) -> list[GraphQLError]:
    """Everything over a limit in `document`, in linear time; [] when it is within them."""
    walker = _Walker(document, limits)
    errors: list[GraphQLError] = []
    aliases = 0
    try:
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            measure = walker.selection_set(definition.selection_set)
            aliases += measure.aliases
            errors.extend(_operation_errors(definition, measure, limits))
    except RecursionError:
        return [GraphQLError("The document nests too deeply")]
    if aliases > limits.max_aliases:
        errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {limits.max_aliases}"))
    if walker.repeated is not None:
        key, count, node = walker.repeated
        errors.append(
            GraphQLError(
                f"'{key}' is selected {count} times in one selection set; at most "
                f"{limits.max_repeated_fields} are allowed",
                node,
            )
        )
    return errors


def _operation_errors(
    definition: OperationDefinitionNode, measure: _Measure, limits: DocumentLimits
) -> list[GraphQLError]:
    errors = []
    if measure.depth > limits.max_depth:
        name = definition.name.value if definition.name else "anonymous"
        errors.append(
            GraphQLError(
                f"'{name}' exceeds maximum operation depth of {limits.max_depth}", definition
            )
        )
    if measure.cost > limits.max_cost:
        errors.append(
            GraphQLError(
                f"Query cost {measure.cost} exceeds the budget of {limits.max_cost}: ask for "
                "fewer or smaller pages, or fewer counts",
                definition,
                extensions={
                    "code": "QUERY_TOO_COSTLY",
                    "cost": measure.cost,
                    "budget": limits.max_cost,
                },
            )
        )
    return errors


def _page_size(field: FieldNode) -> int:
    arg_name, default, maximum = PAGED_FIELDS[field.name.value]
    for arg in field.arguments or ():
        if arg.name.value == arg_name:
            if isinstance(arg.value, IntValueNode):
                # At least 1: `first: 0` is refused when it runs, but its selections are
                # still validated, and that work must be paid for.
                return max(1, min(int(arg.value.value), maximum))
            return maximum  # a variable: assume the worst
    return default


def _first_field(node: SelectionSetNode, key: str) -> Any:
    for selection in node.selections:
        if isinstance(selection, FieldNode) and _key(selection) == key:
            return selection
    return node


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def limits_rule(limits: DocumentLimits) -> type[ValidationRule]:
    """The limits as a graphql-core validation rule (the checker runs them before the
    rules instead; this is for code that validates with graphql-core alone)."""

    class LimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            for error in limit_errors(context.document, limits):
                context.report_error(error)

    return LimitsRule


class NoEmptySelectionSets(ValidationRule):
    """`{ clients { } }`: graphql-core 3.3 parses it, the GraphQL grammar does not allow it."""

    def enter_selection_set(self, node: SelectionSetNode, *_: Any) -> None:
        if not node.selections:
            self.report_error(GraphQLError("Selection sets must not be empty", node))


def validation_rules(limits: DocumentLimits) -> list[Any]:
    """Built once per process: rules are compared by class."""
    return [NoEmptySelectionSets, limits_rule(limits)]
