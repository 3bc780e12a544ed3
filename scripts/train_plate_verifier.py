"""Rebuild the plate verifier (edge/media/models/plate_verifier.onnx) from the data.

The classical passes of ``edge.media.plate_candidates`` find every plate and much else;
this small CNN looks at each candidate box (grey, 24x72) and says whether it is a plate.
It is trained on:

- the MIT-licensed Romanian dashcam frames of ``../shared/data/plates-ro`` (every plate
  boxed, so every candidate away from a box is a real street negative), except the
  held-out drives in ``HOLD_OUT``, which only measure;
- the same frames with plates of other styles (US 2:1, Mercosur, Thai two-line,
  light-on-dark) rendered and pasted over their real plates, with the frame's light,
  blur and noise;
- the simulator's own streets and close-ups (every size up to half the frame).

Never the AGPL ``plates-us`` photos: they only measure. Training needs the ``train`` extra
(torch, onnx), which neither README command installs:

    python3 -m venv .venv-train && .venv-train/bin/pip install -e '.[train]'
    .venv-train/bin/python scripts/train_plate_verifier.py --data ../shared/data/plates-ro

It takes about 10 minutes on 2 cores and writes the model and its card
(``plate_verifier.json``: this script's ``CONFIG``, the data counts, the model's SHA-256).
A fixed seed and deterministic kernels make a rerun on the same machine give the same
weights; ``tests/unit/test_plate_model.py`` checks that the committed card matches
``CONFIG`` and the committed model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
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

CONFIG = {
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
    frame: NDArray[np.uint8], plates: list[Box], rng: np.random.Generator, jitters: int
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
    crops = crop_batch(gray, cores, CONFIG["crop"])  # type: ignore[arg-type]
    return (crops[:, 0] * 255).round().astype(np.uint8), np.asarray(labels, np.int8)


def ro_frames(data: Path, videos_out: bool) -> Iterator[tuple[str, NDArray[np.uint8], list[Box]]]:
    hold = tuple(CONFIG["hold_out"])  # type: ignore[arg-type]
    for path in sorted(data.glob("*/*.jpg")):
        held = path.name.startswith(hold)
        if held != videos_out:
            continue
        frame = cv2.imread(str(path))
        if frame is None:
            raise SystemExit(f"error: cannot read {path}")
        yield path.stem, frame, read_plate_boxes(path.with_suffix(".txt"))


def collect(
    data: Path, rng: np.random.Generator
) -> tuple[NDArray[np.uint8], NDArray[np.int8], dict[str, int]]:
    crops: list[NDArray[np.uint8]] = []
    labels: list[NDArray[np.int8]] = []
    counts: dict[str, int] = {}
    jitters = int(CONFIG["jitters_per_plate"])  # type: ignore[call-overload]

    def add(source: str, sample: Sample) -> None:
        crops.append(sample[0])
        labels.append(sample[1])
        counts[source] = counts.get(source, 0) + len(sample[1])

    started = time.monotonic()
    for n, (_, frame, plates) in enumerate(ro_frames(data, videos_out=False), start=1):
        for s in CONFIG["scales"]:  # type: ignore[attr-defined]
            if s == 1.0:
                add("ro", samples_of(frame, plates, rng, jitters))
            else:
                small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                scaled = [
                    Box(int(b.x * s), int(b.y * s), max(1, int(b.w * s)), max(1, int(b.h * s)))
                    for b in plates
                ]
                add("ro_small", samples_of(small, scaled, rng, 1))
        for _ in range(int(CONFIG["pastes_per_frame"])):  # type: ignore[call-overload]
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
            add("ro_pasted", samples_of(jpeg(pasted, rng), boxes, rng, jitters))
        if n % 50 == 0:
            print(
                f"  {n} frames, {sum(counts.values())} crops, {time.monotonic() - started:.0f} s",
                flush=True,
            )
    styles = list(PlateStyle)
    for i in range(int(CONFIG["synthetic_streets"])):  # type: ignore[call-overload]
        size = [(640, 360), (1280, 720), (1920, 1080)][i % 3]
        picks = [styles[int(k)] for k in rng.integers(0, len(styles), int(rng.integers(1, 4)))]
        scene = render_street(rng, size[0], size[1], picks, night=bool(i % 4 == 3))
        add("sim_street", samples_of(jpeg(scene.frame, rng), list(scene.plate_boxes), rng, 1))
    for i in range(int(CONFIG["synthetic_closeups"])):  # type: ignore[call-overload]
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
        add("sim_closeup", samples_of(jpeg(scene.frame, rng), list(scene.plate_boxes), rng, 1))
    x = np.concatenate(crops)
    y = np.concatenate(labels)
    print(f"collected {len(y)} crops in {time.monotonic() - started:.0f} s: {counts}")
    return x, y, counts


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


def train(x: NDArray[np.uint8], y: NDArray[np.int8], out: Path, counts: dict[str, int]) -> None:
    import torch

    seed = int(CONFIG["seed"])  # type: ignore[call-overload]
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(seed)
    keep = y >= 0
    x, y = x[keep], y[keep]
    rng = np.random.default_rng(seed)
    neg = np.flatnonzero(y == 0)
    if len(neg) > int(CONFIG["max_negatives"]):  # type: ignore[call-overload]
        drop = rng.choice(neg, len(neg) - int(CONFIG["max_negatives"]), replace=False)  # type: ignore[call-overload]
        mask = np.ones(len(y), bool)
        mask[drop] = False
        x, y = x[mask], y[mask]
    order = rng.permutation(len(y))
    n_valid = len(y) // 10
    valid, tr = order[:n_valid], order[n_valid:]
    xt = torch.from_numpy(x).float().unsqueeze(1) / 255.0
    yt = torch.from_numpy(y.astype(np.float32))
    model = build(list(CONFIG["channels"]))  # type: ignore[call-overload]
    pos_weight = torch.tensor(float((y[tr] == 0).sum()) / max(1, int((y[tr] == 1).sum())))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    epochs, batch = int(CONFIG["epochs"]), int(CONFIG["batch"])  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=float(CONFIG["lr"]), weight_decay=1e-4)  # type: ignore[arg-type]
    steps = epochs * ((len(tr) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(CONFIG["lr"]), total_steps=steps)  # type: ignore[arg-type]
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
    onnx_path = out / "plate_verifier.onnx"
    h, w = CONFIG["crop"]  # type: ignore[misc]
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
        "config": CONFIG,
        "sha256": digest,
        "bytes": onnx_path.stat().st_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "crops": counts,
        "trained_on": f"{len(tr)} crops ({int((y[tr] == 1).sum())} plates)",
        "train_seconds": round(time.monotonic() - started),
        "torch": torch.__version__,
        "data": "plates-ro (MIT, (c) 2020 Robert Lucian Chiriac) and generated plates",
    }
    (out / "plate_verifier.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {onnx_path} ({card['bytes']} bytes, sha256 {digest[:12]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "plates-ro")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--cache", type=Path, help="keep the crops here (npz) between runs")
    args = parser.parse_args()
    cv2.setNumThreads(2)
    rng = np.random.default_rng(int(CONFIG["seed"]))  # type: ignore[call-overload]
    if args.cache and args.cache.exists():
        saved = np.load(args.cache, allow_pickle=False)
        x, y = saved["x"], saved["y"]
        counts = json.loads(str(saved["counts"]))
    else:
        x, y, counts = collect(args.data, rng)
        if args.cache:
            np.savez_compressed(args.cache, x=x, y=y, counts=json.dumps(counts))
    train(x, y, args.out, counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
