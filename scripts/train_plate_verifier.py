"""Rebuild the plate verifiers (edge/media/models/*.onnx) from the data.

The classical passes of ``edge.media.plate_candidates`` find every plate and much else.
Two CNNs look at each candidate's core (grey, 24x72) and say whether it is a plate: a
small one (``CONFIG``) judges most candidates; a larger one (``LARGE_CONFIG``, four times
the work per crop) judges the few large candidates instead, where a false plate costs the
picture most. They are trained on:

- the MIT-licensed Romanian dashcam frames of ``../shared/data/plates-ro`` (every plate
  boxed, so every candidate away from a box is a real street negative), except the
  held-out drives in ``hold_out``, which only measure;
- the same frames with plates of other styles (US 2:1, Mercosur, Thai two-line,
  light-on-dark) rendered and pasted over their real plates, with the frame's light,
  blur and noise;
- the simulator's own streets and close-ups (every size up to half the frame);
- for the large model, the same frames again with street clutter pasted in (fences,
  railings, window grids, slats, mesh, brick: ``render_clutter``), the large false plates
  of street photos that the drives hold too few of.

Never the AGPL ``plates-us`` photos: they only measure. Training needs the ``train`` extra
(torch, onnx), which neither README command installs:

    python3 -m venv .venv-train && .venv-train/bin/pip install -e '.[train]' torch==2.13.0
    .venv-train/bin/python scripts/train_plate_verifier.py --data ../shared/data/plates-ro

It takes about 25 minutes on 2 cores (``--model NAME`` rebuilds one) and writes each model
and its card (``NAME.json``: its config, the data counts, the model's SHA-256). A fixed
seed and deterministic kernels make a rerun on the same machine, with the same torch,
give the same weights; ``tests/unit/test_plate_model.py`` checks that the committed cards
match the configs here and the committed models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.media.plate_candidates import candidate_boxes  # noqa: E402
from edge.media.plate_verifier import MIN_JUDGED_HEIGHT_PX, crop_batch  # noqa: E402
from edge.model import Box  # noqa: E402
from firmware_sim.photos import read_plate_boxes  # noqa: E402
from firmware_sim.scene import (  # noqa: E402
    PlateStyle,
    render_plate_closeup,
    render_street,
)

CONFIG = {  # the verifier of every candidate: small and fast
    "seed": 15,
    "crop": [24, 72],
    "channels": [8, 16, 32, 32],
    "epochs": 14,
    "batch": 128,
    "lr": 0.003,
    "hold_out": ["day2", "day3"],
    "scales": [1.0, 0.5],
    "pastes_per_frame": 2,
    "synthetic_streets": 300,
    "synthetic_closeups": 400,
    "jitters_per_plate": 3,
    "max_negatives": 80000,
}
LARGE_CONFIG = {  # the second opinion on large candidates: four times the capacity
    "seed": 15,
    "crop": [24, 72],
    "channels": [16, 32, 64, 64],
    "epochs": 8,
    "batch": 128,
    "lr": 0.003,
    "hold_out": ["day2", "day3"],
    "scales": [1.0, 0.5],
    "pastes_per_frame": 2,
    "synthetic_streets": 300,
    "synthetic_closeups": 400,
    "jitters_per_plate": 3,
    "max_negatives": 120000,
    "clutter_per_frame": 1,
}
MODELS = {"plate_verifier": CONFIG, "plate_verifier_large": LARGE_CONFIG}
COLLECTION_KEYS = (  # what the crops depend on; the rest only changes the training
    "seed",
    "crop",
    "hold_out",
    "scales",
    "pastes_per_frame",
    "synthetic_streets",
    "synthetic_closeups",
    "jitters_per_plate",
)


@dataclass(frozen=True)
class Config:
    """One model's recipe (``CONFIG`` or ``LARGE_CONFIG``, recorded in its card)."""

    seed: int
    crop: list[int]
    channels: list[int]
    epochs: int
    batch: int
    lr: float
    hold_out: list[str]
    scales: list[float]
    pastes_per_frame: int
    synthetic_streets: int
    synthetic_closeups: int
    jitters_per_plate: int
    max_negatives: int
    clutter_per_frame: int = 0  # real frames with street clutter pasted in, per frame


