"""Pure: a policy version compiled into a manifest, parsed from its TOML file.

A manifest lists, row by row of the version's own text, which device fields it discloses
for which purpose, on which lawful basis, for how long, each with the words of the text
it relies on (``quote``) so that a test can find every citation in ``../shared/seeds/``.
Readings of ambiguous text are recorded in the file next to what they decide.

Parsing is pure; the shipped manifest files are read by ``edge.shell.shipped``.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from edge.errors import PolicyError
from edge.model import ConsentStatus, Purpose
from edge.policy.catalogue import AGENT_FIELDS, FieldName, field_of


class Basis(StrEnum):
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONSENT = "consent"
    AGENT = "agent"  # built in, not from any text: the agent's own, non-personal metadata


@dataclass(frozen=True, slots=True)
class Citation:
    seed_file: str
    row: str
    quote: str


@dataclass(frozen=True, slots=True)
class Clause:
    """One disclosure: ``field`` may leave for ``purpose`` on ``basis`` for ``retention``."""

    id: str
    purpose: Purpose
    field: FieldName
    basis: Basis
    retention: timedelta | None
    citation: Citation | None
    row_title: str = ""


@dataclass(frozen=True, slots=True)
class Reading:
    topic: str
    reading: str


AGENT_CLAUSE_ID = "agent#transparency"


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    seed_file: str
    language: str
    title: str
    clauses: tuple[Clause, ...]
    readings: tuple[Reading, ...]
    not_disclosed: Mapping[str, str]  # purpose -> why this version does not disclose it
    retention_notes: Mapping[str, str]
    digest: str
    _index: Mapping[tuple[Purpose, FieldName], Clause] = field(repr=False, compare=False)
    # Derived once: the gate asks these for every message.
    _disclosed: frozenset[Purpose] = field(init=False, repr=False, compare=False)
    _consent: frozenset[Purpose] = field(init=False, repr=False, compare=False)
    _audio: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        disclosed = frozenset(c.purpose for c in self.clauses)
        consent = frozenset(c.purpose for c in self.clauses if c.basis is Basis.CONSENT)
        audio = any(c.field is FieldName.AUDIO_TRACK for c in self.clauses)
        object.__setattr__(self, "_disclosed", disclosed)
        object.__setattr__(self, "_consent", consent)
        object.__setattr__(self, "_audio", audio)

    def clause_for(self, purpose: Purpose, name: FieldName) -> Clause | None:
        """The clause that lets ``name`` leave for ``purpose``, or None (deny)."""
        if purpose is Purpose.AGENT:
            if name in AGENT_FIELDS:
                return Clause(AGENT_CLAUSE_ID, Purpose.AGENT, name, Basis.AGENT, None, None)
            return None
        return self._index.get((purpose, name))

    def discloses(self, purpose: Purpose) -> bool:
        return purpose is Purpose.AGENT or purpose in self._disclosed

    def fields_for(self, purpose: Purpose) -> list[FieldName]:
        return sorted({c.field for c in self.clauses if c.purpose is purpose})

    def consent_purposes(self) -> list[Purpose]:
        """Purposes this version discloses on a consent basis, in enum order."""
        found = {c.purpose for c in self.clauses if c.basis is Basis.CONSENT}
        return [p for p in Purpose if p in found]

    def is_consent_purpose(self, purpose: Purpose) -> bool:
        return purpose in self._consent

    def discloses_audio(self) -> bool:
        return self._audio

    @property
    def longest_retention(self) -> timedelta:
        """The longest time any disclosed field may be kept (what audit records about
        messages must outlive)."""
        return max((c.retention for c in self.clauses if c.retention), default=timedelta(0))

    def enabled_purposes(self, consent: Mapping[str, str]) -> list[Purpose]:
        """Purposes that can send something now (consent snapshot: purpose -> "granted")."""
        return [
            p
            for p in Purpose
            if p is not Purpose.AGENT
            and self.discloses(p)
            and (not self.is_consent_purpose(p) or consent.get(p.value) == ConsentStatus.GRANTED)
        ]

    def disabled_summary(self) -> dict[str, str]:
        """Purposes this version does not disclose, and why (for birth and ``policy show``)."""
        return {
            p.value: self.not_disclosed.get(p.value, "not in this version's text")
            for p in Purpose
            if not self.discloses(p)
        }


def _require(table: Mapping[str, object], key: str, where: str, kind: type) -> object:
    value = table.get(key)
    if not isinstance(value, kind):
        raise PolicyError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def parse_manifest(text: str) -> Manifest:
    """Parse a manifest file's text.

    Raises:
        PolicyError: malformed TOML, an unknown field, purpose or basis, or a duplicate entry;
            the message names where (``rows[3].fields[1]``).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PolicyError(f"manifest is not valid TOML: {err}") from err
    version = str(_require(data, "version", "manifest", str))
    seed_file = str(_require(data, "seed_file", "manifest", str))
    retention = data.get("retention", {})
    if not isinstance(retention, dict):
        raise PolicyError("retention: expected a table")
    default_days = retention.get("default_days")
    days_by_purpose: dict[str, int] = {}
    notes: dict[str, str] = {}
    for key, spec in retention.items():
        if key in {"default_days", "default_note"}:
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("days"), int):
            raise PolicyError(f"retention.{key}: expected a table with integer days")
        if key not in Purpose.__members__.values():
            raise PolicyError(f"retention.{key}: unknown purpose")
        days_by_purpose[key] = int(spec["days"])
        notes[key] = str(spec.get("note", ""))
    if default_days is not None and not isinstance(default_days, int):
        raise PolicyError("retention.default_days: expected an integer")
    notes["default"] = str(retention.get("default_note", ""))
    clauses: list[Clause] = []
    index: dict[tuple[Purpose, FieldName], Clause] = {}
    rows = data.get("rows", [])
    if not isinstance(rows, list):
        raise PolicyError("rows: expected an array of tables")
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        if not isinstance(row, dict):
            raise PolicyError(f"{where}: expected a table")
        row_id = str(_require(row, "row", where, str))
        purpose_text = str(_require(row, "purpose", where, str))
        if purpose_text not in Purpose.__members__.values() or purpose_text == Purpose.AGENT:
            raise PolicyError(f"{where}.purpose: unknown purpose {purpose_text!r}")
        purpose = Purpose(purpose_text)
        basis_text = str(_require(row, "basis", where, str))
        if basis_text not in Basis.__members__.values() or basis_text == Basis.AGENT:
            raise PolicyError(f"{where}.basis: unknown lawful basis {basis_text!r}")
        basis = Basis(basis_text)
        title = str(row.get("title", ""))
        days = days_by_purpose.get(purpose.value, default_days)
        keep = timedelta(days=days) if isinstance(days, int) else None
        fields = row.get("fields", [])
        if not isinstance(fields, list) or not fields:
            raise PolicyError(f"{where}.fields: expected a non-empty array")
        for j, entry in enumerate(fields):
            fwhere = f"{where}.fields[{j}]"
            if not isinstance(entry, dict):
                raise PolicyError(f"{fwhere}: expected a table")
            name = field_of(entry.get("field"))
            if name is None or name in AGENT_FIELDS:
                raise PolicyError(f"{fwhere}.field: unknown device field {entry.get('field')!r}")
            quote = str(_require(entry, "quote", fwhere, str))
            clause = Clause(
                id=f"{version}#row{row_id}",
                purpose=purpose,
                field=name,
                basis=basis,
                retention=keep,
                citation=Citation(seed_file, row_id, quote),
                row_title=title,
            )
            if (purpose, name) in index:
                raise PolicyError(
                    f"{fwhere}: {name.value} is already disclosed for {purpose.value}"
                )
            index[(purpose, name)] = clause
            clauses.append(clause)
    readings = tuple(
        Reading(str(r.get("topic", "")), str(r.get("reading", "")))
        for r in data.get("readings", [])
        if isinstance(r, dict)
    )
    not_disclosed = data.get("not_disclosed", {})
    if not isinstance(not_disclosed, dict):
        raise PolicyError("not_disclosed: expected a table")
    for key in not_disclosed:
        if key not in Purpose.__members__.values():
            raise PolicyError(f"not_disclosed.{key}: unknown purpose")
    return Manifest(
        version=version,
        seed_file=seed_file,
        language=str(data.get("language", "")),
        title=str(data.get("title", "")),
        clauses=tuple(clauses),
        readings=readings,
        not_disclosed={str(k): str(v) for k, v in not_disclosed.items()},
        retention_notes=notes,
        digest=hashlib.sha256(text.encode()).hexdigest(),
        _index=index,
    )


def manifest_citations(manifest: Manifest) -> Iterable[Citation]:
    return (c.citation for c in manifest.clauses if c.citation is not None)
