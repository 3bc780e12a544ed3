"""Manifests: every citation is in its seed text; parsing fails loudly on bad files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.cli.policy import disclosures_markdown
from edge.errors import PolicyError
from edge.model import Purpose
from edge.policy.catalogue import FieldName
from edge.policy.manifest import Basis, manifest_citations, parse_manifest
from edge.shell.shipped import list_versions, load_manifest
from tests.conftest import running_under_ci

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ROOT.parent / "shared" / "seeds"
VERSIONS = ["en-2020-01-19", "en-2023-01-10", "fr-2020-02-13", "pl-2021-09-13", "th-2020-01-19"]


def _normalise(text: str) -> str:
    """Table cells in the seeds wrap lines and pad with spaces; compare words, not layout."""
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def seeds() -> Path:
    if not SEEDS.is_dir():
        if running_under_ci():
            pytest.fail(f"seed texts missing at {SEEDS}")
        pytest.skip(f"seed texts not found at {SEEDS}")
    return SEEDS


def test_manifest_ships_the_five_versions() -> None:
    assert list_versions() == VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_manifest_every_citation_occurs_in_its_seed(version: str, seeds: Path) -> None:
    manifest = load_manifest(version)
    text = _normalise((seeds / manifest.seed_file).read_text(encoding="utf-8"))
    citations = list(manifest_citations(manifest))
    assert citations
    missing = [(c.row, c.quote) for c in citations if _normalise(c.quote) not in text]
    assert missing == []


def test_manifest_citation_check_catches_a_made_up_quote(seeds: Path) -> None:
    text = _normalise((seeds / "003_49cf42f951bbf583.txt").read_text(encoding="utf-8"))
    assert _normalise("car license number") in text
    assert _normalise("licence plate photographs") not in text


@pytest.mark.parametrize(
    ("version", "purpose", "expected"),
    [
        ("fr-2020-02-13", Purpose.NOTIFICATION, False),  # the text stops after row 9
        ("fr-2020-02-13", Purpose.CLOUD_STORAGE, False),
        ("fr-2020-02-13", Purpose.DEVICE_STATUS, True),
        ("en-2020-01-19", Purpose.NOTIFICATION, True),
        ("en-2020-01-19", Purpose.DIAGNOSTICS, False),
        ("pl-2021-09-13", Purpose.DEVICE_AI, False),
        ("th-2020-01-19", Purpose.NOTIFICATION, True),
        ("en-2023-01-10", Purpose.DEVICE_AI, True),
        ("en-2023-01-10", Purpose.DEVICE_LOG, True),
    ],
)
def test_manifest_discloses_purposes_as_the_text_does(
    version: str, purpose: Purpose, expected: bool
) -> None:
    assert load_manifest(version).discloses(purpose) is expected


def test_manifest_only_en_2023_discloses_audio_plates_and_consent_purposes() -> None:
    for version in VERSIONS:
        manifest = load_manifest(version)
        is_2023 = version == "en-2023-01-10"
        assert manifest.discloses_audio() is is_2023
        assert (
            manifest.clause_for(Purpose.DEVICE_AI, FieldName.PLATE_NUMBER) is not None
        ) is is_2023
        assert manifest.consent_purposes() == (
            [Purpose.AI_DETECTION, Purpose.DEVICE_AI, Purpose.DIAGNOSTICS, Purpose.DEVICE_LOG]
            if is_2023
            else []
        )


def test_manifest_alarm_retention_is_seven_days_where_stated() -> None:
    for version in ("en-2023-01-10", "pl-2021-09-13", "th-2020-01-19"):
        clause = load_manifest(version).clause_for(Purpose.NOTIFICATION, FieldName.ALARM_SNAPSHOT)
        assert clause is not None
        assert clause.retention is not None
        assert clause.retention.days == 7
        assert "7" in load_manifest(version).retention_notes["notification"]


def test_manifest_consent_rows_are_consent_based() -> None:
    manifest = load_manifest("en-2023-01-10")
    for purpose in (
        Purpose.AI_DETECTION,
        Purpose.DEVICE_AI,
        Purpose.DIAGNOSTICS,
        Purpose.DEVICE_LOG,
    ):
        assert {c.basis for c in manifest.clauses if c.purpose is purpose} == {Basis.CONSENT}


def test_manifest_records_readings_of_ambiguities() -> None:
    topics = {r.topic for v in VERSIONS for r in load_manifest(v).readings}
    assert "blank lawful-basis cells" in topics
    assert "truncated text" in topics
    assert "'and API logs' in §3" in topics


def _one_row(purpose: str = "add_device", basis: str = "contract", field: str = "model") -> str:
    return (
        'version = "x"\nseed_file = "s"\n[[rows]]\nrow = "1"\n'
        f'purpose = "{purpose}"\nbasis = "{basis}"\n'
        f'fields = [{{field = "{field}", quote = "q"}}]\n'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = 1", "manifest.version"),
        (_one_row(purpose="marketing"), "rows[0].purpose: unknown purpose"),
        (_one_row(basis="whim"), "rows[0].basis: unknown lawful basis"),
        (_one_row(field="gps"), "rows[0].fields[0].field: unknown device field 'gps'"),
        (_one_row(field="policy_version"), "unknown device field"),
        (_one_row() + _one_row().split("\n", 2)[2], "already disclosed"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_parse_manifest_refuses_malformed_files_with_path(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        parse_manifest(text)


def test_load_manifest_unknown_version_lists_known() -> None:
    with pytest.raises(PolicyError, match="known: en-2020-01-19"):
        load_manifest("de-2024-01-01")


def test_disclosures_doc_is_in_sync_with_manifests() -> None:
    doc = (ROOT / "docs" / "disclosures.md").read_text(encoding="utf-8")
    assert doc == disclosures_markdown(), (
        "run: python -m edge policy disclosures-md > docs/disclosures.md"
    )