OUT = ROOT / "edge" / "media" / "models"


def label(core: Box, plates: list[Box]) -> int:
    """1: the core (a candidate's characters) is a plate's: it lies mostly on one and
    covers a good part of it, or it holds one that fills much of it; 0: it touches none,
    or holds one only as a small detail; -1: in between (a few characters of a plate, a
    near miss), left out of training."""
    near = False
    area = core.w * core.h
    for p in plates:
        ix = min(core.x + core.w, p.x + p.w) - max(core.x, p.x)
        iy = min(core.y + core.h, p.y + p.h) - max(core.y, p.y)
        inter = max(0, ix) * max(0, iy)
        plate_area = p.w * p.h
        if inter >= 0.5 * area and inter >= 0.3 * plate_area:
            return 1
        if inter >= 0.6 * plate_area and inter >= 0.3 * area:
            return 1
        if inter >= 0.6 * plate_area and inter < 0.08 * area:
            continue  # a detail of a much larger box: judged as that box
        mx, my = p.w // 4, p.h // 2
        if (
            core.x < p.x + p.w + mx
            and p.x - mx < core.x + core.w
            and core.y < p.y + p.h + my
            and p.y - my < core.y + core.h
        ):
            near = True
    return -1 if near else 0


def jittered(box: Box, rng: np.random.Generator) -> Box:
    """A core as the candidate passes draw one around a plate's characters: the plate's
    box, a little smaller or larger, a little off."""
    gx = rng.uniform(-0.15, 0.2) * box.w
    gy = rng.uniform(-0.3, 0.3) * box.h
    dx = rng.uniform(-0.06, 0.06) * box.w
    dy = rng.uniform(-0.1, 0.1) * box.h
    return Box(int(box.x - gx / 2 + dx), int(box.y - gy / 2 + dy), int(box.w + gx), int(box.h + gy))


FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)
GLYPHS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


