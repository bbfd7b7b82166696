"""Procedural "shapes" dataset for episodic few-shot work, deterministic from a seed.

The class is a shape's identity; everything else is nuisance context that a GeNIe hard negative
should keep: background (solid colour or a two-colour gradient in a random direction), object
colour, position, scale, rotation and clutter (small dots and strokes). 32 classes split 20/4/8
like miniImageNet's 64/16/20. Images are drawn at 4× and downsampled (antialiased).

Two disjoint image pools come from independent seed streams: ``fewshot`` (the benchmark's
images: episodes, backbone pretraining on base classes) and ``generator`` (what the embedded
diffusion model and the oracle are trained on — as SD was trained on web images covering the
classes, never on the benchmark's own images).
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CLASSES: tuple[str, ...] = (
    # base (20)
    "circle", "square", "triangle", "pentagon", "star", "cross", "plus", "heart",
    "crescent", "ring", "arrow", "ellipse", "trapezoid", "corner", "house", "hourglass",
    "chevron", "frame", "cloud", "bars",
    # val (4)
    "hexagon", "kite", "tee", "flag",
    # novel (8)
    "diamond", "semicircle", "parallelogram", "bolt", "teardrop", "dots", "horseshoe",
    "hexagram",
)  # fmt: skip
SPLITS: dict[str, tuple[str, ...]] = {
    "base": CLASSES[:20],
    "val": CLASSES[20:24],
    "novel": CLASSES[24:],
}
IMAGE_SIZE = 32
_SS = 4  # supersampling factor


def _poly(n: int, r: float = 1.0, phase: float = -math.pi / 2) -> list[tuple[float, float]]:
    return [
        (r * math.cos(phase + 2 * math.pi * k / n), r * math.sin(phase + 2 * math.pi * k / n))
        for k in range(n)
    ]


def _star(n: int, r_in: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(2 * n):
        r = 1.0 if k % 2 == 0 else r_in
        a = -math.pi / 2 + math.pi * k / n
        pts.append((r * math.cos(a), r * math.sin(a)))
    return pts


def _arc(cx, cy, r, a0, a1, n=24):
    return [
        (
            cx + r * math.cos(a0 + (a1 - a0) * k / (n - 1)),
            cy + r * math.sin(a0 + (a1 - a0) * k / (n - 1)),
        )
        for k in range(n)
    ]


def _rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


# Each shape: list of ("poly", points) / ("hole", points) parts in the unit box [-1, 1]^2.
def _shape_parts(name: str) -> list[tuple[str, list[tuple[float, float]]]]:
    P = "poly"
    H = "hole"
    if name == "circle":
        return [(P, _poly(40))]
    if name == "square":
        return [(P, _rect(-0.8, -0.8, 0.8, 0.8))]
    if name == "triangle":
        return [(P, [(0, -1), (0.95, 0.75), (-0.95, 0.75)])]
    if name == "pentagon":
        return [(P, _poly(5))]
    if name == "hexagon":
        return [(P, _poly(6, phase=0))]
    if name == "star":
        return [(P, _star(5, 0.42))]
    if name == "hexagram":
        return [(P, _star(6, 0.58))]
    if name == "cross":
        w = 0.28
        arm = [(-w, -1), (w, -1), (w, 1), (-w, 1)]

        def rot(p, a):
            return [
                (x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)) for x, y in p
            ]  # noqa: E731

        return [(P, rot(arm, math.pi / 4)), (P, rot(arm, -math.pi / 4))]
    if name == "plus":
        w = 0.3
        return [(P, _rect(-w, -1, w, 1)), (P, _rect(-1, -w, 1, w))]
    if name == "heart":
        pts = []
        for k in range(48):
            t = 2 * math.pi * k / 48
            x = 16 * math.sin(t) ** 3
            y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
            pts.append((x / 17, -y / 17 + 0.1))
        return [(P, pts)]
    if name == "crescent":
        return [(P, _poly(40)), (H, [(x + 0.45, y - 0.15) for x, y in _poly(40, 0.85)])]
    if name == "ring":
        return [(P, _poly(40)), (H, _poly(40, 0.55))]
    if name == "arrow":
        return [
            (
                P,
                [
                    (-1, -0.25),
                    (0.2, -0.25),
                    (0.2, -0.65),
                    (1, 0),
                    (0.2, 0.65),
                    (0.2, 0.25),
                    (-1, 0.25),
                ],
            )
        ]
    if name == "diamond":
        return [(P, [(0, -1), (0.5, 0), (0, 1), (-0.5, 0)])]
    if name == "ellipse":
        return [(P, [(x, 0.5 * y) for x, y in _poly(40)])]
    if name == "semicircle":
        return [(P, _arc(0, 0.35, 1.0, math.pi, 2 * math.pi))]
    if name == "trapezoid":
        return [(P, [(-0.45, -0.6), (0.45, -0.6), (1, 0.6), (-1, 0.6)])]
    if name == "parallelogram":
        return [(P, [(-0.4, -0.55), (1, -0.55), (0.4, 0.55), (-1, 0.55)])]
    if name == "corner":
        return [(P, [(-0.8, -1), (-0.3, -1), (-0.3, 0.5), (0.8, 0.5), (0.8, 1), (-0.8, 1)])]
    if name == "tee":
        return [(P, _rect(-1, -1, 1, -0.5)), (P, _rect(-0.25, -0.5, 0.25, 1))]
    if name == "kite":
        return [(P, [(0, -1), (0.6, -0.3), (0, 1), (-0.6, -0.3)])]
    if name == "house":
        return [(P, [(0, -1), (0.85, -0.2), (0.85, 0.9), (-0.85, 0.9), (-0.85, -0.2)])]
    if name == "hourglass":
        return [(P, [(-0.8, -1), (0.8, -1), (0.1, 0), (0.8, 1), (-0.8, 1), (-0.1, 0)])]
    if name == "bolt":
        return [
            (
                P,
                [
                    (0.2, -1),
                    (0.75, -1),
                    (0.2, -0.15),
                    (0.7, -0.15),
                    (-0.35, 1),
                    (-0.05, 0.15),
                    (-0.55, 0.15),
                ],
            )
        ]
    if name == "chevron":
        return [(P, [(-1, -0.3), (0, 0.4), (1, -0.3), (1, 0.25), (0, 0.95), (-1, 0.25)])]
    if name == "frame":
        return [(P, _rect(-0.85, -0.85, 0.85, 0.85)), (H, _rect(-0.5, -0.5, 0.5, 0.5))]
    if name == "teardrop":
        pts = _arc(0, 0.3, 0.62, -math.pi / 6, math.pi + math.pi / 6, 30)
        return [(P, [(0, -1), *pts[::-1]])]
    if name == "cloud":
        return [
            (P, _poly(24, 0.45)),
            (P, [(x - 0.5, y + 0.2) for x, y in _poly(24, 0.38)]),
            (P, [(x + 0.5, y + 0.2) for x, y in _poly(24, 0.38)]),
            (P, _rect(-0.8, 0.1, 0.8, 0.55)),
        ]
    if name == "bars":
        return [(P, _rect(-1, -0.65, 1, -0.2)), (P, _rect(-1, 0.2, 1, 0.65))]
    if name == "dots":
        return [
            (P, [(x + cx, y + cy) for x, y in _poly(20, 0.33)])
            for cx, cy in ((0, -0.6), (-0.62, 0.5), (0.62, 0.5))
        ]
    if name == "horseshoe":
        outer = _arc(0, -0.1, 0.95, math.pi, 2 * math.pi)
        inner = _arc(0, -0.1, 0.5, 2 * math.pi, math.pi)
        return [(P, [(-0.95, 1), *outer, (0.95, 1), (0.5, 1), *inner, (-0.5, 1)])]
    if name == "flag":
        return [(P, _rect(-0.8, -1, -0.6, 1)), (P, [(-0.6, -1), (0.9, -0.55), (-0.6, -0.1)])]
    raise KeyError(name)


def _luma(rgb) -> float:
    r, g, b = (c / 255.0 for c in rgb)
    return 0.299 * r + 0.587 * g + 0.114 * b


def _rand_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    h, s, v = rng.random(), rng.uniform(0.25, 1.0), rng.uniform(0.15, 1.0)
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(h, s, v))


@dataclass(frozen=True)
class RenderParams:
    """Every nuisance factor of one image (recorded so context can be compared)."""

    bg0: tuple[int, int, int]
    bg1: tuple[int, int, int]
    gradient_angle: float | None
    fg: tuple[int, int, int]
    cx: float
    cy: float
    scale: float
    rotation: float
    clutter: tuple[tuple, ...]


def sample_params(rng: np.random.Generator) -> RenderParams:
    bg0 = _rand_colour(rng)
    grad = rng.random() < 0.6
    bg1 = _rand_colour(rng) if grad else bg0
    mean_bg = tuple((a + b) / 2 for a, b in zip(bg0, bg1, strict=True))
    for _ in range(50):
        fg = _rand_colour(rng)
        if abs(_luma(fg) - _luma(mean_bg)) > 0.3:
            break
    scale = rng.uniform(0.28, 0.42)  # half-size as a fraction of the image
    margin = scale * 1.05
    cx, cy = rng.uniform(margin, 1 - margin, size=2)
    clutter = []
    for _ in range(int(rng.integers(0, 4))):
        kind = "dot" if rng.random() < 0.6 else "stroke"
        clutter.append((kind, tuple(float(v) for v in rng.random(4)), _rand_colour(rng)))
    return RenderParams(
        bg0=bg0,
        bg1=bg1,
        gradient_angle=float(rng.uniform(0, 2 * math.pi)) if grad else None,
        fg=fg,
        cx=float(cx),
        cy=float(cy),
        scale=float(scale),
        rotation=float(rng.uniform(-math.pi / 4, math.pi / 4)),
        clutter=tuple(clutter),
    )


def render(name: str, p: RenderParams, size: int = IMAGE_SIZE) -> Image.Image:
    big = size * _SS
    yy, xx = np.mgrid[0:big, 0:big] / (big - 1)
    if p.gradient_angle is None:
        t = np.zeros_like(xx)
    else:
        d = np.cos(p.gradient_angle) * (xx - 0.5) + np.sin(p.gradient_angle) * (yy - 0.5)
        t = (d - d.min()) / max(d.max() - d.min(), 1e-9)
    bg = (1 - t)[..., None] * np.array(p.bg0) + t[..., None] * np.array(p.bg1)
    img = Image.fromarray(bg.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for kind, (a, b, c, d), col in p.clutter:
        if kind == "dot":
            r = big * 0.03
            draw.ellipse([a * big - r, b * big - r, a * big + r, b * big + r], fill=col)
        else:
            draw.line(
                [
                    a * big,
                    b * big,
                    a * big + (c - 0.5) * big * 0.3,
                    b * big + (d - 0.5) * big * 0.3,
                ],
                fill=col,
                width=_SS,
            )
    mask = Image.new("L", (big, big), 0)
    mdraw = ImageDraw.Draw(mask)
    cos, sin = math.cos(p.rotation), math.sin(p.rotation)
    for kind, pts in _shape_parts(name):
        tp = [
            (
                (x * cos - y * sin) * p.scale * big + p.cx * big,
                (x * sin + y * cos) * p.scale * big + p.cy * big,
            )
            for x, y in pts
        ]
        mdraw.polygon(tp, fill=255 if kind == "poly" else 0)
    img.paste(Image.new("RGB", (big, big), p.fg), mask=mask)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def _stream(seed: int, pool: str, cls: int, *sub: int) -> np.random.Generator:
    return np.random.default_rng([seed, {"fewshot": 0, "generator": 1}[pool], cls, *sub])


# ----------------------------------------------------------------------------- context variant
def context_hue(name: str) -> float:
    """The background hue that class ``name`` tends to appear on in the correlated variant:
    evenly spaced within the class's split, so any two classes of an episode differ by at least
    1/20 of the hue circle (base), 1/8 (novel) or 1/4 (val)."""
    for split_classes in SPLITS.values():
        if name in split_classes:
            return split_classes.index(name) / len(split_classes)
    raise KeyError(name)


def correlate_context(
    name: str, p: RenderParams, rng: np.random.Generator, rho: float
) -> RenderParams:
    """With probability ``rho``, put the image on its class's typical background: both
    background colours take the class hue (±0.02) with a random saturation and value, so the
    background (and only it) predicts the class, as a natural image's scene does. The object is
    recoloured only if it would lose its contrast to the new background. Draws come from
    ``rng``, a stream of their own, so ``rho`` = 0 gives exactly the independent set."""
    typical = rng.random() < rho
    h = context_hue(name)
    cols = []
    for _ in range(2):
        hh = (h + rng.uniform(-0.02, 0.02)) % 1.0
        rgb = colorsys.hsv_to_rgb(hh, rng.uniform(0.45, 1.0), rng.uniform(0.35, 1.0))
        cols.append(tuple(int(255 * c) for c in rgb))
    fgs = [_rand_colour(rng) for _ in range(50)]
    if not typical:
        return p
    bg0, bg1 = cols[0], (cols[1] if p.gradient_angle is not None else cols[0])
    mean_bg = tuple((a + b) / 2 for a, b in zip(bg0, bg1, strict=True))
    fg = p.fg
    if abs(_luma(fg) - _luma(mean_bg)) <= 0.3:
        fg = next((c for c in fgs if abs(_luma(c) - _luma(mean_bg)) > 0.3), fgs[-1])
    return dataclasses.replace(p, bg0=bg0, bg1=bg1, fg=fg)


def is_typical_context(name: str, p: RenderParams, tol: float = 0.03) -> bool:
    """Whether both background colours lie on the class's typical hue (for diagnostics)."""
    h = context_hue(name)
    for c in (p.bg0, p.bg1):
        hh = colorsys.rgb_to_hsv(*(v / 255 for v in c))[0]
        if min(abs(hh - h), 1 - abs(hh - h)) > tol:
            return False
    return True


