"""Shell: the policy manifests shipped with the agent (package data, read through
``importlib.resources``), parsed by the pure ``edge.policy.manifest``."""

from __future__ import annotations

from functools import cache
from importlib import resources

from edge.errors import PolicyError
from edge.policy.manifest import Manifest, parse_manifest


@cache
def list_versions() -> list[str]:
    """The policy versions shipped with the agent, sorted."""
    folder = resources.files("edge").joinpath("manifests")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


@cache
def manifest_text(version: str) -> str:
    if version not in list_versions():
        raise PolicyError(
            f"unknown policy version {version!r} (known: {', '.join(list_versions())})"
        )
    return resources.files("edge").joinpath("manifests", f"{version}.toml").read_text("utf-8")


@cache
def load_manifest(version: str) -> Manifest:
    """The manifest of a shipped version.

    Raises:
        PolicyError: unknown version or a malformed manifest file.
    """
    manifest = parse_manifest(manifest_text(version))
    if manifest.version != version:
        raise PolicyError(f"manifest file {version}.toml declares version {manifest.version!r}")
    return manifest


def manifest_or_reason(version: str) -> Manifest | str:
    """A shipped version's manifest, or why a device cannot accept it (a command's
    refusal: the sender's mistake, never an exception)."""
    known = list_versions()
    if version not in known:
        return f"unknown policy version {version!r} (known: {', '.join(known)})"
    try:
        return load_manifest(version)
    except PolicyError as err:
        return str(err)