def _text(
    img: NDArray[np.uint8],
    text: str,
    box: tuple[int, int, int, int],
    colour: tuple[int, ...],
    font: int,
    weight: float,
) -> None:
    """``text`` fitted into ``box`` (x, y, w, h), centred."""
    x, y, w, h = box
    thickness = max(1, round(h * weight))
    scale = cv2.getFontScaleFromHeight(font, max(2, h), thickness)
    (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    if tw > w:
        scale *= w / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
    cv2.putText(
        img,
        text,
        (x + (w - tw) // 2, y + (h + th) // 2),
        font,
        scale,
        colour,
        thickness,
        cv2.LINE_AA,
    )


def render_plate(rng: np.random.Generator, height: int) -> NDArray[np.uint8]:
    """A plate of no country in particular, ``height`` px high: what plates share (a row
    or two of characters of one size on an even ground, often a border, a band, a name
    in small print, a holder) drawn in many variants, so the verifier learns plates, not
    Romanian plates."""
    aspect = float(rng.choice([1.6, 2.0, 2.0, 2.6, 3.1, 3.6, 4.6, 5.0]))
    w = round(height * aspect)
    dark = rng.random() < 0.2
    if dark:
        ground = tuple(int(v) for v in rng.integers(0, 70, 3))
        ink = tuple(int(v) for v in rng.integers(170, 256, 3))
    else:
        base = rng.integers(150, 256)
        ground = tuple(int(np.clip(base - rng.integers(0, 60), 0, 255)) for _ in range(3))
        ink = tuple(int(v) for v in rng.integers(0, 90, 3))
    img = np.empty((height, w, 3), np.uint8)
    img[:] = ground
    if rng.random() < 0.4:  # a printed picture or gradient behind the characters
        tint = np.linspace(0, rng.uniform(-60, 60), height)[:, None, None]
        img = np.clip(img.astype(np.float32) + tint, 0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(0, 4))):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            centre = (int(rng.integers(0, w)), int(rng.integers(0, height)))
            cv2.circle(img, centre, int(rng.integers(height // 4, height)), colour, -1)
        img = cv2.addWeighted(img, 0.35, np.full_like(img, ground), 0.65, 0)
    left, top, bottom = 0, 0, height
    if rng.random() < 0.3:  # a band: EU blue on the left, Mercosur on top
        band = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.6:
            left = max(2, w // 11)
            img[:, :left] = band
        else:
            top = max(2, height // 5)
            img[:top] = band
    if rng.random() < 0.5:  # small print above or below: a state, a slogan
        small = max(2, height // 7)
        name = "".join(rng.choice(list("ABCDEFGHIJKLMNOPRSTUVWYZ"), int(rng.integers(5, 12))))
        if rng.random() < 0.5:
            _text(img, name, (left, top + 1, w - left, small), ink, FONTS[0], 0.1)
            top += small + 1
        else:
            _text(img, name, (left, bottom - small - 1, w - left, small), ink, FONTS[0], 0.1)
            bottom -= small + 1
    font = FONTS[int(rng.integers(len(FONTS)))]
    weight = float(rng.uniform(0.06, 0.16))
    lines = 2 if aspect <= 2.0 and rng.random() < 0.4 else 1
    line_h = (bottom - top) / lines
    for i in range(lines):
        n = int(rng.integers(2, 5)) if lines == 2 and i == 0 else int(rng.integers(4, 9))
        chars = "".join(rng.choice(list(GLYPHS), n))
        if n > 5 and rng.random() < 0.5:
            cut = int(rng.integers(2, n - 2))
            chars = chars[:cut] + rng.choice([" ", "-", " "]) + chars[cut:]
        glyph_h = line_h * rng.uniform(0.5, 0.75)
        y = round(top + i * line_h + (line_h - glyph_h) / 2)
        _text(
            img, chars, (left + w // 20, y, w - left - w // 10, round(glyph_h)), ink, font, weight
        )
    if rng.random() < 0.6:  # the plate's border
        colour = ink if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.rectangle(img, (0, 0), (w - 1, height - 1), colour, max(1, height // 25))
    if rng.random() < 0.3:  # a holder around it, with a dealer's name under the plate
        rim = max(2, height // 8)
        holder_colour = tuple(int(v) for v in rng.integers(0, 80, 3))
        framed = np.empty((height + 3 * rim, w + 2 * rim, 3), np.uint8)
        framed[:] = holder_colour
        framed[rim : rim + height, rim : rim + w] = img
        _text(framed, "DEALER", (rim, height + rim, w, 2 * rim), (220, 220, 220), FONTS[0], 0.1)
        img = framed
    return img


def paste_plate(
    frame: NDArray[np.uint8],
    centre: tuple[int, int],
    width: int,
    rng: np.random.Generator,
    plate: NDArray[np.uint8] | None = None,
) -> Box | None:
    """A plate (``render_plate``) ``width`` px wide pasted at ``centre``, tilted a little,
    lit, blurred and noised like the frame there; returns its box (None: off the frame)."""
    if plate is None:
        plate = render_plate(rng, 96)
    ph, pw = plate.shape[:2]
    w = max(8, width)
    h = max(4, round(w * ph / pw))
    small = cv2.resize(plate, (w, h), interpolation=cv2.INTER_AREA)
    angle = float(rng.uniform(-12, 12))
    pad = h + w // 4
    canvas = np.zeros((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    canvas[pad : pad + h, pad : pad + w] = small
    mask = np.zeros(canvas.shape[:2], np.uint8)
    mask[pad : pad + h, pad : pad + w] = 255
    m = cv2.getRotationMatrix2D((pad + w / 2, pad + h / 2), angle, 1.0)
    canvas = cv2.warpAffine(canvas, m, canvas.shape[1::-1], flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(mask, m, mask.shape[1::-1], flags=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(mask > 127)
    if len(xs) == 0:
        return None
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    canvas, mask = canvas[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    fh, fw = frame.shape[:2]
    x, y = centre[0] - (x1 - x0) // 2, centre[1] - (y1 - y0) // 2
    if x < 0 or y < 0 or x + (x1 - x0) > fw or y + (y1 - y0) > fh:
        return None
    region = frame[y : y + y1 - y0, x : x + x1 - x0].astype(np.float32)
    part = canvas.astype(np.float32)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    gain = (region.mean() + 20) / (part[mask > 127].mean() + 20) * rng.uniform(0.7, 1.4)
    part = part * min(gain, 1.6)
    sigma = rng.uniform(0.3, 1.3)  # focus blur: characters of any size stay as sharp
    part = cv2.GaussianBlur(part, (0, 0), sigma)
    part += rng.normal(0, rng.uniform(1, 8), part.shape)
    mixed = region * (1 - alpha) + part * alpha
    frame[y : y + y1 - y0, x : x + x1 - x0] = np.clip(mixed, 0, 255).astype(np.uint8)
    return Box(int(x), int(y), int(x1 - x0), int(y1 - y0))


def jpeg(frame: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 95))])
    if not ok:
        raise SystemExit("error: OpenCV cannot encode JPEG")
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8)


Sample = tuple[NDArray[np.uint8], NDArray[np.int8]]


def samples_of(
    frame: NDArray[np.uint8],
    plates: list[Box],
    rng: np.random.Generator,
    jitters: int,
    crop: list[int],
) -> Sample:
    """Crops and labels of one frame: every candidate's core, and jittered plate boxes."""
    found = candidate_boxes(frame)
    boxes = sorted(
        (b for b in found if b.h >= MIN_JUDGED_HEIGHT_PX), key=lambda b: (b.y, b.x, b.w, b.h)
    )
    cores = [found[b] for b in boxes]
    labels = [label(c, plates) for c in cores]
    for p in plates:
        for _ in range(jitters):
            cores.append(jittered(p, rng))
            labels.append(1)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    crops = crop_batch(gray, cores, crop)
    return (crops[:, 0] * 255).round().astype(np.uint8), np.asarray(labels, np.int8)


def ro_frames(
    data: Path, hold_out: list[str], videos_out: bool
) -> Iterator[tuple[str, NDArray[np.uint8], list[Box]]]:
    hold = tuple(hold_out)
    for path in sorted(data.glob("*/*.jpg")):
        held = path.name.startswith(hold)
        if held != videos_out:
            continue
        frame = cv2.imread(str(path))
        if frame is None:
            raise SystemExit(f"error: cannot read {path}")
        yield path.stem, frame, read_plate_boxes(path.with_suffix(".txt"))


def collect(
    data: Path, rng: np.random.Generator, cfg: Config
) -> tuple[NDArray[np.uint8], NDArray[np.int8], dict[str, int]]:
    crops: list[NDArray[np.uint8]] = []
    labels: list[NDArray[np.int8]] = []
    counts: dict[str, int] = {}
    jitters = cfg.jitters_per_plate

    def add(source: str, sample: Sample) -> None:
        crops.append(sample[0])
        labels.append(sample[1])
        counts[source] = counts.get(source, 0) + len(sample[1])

    started = time.monotonic()
    for n, (_, frame, plates) in enumerate(ro_frames(data, cfg.hold_out, False), start=1):
        for s in cfg.scales:
            if s == 1.0:
                add("ro", samples_of(frame, plates, rng, jitters, cfg.crop))
            else:
                small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                scaled = [
                    Box(int(b.x * s), int(b.y * s), max(1, int(b.w * s)), max(1, int(b.h * s)))
                    for b in plates
                ]
                add("ro_small", samples_of(small, scaled, rng, 1, cfg.crop))
        for _ in range(cfg.pastes_per_frame):
            pasted = frame.copy()
            boxes = []
            for p in plates:  # over the real plates, as wide: they are covered
                centre = (p.x + p.w // 2, p.y + p.h // 2)
                box = paste_plate(pasted, centre, round(p.w * rng.uniform(1.05, 1.3)), rng)
                boxes.append(box if box is not None else p)
            fh, fw = pasted.shape[:2]
            for _ in range(int(rng.integers(1, 3))):  # and anywhere, at any size up to close-ups
                width = int(np.exp(rng.uniform(np.log(40), np.log(fw * 0.7))))
                centre = (int(rng.integers(0, fw)), int(rng.integers(fh // 3, fh)))
                box = paste_plate(pasted, centre, width, rng)
                if box is not None and label(box, boxes) == 0:
                    boxes.append(box)
            add("ro_pasted", samples_of(jpeg(pasted, rng), boxes, rng, jitters, cfg.crop))
        if n % 50 == 0:
            print(
                f"  {n} frames, {sum(counts.values())} crops, {time.monotonic() - started:.0f} s",
                flush=True,
            )
    styles = list(PlateStyle)
    for i in range(cfg.synthetic_streets):
        size = [(640, 360), (1280, 720), (1920, 1080)][i % 3]
        picks = [styles[int(k)] for k in rng.integers(0, len(styles), int(rng.integers(1, 4)))]
        scene = render_street(rng, size[0], size[1], picks, night=bool(i % 4 == 3))
        add(
            "sim_street",
            samples_of(jpeg(scene.frame, rng), list(scene.plate_boxes), rng, 1, cfg.crop),
        )
    for i in range(cfg.synthetic_closeups):
        size = [(640, 360), (1280, 720), (1920, 1080)][i % 3]
        plate_h = int(np.exp(rng.uniform(np.log(10), np.log(size[1] // 2))))
        scene = render_plate_closeup(
            rng,
            size[0],
            size[1],
            styles[i % len(styles)],
            plate_h,
            float(rng.uniform(-15, 15)),
            bool(i % 4 == 3),
        )
        add(
            "sim_closeup",
            samples_of(jpeg(scene.frame, rng), list(scene.plate_boxes), rng, 1, cfg.crop),
        )
    x = np.concatenate(crops)
    y = np.concatenate(labels)
    print(f"collected {len(y)} crops in {time.monotonic() - started:.0f} s: {counts}")
    return x, y, counts


Colour = tuple[int, int, int]


def _clutter_colour(rng: np.random.Generator, dark_share: float = 0.6) -> Colour:
    if rng.random() < dark_share:
        r, g, b = (int(v) for v in rng.integers(0, 70, 3))
        return r, g, b
    base = int(rng.integers(90, 256))
    r, g, b = (int(np.clip(base + d, 0, 255)) for d in rng.integers(-40, 40, 3))
    return r, g, b


def _bars(
    rng: np.random.Generator,
    w: int,
    h: int,
    img: NDArray[np.uint8],
    mask: NDArray[np.uint8],
    vertical: bool = True,
    band: tuple[float, float] = (0.0, 1.0),
) -> tuple[int, Colour]:
    """Evenly spaced bars (a fence's pickets, slats), drawn into ``img`` and ``mask``."""
    t = max(2, round(rng.uniform(0.006, 0.05) * (w if vertical else h)))
    gap = max(2, round(t * rng.uniform(1.2, 6)))
    col = _clutter_colour(rng)
    y0, y1 = round(band[0] * h), round(band[1] * h)
    pos = int(rng.integers(0, gap + t))
    tips = rng.random() < 0.3
    while pos < (w if vertical else h):
        if vertical:
            top = y0 + (int(rng.integers(0, max(1, t))) if rng.random() < 0.2 else 0)
            cv2.rectangle(img, (pos, top), (pos + t - 1, y1), col, -1)
            cv2.rectangle(mask, (pos, top), (pos + t - 1, y1), 255, -1)
            if tips:
                pts = np.array(
                    [[pos - t // 2, top], [pos + t // 2, top - 2 * t], [pos + t + t // 2, top]]
                )
                cv2.fillPoly(img, [pts], col)
                cv2.fillPoly(mask, [pts], 255)
        else:
            cv2.rectangle(img, (0, pos), (w, pos + t - 1), col, -1)
            cv2.rectangle(mask, (0, pos), (w, pos + t - 1), 255, -1)
        pos += t + gap
    return t, col


def render_clutter(
    rng: np.random.Generator, w: int, h: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Street clutter that the candidate passes take for rows of characters, ``w`` x ``h``:
    a fence or railing (see-through: its mask), a window grid, slats, mesh or bricks, often
    seen at an angle. Returns the picture and its mask. These are the large false "plates"
    of street photos (fences above all) that the dashcam drives hold too few of."""
    img = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    kind = rng.choice(["fence", "railing", "windows", "slats", "mesh", "bricks", "fence"])
    if kind in ("fence", "railing"):
        band = (
            (rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0))
            if kind == "fence"
            else (rng.uniform(0.3, 0.6), 1.0)
        )
        t, col = _bars(rng, w, h, img, mask, True, band)
        for _ in range(int(rng.integers(1, 4))):  # rails
            y = int(rng.integers(int(band[0] * h), h))
            th = max(2, round(t * rng.uniform(0.5, 2)))
            cv2.rectangle(img, (0, y), (w, y + th), col, -1)
            cv2.rectangle(mask, (0, y), (w, y + th), 255, -1)
    elif kind == "windows":
        wall = _clutter_colour(rng, 0.2)
        img[:] = wall
        mask[:] = 255
        rows, cols = int(rng.integers(1, 6)), int(rng.integers(2, 10))
        cw, ch = w / cols, h / rows
        fw, fh = rng.uniform(0.45, 0.85), rng.uniform(0.4, 0.8)
        frame_col = _clutter_colour(rng, 0.3)
        mullions = int(rng.integers(0, 4))
        for r in range(rows):
            for c in range(cols):
                x0, y0 = int(c * cw + cw * (1 - fw) / 2), int(r * ch + ch * (1 - fh) / 2)
                x1, y1 = int(x0 + cw * fw), int(y0 + ch * fh)
                glass = int(rng.integers(10, 150))
                g = np.linspace(glass, glass + rng.uniform(-60, 80), max(1, y1 - y0))[:, None, None]
                img[y0:y1, x0:x1] = np.clip(g, 0, 255).astype(np.uint8)
                cv2.rectangle(img, (x0, y0), (x1, y1), frame_col, max(1, round(cw * 0.03)))
                for m in range(mullions):
                    mx = int(x0 + (x1 - x0) * (m + 1) / (mullions + 1))
                    cv2.line(img, (mx, y0), (mx, y1), frame_col, max(1, round(cw * 0.02)))
    elif kind == "slats":
        img[:] = _clutter_colour(rng, 0.4)
        mask[:] = 255
        vertical = rng.random() < 0.4
        _bars(rng, w, h, img, np.zeros_like(mask), vertical)
    elif kind == "mesh":
        t = max(1, round(rng.uniform(0.003, 0.012) * w))
        step = max(4, round(rng.uniform(0.02, 0.08) * w))
        col = _clutter_colour(rng, 0.5)
        for x in range(-h, w + h, step):
            for d in (1, -1):
                cv2.line(img, (x, 0), (x + d * h, h), col, t)
                cv2.line(mask, (x, 0), (x + d * h, h), 255, t)
    else:  # bricks or tiles
        img[:] = _clutter_colour(rng, 0.3)
        mask[:] = 255
        bh = max(3, round(rng.uniform(0.03, 0.15) * h))
        bw = max(6, round(bh * rng.uniform(1.5, 4)))
        base = np.array(_clutter_colour(rng, 0.3), np.int32)
        for r, y in enumerate(range(0, h, bh)):
            off = (bw // 2) * (r % 2)
            for x in range(-off, w, bw):
                brick = tuple(int(v) for v in np.clip(base + rng.integers(-25, 25, 3), 0, 255))
                cv2.rectangle(img, (x + 1, y + 1), (x + bw - 2, y + bh - 2), brick, -1)
    if rng.random() < 0.7:  # seen at an angle
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        d = rng.uniform(-0.15, 0.15, (4, 2)) * np.float32([w, h])
        m = cv2.getPerspectiveTransform(src, (src + d).astype(np.float32))
        img = np.asarray(cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR), np.uint8)
        mask = np.asarray(cv2.warpPerspective(mask, m, (w, h), flags=cv2.INTER_LINEAR), np.uint8)
    return img, mask


def paste_clutter(frame: NDArray[np.uint8], rng: np.random.Generator, avoid: list[Box]) -> None:
    """One ``render_clutter`` at any size and place on ``frame`` (in place), lit, blurred
    and noised like the frame there, and kept off the plates in ``avoid`` (they stay
    what they are: positives)."""
    fh, fw = frame.shape[:2]
    w, h = int(fw * rng.uniform(0.15, 1.0)), int(fh * rng.uniform(0.1, 0.7))
    x, y = int(rng.integers(0, fw - w + 1)), int(rng.integers(0, fh - h + 1))
    img, mask = render_clutter(rng, w, h)
    alpha = mask.astype(np.float32) / 255.0
    for b in avoid:
        mx, my = b.w // 2, b.h
        x0, y0 = max(0, b.x - mx - x), max(0, b.y - my - y)
        x1, y1 = min(w, b.x + b.w + mx - x), min(h, b.y + b.h + my - y)
        if x0 < x1 and y0 < y1:
            alpha[y0:y1, x0:x1] = 0
    region = frame[y : y + h, x : x + w].astype(np.float32)
    part = img.astype(np.float32)
    drawn = mask > 127
    gain = (region.mean() + 20) / (part[drawn].mean() + 20 if drawn.any() else 1)
    gain *= rng.uniform(0.6, 1.4)
    part = cv2.GaussianBlur(part * min(gain, 1.8), (0, 0), rng.uniform(0.3, 1.5))
    part += rng.normal(0, rng.uniform(1, 8), part.shape)
    a = alpha[:, :, None]
    frame[y : y + h, x : x + w] = np.clip(region * (1 - a) + part * a, 0, 255).astype(np.uint8)


def clutter_samples(data: Path, cfg: Config) -> Sample:
    """The training frames again, each with one to three ``paste_clutter`` overlays: every
    candidate on the clutter is a negative. A random stream of its own, so the other
    sources draw the same numbers with or without it."""
    rng = np.random.default_rng([cfg.seed, 7])
    crops: list[NDArray[np.uint8]] = []
    labels: list[NDArray[np.int8]] = []
    for _, frame, plates in ro_frames(data, cfg.hold_out, False):
        for _ in range(cfg.clutter_per_frame):
            cluttered = frame.copy()
            for _ in range(int(rng.integers(1, 4))):
                paste_clutter(cluttered, rng, plates)
            x, y = samples_of(jpeg(cluttered, rng), plates, rng, 1, cfg.crop)
            crops.append(x)
            labels.append(y)
    return np.concatenate(crops), np.concatenate(labels)


def build(channels: list[int]):  # type: ignore[no-untyped-def]
    import torch.nn as nn

    layers: list[nn.Module] = []
    c = 1
    for i, o in enumerate(channels):
        layers += [nn.Conv2d(c, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
        if i < len(channels) - 1:
            layers.append(nn.MaxPool2d(2))
        c = o
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1)]
    return nn.Sequential(*layers)


def augment(batch, gen):  # type: ignore[no-untyped-def]
    """Light, contrast, polarity, noise: the verifier must judge plates of any lighting."""
    import torch

    n = batch.shape[0]
    gain = torch.empty(n, 1, 1, 1).uniform_(0.5, 1.5, generator=gen)
    bias = torch.empty(n, 1, 1, 1).uniform_(-0.25, 0.25, generator=gen)
    x = (batch - 0.5) * gain + 0.5 + bias
    flip = torch.rand(n, generator=gen) < 0.25
    x[flip] = 1.0 - x[flip]
    x = x + torch.randn(x.shape, generator=gen) * torch.empty(n, 1, 1, 1).uniform_(
        0, 0.05, generator=gen
    )
    return x.clamp(0, 1)


def train(
    x: NDArray[np.uint8],
    y: NDArray[np.int8],
    out: Path,
    counts: dict[str, int],
    name: str,
) -> None:
    import torch

    cfg = Config(**MODELS[name])  # type: ignore[arg-type]
    seed = cfg.seed
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(seed)
    keep = y >= 0
    x, y = x[keep], y[keep]
    rng = np.random.default_rng(seed)
    neg = np.flatnonzero(y == 0)
    if len(neg) > cfg.max_negatives:
        drop = rng.choice(neg, len(neg) - cfg.max_negatives, replace=False)
        mask = np.ones(len(y), bool)
        mask[drop] = False
        x, y = x[mask], y[mask]
    order = rng.permutation(len(y))
    n_valid = len(y) // 10
    valid, tr = order[:n_valid], order[n_valid:]
    xt = torch.from_numpy(x).float().unsqueeze(1) / 255.0
    yt = torch.from_numpy(y.astype(np.float32))
    model = build(cfg.channels)
    pos_weight = torch.tensor(float((y[tr] == 0).sum()) / max(1, int((y[tr] == 1).sum())))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    epochs, batch = cfg.epochs, cfg.batch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = epochs * ((len(tr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    started = time.monotonic()
    for epoch in range(epochs):
        model.train()
        perm = torch.from_numpy(tr[torch.randperm(len(tr), generator=gen).numpy()])
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            xb = augment(xt[idx], gen)
            loss = loss_fn(model(xb).squeeze(1), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            scores = torch.sigmoid(model(xt[valid]).squeeze(1)).numpy()
        yv = y[valid]
        pos_scores = np.sort(scores[yv == 1])
        t = float(pos_scores[int(0.005 * len(pos_scores))])  # keeps 99.5 % of positives
        fp = float((scores[yv == 0] >= t).mean())
        print(
            f"epoch {epoch + 1}/{epochs} loss {total / len(tr):.4f} "
            f"valid: threshold for 99.5% positives {t:.3f} keeps {fp:.3f} of negatives "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    h, w = cfg.crop
    torch.onnx.export(
        model,
        torch.zeros(1, 1, h, w),
        str(onnx_path),
        input_names=["crops"],
        output_names=["logits"],
        dynamic_axes={"crops": {0: "n"}, "logits": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    card = {
        "config": MODELS[name],
        "sha256": digest,
        "bytes": onnx_path.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "crops": counts,
        "trained_on": f"{len(tr)} crops ({int((y[tr] == 1).sum())} plates)",
        "train_seconds": round(time.monotonic() - started),
        "torch": torch.__version__,
        "data": "plates-ro (MIT, (c) 2020 Robert Lucian Chiriac) and generated plates",
    }
    (out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {onnx_path} ({card['bytes']} bytes, sha256 {digest[:12]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "plates-ro")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--model", choices=[*MODELS, "all"], default="all", help="which model to rebuild"
    )
    parser.add_argument("--cache", type=Path, help="keep the crops here (npz) between runs")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"error: no data folder {args.data} (give --data)")
    cv2.setNumThreads(2)
    collected: dict[str, tuple[NDArray[np.uint8], NDArray[np.int8], dict[str, int]]] = {}
    for name in MODELS if args.model == "all" else [args.model]:
        cfg = Config(**MODELS[name])  # type: ignore[arg-type]
        cache = args.cache.with_name(f"{args.cache.stem}-{name}.npz") if args.cache else None
        if cache and cache.exists():
            saved = np.load(cache, allow_pickle=False)
            x, y = saved["x"], saved["y"]
            counts = json.loads(str(saved["counts"]))
        else:
            # Models that differ only in training share one collection (same seed, same crops).
            key = json.dumps({k: v for k, v in MODELS[name].items() if k in COLLECTION_KEYS})
            if key not in collected:
                collected[key] = collect(args.data, np.random.default_rng(cfg.seed), cfg)
            x, y, counts = collected[key]
            counts = dict(counts)
            if cfg.clutter_per_frame:
                cx, cy = clutter_samples(args.data, cfg)
                x, y = np.concatenate([x, cx]), np.concatenate([y, cy])
                counts["ro_clutter"] = len(cy)
            if cache:
                np.savez_compressed(cache, x=x, y=y, counts=json.dumps(counts))
        print(f"{name}: training on {len(y)} crops", flush=True)
        train(x, y, args.out, counts, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