def generate_class(
    name: str,
    n: int,
    *,
    seed: int = 0,
    pool: str = "fewshot",
    size: int = IMAGE_SIZE,
    context_rho: float = 0.0,
):
    """``n`` images of class ``name`` (uint8 array n×size×size×3) and their nuisance params.

    ``context_rho`` > 0: the class–context correlated variant (:func:`correlate_context`);
    the same images otherwise, bit for bit."""
    cls = CLASSES.index(name)
    rng = _stream(seed, pool, cls)
    params = [sample_params(rng) for _ in range(n)]
    if context_rho > 0:
        side = _stream(seed, pool, cls, 7)  # a stream of its own: rho = 0 draws nothing
        params = [correlate_context(name, p, side, context_rho) for p in params]
    return np.stack([np.asarray(render(name, p, size)) for p in params]), params


def generate(
    n_per_class: int,
    *,
    seed: int = 0,
    pool: str = "fewshot",
    classes=CLASSES,
    size: int = IMAGE_SIZE,
    context_rho: float = 0.0,
):
    """All classes: images (N×size×size×3 uint8) and labels (indices into ``CLASSES``)."""
    xs, ys = [], []
    for name in classes:
        x, _ = generate_class(
            name, n_per_class, seed=seed, pool=pool, size=size, context_rho=context_rho
        )
        xs.append(x)
        ys.append(np.full(n_per_class, CLASSES.index(name), dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)
