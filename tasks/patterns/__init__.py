"""Regex extraction patterns: first-person statements in a user message turned into facts about the user.

blocks (regex building blocks), spans (value spans), context (coreference), rules (the rule tables and
their triggers) and matchers (running them on a message).
"""

from tasks.patterns.context import Context, Fact
from tasks.patterns.matchers import classify_pet, match_message
from tasks.patterns.rules import MEMBER_RULES, RULES, TRIGGERS

__all__ = ["Context", "Fact", "MEMBER_RULES", "RULES", "TRIGGERS", "classify_pet", "emitted_fact_types",
           "match_message"]


def emitted_fact_types() -> frozenset[str]:
    """Every fact type the rule tables can emit (the family, pet and name matchers' types included)."""
    simple = {r.fact_type for rules in RULES.values() for r in rules}
    members = {ftype for _, ftype, *_ in MEMBER_RULES}
    # match_family writes family_name (and pet_name for a pet's 'his name is'); match_pets pet_name, pet_kind
    # and pet_breed.
    return frozenset(simple | members | {"family_name", "pet_name", "pet_kind", "pet_breed"})
