"""Shell: the demo's summary table and HTML report, from the audit trail and the observer.

The numbers come from the two places a privacy officer would trust: the device's
hash-chained audit trail (what it decided) and an independent observer on the broker
(what arrived). Payload bytes never appear, except the received snapshots, shown as
thumbnails next to the camera's original to prove the plates were blurred.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.audit import AuditRecord
from edge.cli.policy import show_text
from edge.shell.audit_log import read_trail, verify_file
from edge.shell.shipped import load_manifest
from firmware_sim.leak_audit import AuditSummary
from firmware_sim.runner import RunRecord


@dataclass
class Summary:
    per_topic: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    plates_blurred: int = 0
    fallbacks: int = 0
    audio_refused: int = 0
    expired: int = 0
    purged: int = 0
    denied: int = 0
    queued: int = 0
    acked: int = 0
    delivered: int = 0
    audit_ok: bool = False
    audit_records: int = 0
    audit_problem: str = ""


def summarise(records: Sequence[RunRecord], audit_paths: Sequence[Path]) -> Summary:
    summary = Summary()
    for record in records:
        for message in record.messages:
            channel = message.topic.split("/", 2)[-1]
            summary.per_topic[channel] += 1
            if message.payload and channel not in {"availability", "birth"}:
                summary.delivered += 1
        summary.audio_refused += record.mic_refused
    trail: list[AuditRecord] = []
    for path in audit_paths:
        trail += [r for segment in read_trail(path) for r in segment.records]
        result = verify_file(path)
        summary.audit_records += result.checked
        summary.audit_ok = result.ok if not summary.audit_problem else False
        if not result.ok:
            summary.audit_problem = f"{path}: record {result.first_bad_seq}: {result.problem}"
    for entry in trail:
        counts = entry.counts
        for name, value in counts.items():
            if name.startswith("removed_"):
                summary.removed[name.removeprefix("removed_")] += value
        summary.plates_blurred += counts.get("regions_blurred", 0) + counts.get(
            "clip_regions_blurred", 0
        )
        summary.fallbacks += sum(
            v for k, v in counts.items() if k.startswith("anonymiser_fallback")
        )
        summary.audio_refused += counts.get("audio_tracks_stripped", 0)
        event = entry.event.value
        if event == "expired":
            summary.expired += 1
        elif event == "purged":
            summary.purged += 1
        elif event == "denied":
            summary.denied += 1
        elif event == "queued":
            summary.queued += 1
        elif event in {"acked", "unconfirmed"}:
            summary.acked += 1
    return summary


def summary_text(summary: Summary, audit: AuditSummary, wall_s: float) -> str:
    lines = ["", "Messages received by the observer, per topic:"]
    lines += [f"  {topic:<16} {count:>5}" for topic, count in sorted(summary.per_topic.items())]
    lines += ["", "Fields removed on the device, by reason:"]
    lines += [
        f"  {reason:<20} {count:>5}" for reason, count in sorted(summary.removed.items())
    ] or ["  (none)"]
    lines += [
        "",
        f"  plate regions blurred      {summary.plates_blurred:>6}",
        f"  anonymiser fallbacks       {summary.fallbacks:>6}",
        f"  audio refused (mic closed or track stripped) {summary.audio_refused:>3}",
        f"  messages denied whole      {summary.denied:>6}",
        f"  items expired (retention)  {summary.expired:>6}",
        f"  items purged (withdrawal)  {summary.purged:>6}",
        f"  queued -> acknowledged     {summary.queued:>6} -> {summary.acked}",
        f"  data messages delivered    {summary.delivered:>6} (observer)",
        "",
        f"Leak audit: {audit.checked} messages, {audit.images} images, {audit.plates} plates, "
        f"{audit.clips} clips checked: {len(audit.findings)} finding(s)",
    ]
    lines += [f"  FINDING [{f.scenario}] {f.topic}: {f.problem}" for f in audit.findings[:40]]
    verdict = "intact" if summary.audit_ok else f"BROKEN: {summary.audit_problem}"
    lines += [
        f"Audit trail: {summary.audit_records} records, hash chain {verdict}",
        f"Wall time: {wall_s:.1f} s",
        "",
    ]
    return "\n".join(lines)


def _thumb(image: np.ndarray, width: int = 360) -> str:
    height = round(image.shape[0] * width / image.shape[1])
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return base64.b64encode(data.tobytes()).decode() if ok else ""


def write_html(
    path: Path,
    records: Sequence[RunRecord],
    summary: Summary,
    audit: AuditSummary,
    versions: Sequence[str],
    wall_s: float,
) -> Path:
    pairs: list[tuple[str, str, str]] = []
    for record in records:
        for message in record.messages:
            if not message.topic.endswith("alarm/snapshot") or not message.payload:
                continue
            body = json.loads(message.payload)
            truth = record.alarms.get(body["created_at"])
            if truth is None or not truth.plate_boxes:
                continue
            jpeg = base64.b64decode(body["data"]["alarm_snapshot"]["b64"])
            received = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if received is None:
                continue
            original = truth.frame.copy()
            for box in truth.plate_boxes:
                cv2.rectangle(
                    original, (box.x, box.y), (box.x + box.w, box.y + box.h), (0, 0, 255), 2
                )
            pairs.append(
                (
                    f"{record.scenario} ({body['policy_version']})",
                    _thumb(original),
                    _thumb(received),
                )
            )
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td><img src='data:image/jpeg;base64,{a}'></td>"
        f"<td><img src='data:image/jpeg;base64,{b}'></td></tr>"
        for label, a, b in pairs[:8]
    )
    topics = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{c}</td></tr>"
        for t, c in sorted(summary.per_topic.items())
    )
    removed = "".join(
        f"<tr><td>{html.escape(r)}</td><td>{c}</td></tr>"
        for r, c in sorted(summary.removed.items())
    )
    disclosures = "".join(
        f"<h3>{html.escape(v)}</h3><pre>{html.escape(show_text(load_manifest(v)))}</pre>"
        for v in versions
    )
    findings = "".join(
        f"<li>[{html.escape(f.scenario)}] {html.escape(f.topic)}: {html.escape(f.problem)}</li>"
        for f in audit.findings
    )
    verdict = "intact" if summary.audit_ok else f"BROKEN: {html.escape(summary.audit_problem)}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>edge demo report</title>
<style>
body{{font-family:sans-serif;margin:2em;max-width:1100px}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}
pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}
.ok{{color:#070}} .bad{{color:#a00}}
</style></head><body>
<h1>Simulated doorbell: what left the device</h1>
<p>Wall time {wall_s:.1f} s.
Audit trail: {summary.audit_records} records, hash chain <b>{verdict}</b>.
Leak audit: {audit.checked} messages, {audit.images} images ({audit.plates} plates),
{audit.clips} clips:
<b class="{"ok" if not audit.findings else "bad"}">{len(audit.findings)} finding(s)</b>.</p>
<ul>{findings}</ul>
<h2>Snapshots: camera frame (plates marked) and what the broker received</h2>
<table><tr><th>scenario</th><th>camera</th><th>received</th></tr>{rows}</table>
<h2>Messages per topic</h2><table>{topics}</table>
<h2>Fields removed on the device, by reason</h2><table>{removed}</table>
<p>Plate regions blurred: {summary.plates_blurred}; anonymiser fallbacks: {summary.fallbacks};
audio refused: {summary.audio_refused}; expired: {summary.expired}; purged: {summary.purged};
queued {summary.queued}, acknowledged {summary.acked}.</p>
<h2>What each policy version lets leave</h2>{disclosures}
</body></html>"""
    path.write_text(page, encoding="utf-8")
    return path
