"""docs/mqtt.md may not drift from docs/asyncapi.yaml: same topics, same retained flags,
only consent states the schema allows."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "mqtt.md").read_text(encoding="utf-8")
API = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))


def _table() -> dict[str, str]:
    """Topic suffix -> the page's retained column."""
    rows = re.findall(r"^\| `devices/SN0001/([^`]+)` \| (yes|no) \|", DOC, re.MULTILINE)
    return dict(rows)


def _retained() -> dict[str, str]:
    """Topic suffix -> retained per the AsyncAPI operations."""
    out: dict[str, str] = {}
    for op in API["operations"].values():
        name = op["channel"]["$ref"].rsplit("/", 1)[1]
        suffix = API["channels"][name]["address"].split("{serial}/", 1)[1]
        out[suffix] = "yes" if op["bindings"]["mqtt"]["retain"] else "no"
    return out


def test_the_page_lists_exactly_the_contract_s_topics_with_their_retained_flag() -> None:
    assert _table() == _retained()


def test_consent_states_shown_are_those_of_the_schema() -> None:
    allowed = set(API["components"]["schemas"]["consentStatus"]["enum"])
    shown = set(re.findall(r'"consent": \{"\w+": "(\w+)"', DOC))
    assert shown, "the birth example shows no consent state"
    assert shown <= allowed
