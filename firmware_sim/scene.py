"""Pure: synthetic camera frames (streets with licence plates of several countries, a
doorway), drawn with OpenCV from a seeded generator, with the ground truth of where each
plate was drawn, so the leak audit can check that no plate left readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from edge.media.frames import Frame
from edge.model import Box


class PlateStyle(StrEnum):
    US = "us"  # ~2:1, dark characters on white
    EU = "eu"  # ~4.6:1, blue band on the left
    MERCOSUR = "mercosur"  # ~3.1:1, blue band on top
    THAI = "thai"  # ~2:1, two lines of text
    DARK = "dark"  # light characters on a dark plate (e.g. older plates, some taxis)


ASPECT = {
    PlateStyle.US: 2.0,
    PlateStyle.EU: 4.6,
    PlateStyle.MERCOSUR: 3.1,
    PlateStyle.THAI: 2.0,
    PlateStyle.DARK: 3.5,
}
CHARSET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"


@dataclass(frozen=True, slots=True)
class PlateSpec:
    style: PlateStyle
    text: str
    x: int
    y: int
    height_px: int


@dataclass(frozen=True, slots=True)
class RenderedFrame:
    frame: Frame = field(repr=False)
    plate_boxes: tuple[Box, ...]
    plate_texts: tuple[str, ...]


def random_plate_text(rng: np.random.Generator, style: PlateStyle) -> str:
    n = 7 if style is PlateStyle.EU else 6
    chars = "".join(CHARSET[int(i)] for i in rng.integers(0, len(CHARSET), n))
    if style is PlateStyle.EU:
        return f"{chars[:2]} {chars[2:]}"
    if style is PlateStyle.THAI:
        return f"{chars[:2]} {chars[2:]}"
    return chars


def draw_plate(img: Frame, spec: PlateSpec, night: bool) -> Box:
    h = spec.height_px
    w = round(h * ASPECT[spec.style])
    x, y = spec.x, spec.y
    bg, fg = (235, 235, 235), (20, 20, 20)
    if spec.style is PlateStyle.DARK:
        bg, fg = (30, 30, 30), (230, 230, 230)
    if spec.style is PlateStyle.US:
        bg = (240, 240, 250)
    cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), bg, -1)
    cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (60, 60, 60), max(1, h // 20))
    left, top = x, y
    if spec.style is PlateStyle.EU:
        band = max(3, w // 11)
        cv2.rectangle(img, (x, y), (x + band, y + h - 1), (160, 50, 0), -1)
        left = x + band
    if spec.style is PlateStyle.MERCOSUR:
        band = max(3, h // 5)
        cv2.rectangle(img, (x, y), (x + w - 1, y + band), (150, 60, 0), -1)
        top = y + band
    lines = spec.text.split(" ") if spec.style is PlateStyle.THAI else [spec.text]
    avail_h = (y + h - top) / len(lines)
    for i, line in enumerate(lines):
        scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_DUPLEX, max(4, int(avail_h * 0.62)), 2)
        thickness = max(1, round(avail_h / 12))
        (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_DUPLEX, scale, thickness)
        avail_w = x + w - left
        if tw > avail_w * 0.92:
            scale *= avail_w * 0.92 / tw
            (tw, th), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_DUPLEX, scale, thickness)
        tx = left + (avail_w - tw) // 2
        ty = int(top + avail_h * i + (avail_h + th) / 2)
        cv2.putText(img, line, (tx, ty), cv2.FONT_HERSHEY_DUPLEX, scale, fg, thickness, cv2.LINE_AA)
    return Box(x, y, w, h)


def _car(img: Frame, rng: np.random.Generator, x: int, y: int, width: int) -> None:
    height = width // 2
    color = tuple(int(c) for c in rng.integers(30, 220, 3))
    cv2.rectangle(img, (x, y + height // 3), (x + width, y + height), color, -1)
    cv2.rectangle(img, (x + width // 6, y), (x + width * 5 // 6, y + height // 3), color, -1)
    cv2.rectangle(
        img, (x + width // 5, y + 4), (x + width * 4 // 5, y + height // 3 - 2), (90, 80, 70), -1
    )
    for wx in (x + width // 5, x + width * 4 // 5):
        cv2.circle(img, (wx, y + height), max(4, width // 9), (25, 25, 25), -1)


def render_street(
    rng: np.random.Generator,
    width: int,
    height: int,
    plates: Sequence[PlateStyle],
    night: bool = False,
) -> RenderedFrame:
    """A street with one parked car per plate style given, each with its plate."""
    img = np.zeros((height, width, 3), np.uint8)
    horizon = height * 2 // 5
    sky = np.linspace(200, 120, horizon, dtype=np.uint8)
    img[:horizon] = (
        np.stack([sky, sky - 20, sky - 60], axis=1)[:, None, :].clip(0, 255).astype(np.uint8)
    )
    img[horizon:] = (70, 72, 75)
    for bx in range(0, width, max(40, width // 8)):
        bh = int(rng.integers(height // 6, horizon))
        shade = int(rng.integers(90, 170))
        cv2.rectangle(
            img, (bx, horizon - bh), (bx + width // 9, horizon), (shade, shade - 10, shade - 25), -1
        )
    noise = rng.normal(0, 6, img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    boxes: list[Box] = []
    texts: list[str] = []
    slot = width // max(1, len(plates))
    for i, style in enumerate(plates):
        car_w = int(slot * rng.uniform(0.55, 0.8))
        cx = i * slot + int(rng.integers(0, max(1, slot - car_w)))
        cy = int(
            rng.integers(
                horizon + height // 20, max(horizon + height // 20 + 1, height - car_w // 2 - 10)
            )
        )
        _car(img, rng, cx, cy, car_w)
        plate_h = max(12, min(int(car_w / ASPECT[style] / 3.2), car_w // 4))
        plate_w = round(plate_h * ASPECT[style])
        px = cx + (car_w - plate_w) // 2
        py = min(height - plate_h - 2, cy + car_w // 2 - plate_h - 4)
        text = random_plate_text(rng, style)
        boxes.append(draw_plate(img, PlateSpec(style, text, px, py, plate_h), night))
        texts.append(text)
    if night:
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        gray = cv2.convertScaleAbs(gray, alpha=0.55, beta=10)
        img = np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    return RenderedFrame(np.asarray(img, dtype=np.uint8), tuple(boxes), tuple(texts))


def render_plate_closeup(
    rng: np.random.Generator,
    width: int,
    height: int,
    style: PlateStyle,
    plate_h: int,
    tilt_deg: float = 0.0,
    night: bool = False,
) -> RenderedFrame:
    """One plate ``plate_h`` px high on a bumper, tilted by ``tilt_deg``: the close-up
    case (a car right in front of the camera) that a street scene never draws."""
    img = np.full((height, width, 3), (95, 100, 105), np.uint8)
    plate_w = round(plate_h * ASPECT[style])
    if plate_w > width * 0.9:  # keep it inside the frame: a long plate cannot be that high
        plate_h = max(4, int(width * 0.9 / ASPECT[style]))
        plate_w = round(plate_h * ASPECT[style])
    px = int(rng.integers(0, max(1, width - plate_w)))
    py = int(rng.integers(0, max(1, height - plate_h)))
    bumper = tuple(int(c) for c in rng.integers(30, 220, 3))
    cv2.rectangle(
        img,
        (max(0, px - plate_w // 3), max(0, py - plate_h)),
        (min(width - 1, px + plate_w * 4 // 3), min(height - 1, py + plate_h * 2)),
        bumper,
        -1,
    )
    text = random_plate_text(rng, style)
    box = draw_plate(img, PlateSpec(style, text, px, py, plate_h), night)
    if tilt_deg:
        centre = (px + plate_w / 2, py + plate_h / 2)
        m = cv2.getRotationMatrix2D(centre, tilt_deg, 1.0)
        img = np.asarray(
            cv2.warpAffine(img, m, (width, height), borderMode=cv2.BORDER_REPLICATE), np.uint8
        )
        corners = np.array(
            [
                [px, py, 1],
                [px + plate_w, py, 1],
                [px, py + plate_h, 1],
                [px + plate_w, py + plate_h, 1],
            ],
            np.float64,
        )
        pts = corners @ m.T
        x0, y0 = max(0, int(pts[:, 0].min())), max(0, int(pts[:, 1].min()))
        x1, y1 = min(width, int(pts[:, 0].max()) + 1), min(height, int(pts[:, 1].max()) + 1)
        box = Box(x0, y0, x1 - x0, y1 - y0)
    noise = rng.normal(0, 4, img.shape)
    img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if night:
        gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        gray = cv2.convertScaleAbs(gray, alpha=0.55, beta=10)
        img = np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    return RenderedFrame(np.asarray(img, dtype=np.uint8), (box,), (text,))


def render_doorway(
    rng: np.random.Generator, width: int, height: int, person: bool, pet: bool
) -> RenderedFrame:
    """A front door, with a person and/or a pet in front of it: no plates."""
    img = np.full((height, width, 3), (150, 160, 170), np.uint8)
    cv2.rectangle(img, (width // 3, height // 8), (width * 2 // 3, height), (60, 80, 120), -1)
    cv2.circle(
        img,
        (width * 2 // 3 - width // 20, height * 3 // 5),
        max(3, width // 80),
        (30, 180, 200),
        -1,
    )
    if person:
        cx = int(rng.integers(width // 4, width * 3 // 4))
        cv2.ellipse(
            img,
            (cx, height // 2 + height // 8),
            (width // 14, height // 4),
            0,
            0,
            360,
            (40, 40, 90),
            -1,
        )
        cv2.circle(img, (cx, height // 3), height // 12, (120, 150, 190), -1)
    if pet:
        px = int(rng.integers(width // 8, width // 2))
        cv2.ellipse(
            img, (px, height * 7 // 8), (width // 16, height // 20), 0, 0, 360, (50, 90, 140), -1
        )
    noise = rng.normal(0, 4, img.shape)
    return RenderedFrame(np.clip(img + noise, 0, 255).astype(np.uint8), (), ())
