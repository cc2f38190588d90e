"""Document limits, checked during validation (before any resolver runs): depth, aliases and
an estimated cost, the nodes a document can return, page sizes multiplied through nesting."""

from __future__ import annotations

from typing import Any

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
    Visitor,
    visit,
)
from strawberry.extensions.max_aliases import create_validator as aliases_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from app.clients.service import DEFAULT_LIMIT, MAX_LIMIT

# List fields and the argument that sizes them, with its default and maximum.
PAGED_FIELDS = {"clients": ("first", DEFAULT_LIMIT, MAX_LIMIT)}


def cost_validator(budget: int) -> type[ValidationRule]:
    class CostRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            doc = context.document
            fragments = {
                d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)
            }
            for definition in doc.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                cost = _selection_cost(definition.selection_set, fragments, set())
                if cost > budget:
                    context.report_error(
                        GraphQLError(
                            f"Query cost {cost} exceeds the budget of {budget}: ask for fewer "
                            "or smaller pages",
                            definition,
                            extensions={
                                "code": "QUERY_TOO_COSTLY",
                                "cost": cost,
                                "budget": budget,
                            },
                        )
                    )

    return CostRule


def _page_size(field: FieldNode) -> int:
    arg_name, default, maximum = PAGED_FIELDS[field.name.value]
    for arg in field.arguments or ():
        if arg.name.value == arg_name:
            if isinstance(arg.value, IntValueNode):
                return max(0, min(int(arg.value.value), maximum))
            return maximum  # a variable: assume the worst
    return default


def _selection_cost(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    visiting: set[str],
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            children = _selection_cost(sel.selection_set, fragments, visiting)
            if sel.name.value in PAGED_FIELDS:
                total += 1 + children * _page_size(sel)
            else:
                total += 1 + children
        elif isinstance(sel, InlineFragmentNode):
            total += _selection_cost(sel.selection_set, fragments, visiting)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            frag = fragments.get(name)
            if frag is not None and name not in visiting:  # cycles are refused elsewhere
                total += _selection_cost(frag.selection_set, fragments, visiting | {name})
    return total


def safe_depth_validator(max_depth: int) -> type[ValidationRule]:
    """Strawberry's depth rule, skipped for documents that spread an unknown fragment: it
    looks fragments up without checking (a KeyError, so a 500), and graphql-core's
    KnownFragmentNames rule already refuses such documents with a proper message."""
    depth_rule = depth_validator(max_depth, None, None)

    class DepthRule(depth_rule):  # type: ignore[misc, valid-type]
        def __init__(self, context: ValidationContext) -> None:
            # Documents other rules refuse anyway, and on which this one would crash.
            if _unknown_fragment_spread(context.document) or _empty_selection(context.document):
                ValidationRule.__init__(self, context)
            else:
                super().__init__(context)

    return DepthRule


def _unknown_fragment_spread(document: DocumentNode) -> bool:
    known = {d.name.value for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    spreads: set[str] = set()

    class Spreads(Visitor):
        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            spreads.add(node.name.value)

    visit(document, Spreads())
    return not spreads <= known


def _empty_selection(document: DocumentNode) -> bool:
    found = False

    class Empty(Visitor):
        def enter_selection_set(self, node: SelectionSetNode, *_: Any) -> None:
            nonlocal found
            found = found or not node.selections

    visit(document, Empty())
    return found


class NoEmptySelectionSets(ValidationRule):
    """`{ clients { } }`: graphql-core 3.3 parses it, the GraphQL grammar does not allow it."""

    def enter_selection_set(self, node: SelectionSetNode, *_: Any) -> None:
        if not node.selections:
            self.report_error(GraphQLError("Selection sets must not be empty", node))


def validation_rules(*, max_depth: int, max_aliases: int, max_cost: int) -> list[Any]:
    """Built once per process: the validation cache keys on the rule classes."""
    return [
        NoEmptySelectionSets,
        safe_depth_validator(max_depth),
        aliases_validator(max_aliases),
        cost_validator(max_cost),
    ]
