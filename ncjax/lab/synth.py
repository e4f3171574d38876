"""Procedural traffic signs: 43 classes shaped after GTSRB's, rendered 32x32 RGB like its ROI crops.

Each class is a sign template (shape, rim and fill colours, a glyph of digits, arrows, bars or simple
pictograms) drawn once, anti-aliased, on a 64x64 RGBA canvas. Each image warps a template by a random
similarity + shear, puts it on a cluttered background and applies brightness, contrast, blur and noise, all
vectorized in numpy and deterministic by seed. Nothing here comes from GTSRB itself.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

NUM_CLASSES = 43
TEMPLATE_SIZE = 64
_SUPERSAMPLE = 3

COLOURS = {
    "red": (200, 25, 30), "white": (245, 245, 240), "black": (20, 20, 20), "blue": (25, 70, 170),
    "yellow": (245, 195, 20), "grey": (120, 120, 120), "green": (30, 150, 60), "orange": (240, 120, 20),
}

# --------------------------------------------------------------------------------------- primitives
# Template coordinates: u (right) and v (down) in [-1, 1]. A glyph is a list of (colour, primitive).


def _half_planes(points):
    pts = np.asarray(points, float)
    return pts, np.roll(pts, -1, axis=0)


def _in_convex(u, v, points):
    a, b = _half_planes(points)
    inside = np.ones(u.shape, bool)
    (x0, y0), (x1, y1), (x2, y2) = a[0], b[0], a[2 % len(a)]
    sign = np.sign((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0))  # orientation of the polygon
    for p, q in zip(a, b):
        inside &= sign * ((q[0] - p[0]) * (v - p[1]) - (q[1] - p[1]) * (u - p[0])) >= 0
    return inside


def _regular(n, radius, rotation=0.0):
    return [(radius * math.cos(rotation + 2 * math.pi * k / n), radius * math.sin(rotation + 2 * math.pi * k / n))
            for k in range(n)]


SHAPES = {
    "circle": lambda u, v, s: u * u + v * v <= s * s,
    "triangle": lambda u, v, s: _in_convex(u, v, [(0, -s), (s * 1.0, s * 0.75), (-s * 1.0, s * 0.75)]),
    "inv_triangle": lambda u, v, s: _in_convex(u, v, [(-s, -s * 0.75), (s, -s * 0.75), (0, s)]),
    "octagon": lambda u, v, s: _in_convex(u, v, _regular(8, s, math.pi / 8)),
    "diamond": lambda u, v, s: np.abs(u) + np.abs(v) <= s,
    "square": lambda u, v, s: np.maximum(np.abs(u), np.abs(v)) <= s * 0.85,
}


def _segment(u, v, x0, y0, x1, y1, width):
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((u - x0) * dx + (v - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return (u - x0 - t * dx) ** 2 + (v - y0 - t * dy) ** 2 <= width * width


_SEGMENTS = {  # seven-segment digits: a b c d e f g
    "0": "abcdef", "1": "bc", "2": "abged", "3": "abgcd", "4": "fgbc", "5": "afgcd", "6": "afgedc", "7": "abc",
    "8": "abcdefg", "9": "abcdfg",
}


def _digits(u, v, text, height=0.75, width=0.3, stroke=0.075):
    out = np.zeros(u.shape, bool)
    gap = width * 0.45
    total = len(text) * width + (len(text) - 1) * gap
    h = height / 2
    for i, ch in enumerate(text):
        x0 = -total / 2 + i * (width + gap)
        x1 = x0 + width
        segs = {"a": (x0, -h, x1, -h), "b": (x1, -h, x1, 0), "c": (x1, 0, x1, h), "d": (x0, h, x1, h),
                "e": (x0, 0, x0, h), "f": (x0, -h, x0, 0), "g": (x0, 0, x1, 0)}
        for s in _SEGMENTS[ch]:
            out |= _segment(u, v, *segs[s], stroke)
    return out


def _draw(u, v, primitive):
    kind, *args = primitive
    if kind == "line":
        return _segment(u, v, *args)
    if kind == "rect":
        x0, y0, x1, y1 = args
        return (u >= x0) & (u <= x1) & (v >= y0) & (v <= y1)
    if kind == "disk":
        cx, cy, r = args
        return (u - cx) ** 2 + (v - cy) ** 2 <= r * r
    if kind == "ring":
        cx, cy, r, w = args
        d = np.sqrt((u - cx) ** 2 + (v - cy) ** 2)
        return np.abs(d - r) <= w
    if kind == "poly":
        return _in_convex(u, v, args[0])
    if kind == "digits":
        return _digits(u, v, *args)
    raise ValueError(kind)


def _arrow(x0, y0, x1, y1, w=0.09, head=0.22):
    """A shaft from (x0, y0) to (x1, y1) ending in a triangular head."""
    dx, dy = x1 - x0, y1 - y0
    n = math.hypot(dx, dy)
    dx, dy = dx / n, dy / n
    bx, by = x1 - dx * head, y1 - dy * head
    px, py = -dy, dx
    return [("line", x0, y0, bx, by, w),
            ("poly", [(x1, y1), (bx + px * head * 0.8, by + py * head * 0.8),
                      (bx - px * head * 0.8, by - py * head * 0.8)])]


def _car(cx, cy, s=1.0):
    return [("rect", cx - 0.16 * s, cy - 0.06 * s, cx + 0.16 * s, cy + 0.1 * s),
            ("rect", cx - 0.09 * s, cy - 0.15 * s, cx + 0.09 * s, cy - 0.04 * s)]


def _truck(cx, cy):
    return [("rect", cx - 0.2, cy - 0.18, cx + 0.08, cy + 0.1), ("rect", cx + 0.08, cy - 0.08, cx + 0.2, cy + 0.1)]


def _person(cx, cy, s=1.0):
    return [("disk", cx, cy - 0.3 * s, 0.08 * s), ("line", cx, cy - 0.2 * s, cx, cy + 0.1 * s, 0.06 * s),
            ("line", cx, cy + 0.1 * s, cx - 0.12 * s, cy + 0.35 * s, 0.05 * s),
            ("line", cx, cy + 0.1 * s, cx + 0.12 * s, cy + 0.35 * s, 0.05 * s),
            ("line", cx - 0.15 * s, cy - 0.1 * s, cx + 0.15 * s, cy - 0.1 * s, 0.045 * s)]


def _mandatory(glyph):
    return ("circle", "blue", "blue", [("white", p) for p in glyph])


def _warn(primitives):
    # Warning glyphs sit low in the triangle, where it is wide.
    return ("triangle", "red", "white", [("black", _shift(p, 0.0, 0.18)) for p in primitives])


def _shift(primitive, dx, dy):
    kind, *args = primitive
    if kind == "line":
        x0, y0, x1, y1, w = args
        return ("line", x0 * 0.7 + dx, y0 * 0.7 + dy, x1 * 0.7 + dx, y1 * 0.7 + dy, w * 0.8)
    if kind == "rect":
        x0, y0, x1, y1 = args
        return ("rect", x0 * 0.7 + dx, y0 * 0.7 + dy, x1 * 0.7 + dx, y1 * 0.7 + dy)
    if kind in ("disk", "ring"):
        cx, cy, r, *rest = args
        return (kind, cx * 0.7 + dx, cy * 0.7 + dy, r * 0.7, *[w * 0.7 for w in rest])
    if kind == "poly":
        return ("poly", [(x * 0.7 + dx, y * 0.7 + dy) for x, y in args[0]])
    if kind == "digits":
        return primitive
    raise ValueError(kind)


def _speed(text):
    return ("circle", "red", "white", [("black", ("digits", text, 0.62, 0.26 if len(text) < 3 else 0.2, 0.07))])


def _end(glyph):
    return ("circle", None, "white", [("grey", p) for p in glyph] + [("grey", ("line", -0.6, 0.6, 0.6, -0.6, 0.05))])


# (shape, rim colour or None, fill colour, [(colour, primitive), ...]) for classes 0..42, after GTSRB's.
CLASS_SPECS = [
    _speed("20"), _speed("30"), _speed("50"), _speed("60"), _speed("70"), _speed("80"),
    _end([("digits", "80", 0.62, 0.26, 0.07)]),
    _speed("100"), _speed("120"),
    ("circle", "red", "white", [("black", p) for p in _car(-0.2, 0.05)] + [("red", p) for p in _car(0.2, 0.05)]),
    ("circle", "red", "white",
     [("red", p) for p in _truck(-0.18, 0.05)] + [("black", p) for p in _car(0.25, 0.05, 0.8)]),
    _warn([("rect", -0.07, -0.55, 0.07, 0.35), ("rect", -0.35, -0.15, 0.35, -0.02)]),
    ("diamond", "white", "yellow", [("white", ("rect", -0.02, -0.02, 0.02, 0.02))]),
    ("inv_triangle", "red", "white", []),
    ("octagon", "white", "red", [("white", ("rect", x, -0.2, x + 0.09, 0.2)) for x in (-0.45, -0.2, 0.05, 0.3)]),
    ("circle", "red", "white", []),
    ("circle", "red", "white", [("black", p) for p in _truck(0.0, 0.05)]),
    ("circle", "red", "red", [("white", ("rect", -0.6, -0.14, 0.6, 0.14))]),
    _warn([("rect", -0.07, -0.5, 0.07, 0.12), ("disk", 0.0, 0.35, 0.09)]),
    _warn([("line", 0.1, 0.4, 0.1, -0.1, 0.08), ("line", 0.1, -0.1, -0.25, -0.45, 0.08)]),
    _warn([("line", -0.1, 0.4, -0.1, -0.1, 0.08), ("line", -0.1, -0.1, 0.25, -0.45, 0.08)]),
    _warn([("line", 0.0, 0.45, -0.2, 0.15, 0.07), ("line", -0.2, 0.15, 0.2, -0.15, 0.07),
           ("line", 0.2, -0.15, 0.0, -0.45, 0.07)]),
    _warn([("disk", -0.22, 0.2, 0.17), ("disk", 0.22, 0.2, 0.17), ("rect", -0.5, 0.2, 0.5, 0.38)]),
    _warn([*(_car(0.0, -0.15)), ("line", -0.3, 0.4, -0.05, 0.1, 0.05), ("line", 0.05, 0.4, 0.3, 0.1, 0.05)]),
    _warn([("line", -0.2, -0.5, -0.2, 0.45, 0.06), ("line", 0.2, 0.45, 0.2, 0.0, 0.06),
           ("line", 0.2, 0.0, 0.05, -0.5, 0.06)]),
    _warn([("disk", -0.05, -0.4, 0.08), ("line", -0.05, -0.3, 0.05, 0.1, 0.07), ("line", 0.05, 0.1, 0.25, 0.1, 0.06),
           ("rect", -0.45, 0.3, 0.45, 0.4), ("line", -0.3, 0.3, -0.1, -0.1, 0.05)]),
    ("triangle", "red", "white", [("red", ("disk", 0.0, -0.18, 0.11)), ("orange", ("disk", 0.0, 0.1, 0.11)),
                                  ("green", ("disk", 0.0, 0.38, 0.11))]),
    _warn([p for p in _person(0.0, 0.0)]),
    _warn([p for p in _person(-0.18, 0.08, 0.75)] + [p for p in _person(0.2, 0.12, 0.6)]),
    _warn([("ring", -0.25, 0.15, 0.17, 0.04), ("ring", 0.25, 0.15, 0.17, 0.04), ("line", -0.25, 0.15, 0.05, -0.2, 0.05),
           ("line", 0.05, -0.2, 0.25, 0.15, 0.05)]),
    _warn([("line", 0.0, -0.45, 0.0, 0.45, 0.05), ("line", -0.4, -0.22, 0.4, 0.22, 0.05),
           ("line", -0.4, 0.22, 0.4, -0.22, 0.05)]),
    _warn([("line", -0.35, 0.0, 0.2, -0.1, 0.12), ("disk", 0.3, -0.25, 0.09), ("line", -0.3, 0.0, -0.35, 0.4, 0.05),
           ("line", 0.15, -0.05, 0.2, 0.4, 0.05)]),
    _end([("line", -0.5, 0.3, 0.3, -0.5, 0.03), ("line", -0.3, 0.5, 0.5, -0.3, 0.03)]),
    _mandatory([("line", -0.2, 0.5, -0.2, -0.1, 0.1), *_arrow(-0.2, -0.1, 0.45, -0.1)]),
    _mandatory([("line", 0.2, 0.5, 0.2, -0.1, 0.1), *_arrow(0.2, -0.1, -0.45, -0.1)]),
    _mandatory(_arrow(0.0, 0.55, 0.0, -0.55)),
    _mandatory([*_arrow(-0.1, 0.55, -0.1, -0.55), *_arrow(-0.1, 0.05, 0.5, 0.05)]),
    _mandatory([*_arrow(0.1, 0.55, 0.1, -0.55), *_arrow(0.1, 0.05, -0.5, 0.05)]),
    _mandatory(_arrow(-0.4, -0.4, 0.35, 0.35)),
    _mandatory(_arrow(0.4, -0.4, -0.35, 0.35)),
    _mandatory([("ring", 0.0, 0.0, 0.38, 0.08), ("poly", [(0.38, -0.3), (0.58, 0.05), (0.18, 0.05)]),
                ("poly", [(-0.38, 0.3), (-0.58, -0.05), (-0.18, -0.05)])]),
    _end([*_car(-0.2, 0.05), *_car(0.2, 0.05)]),
    _end([*_truck(-0.18, 0.05), *_car(0.25, 0.05, 0.8)]),
]
assert len(CLASS_SPECS) == NUM_CLASSES

CLASS_NAMES = (
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70", "speed limit 80",
    "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing", "no passing for trucks",
    "right-of-way at next intersection", "priority road", "yield", "stop", "no vehicles", "no trucks", "no entry",
    "general caution", "dangerous curve left", "dangerous curve right", "double curve", "bumpy road",
    "slippery road", "road narrows on the right", "road work", "traffic signals", "pedestrians",
    "children crossing", "bicycles crossing", "beware of ice/snow", "wild animals crossing",
    "end of all speed and passing limits", "turn right ahead", "turn left ahead", "ahead only",
    "go straight or right", "go straight or left", "keep right", "keep left", "roundabout mandatory",
    "end of no passing", "end of no passing for trucks",
)


def _render(spec, size: int) -> np.ndarray:
    """One class template as RGBA float in [0, 1], (size, size, 4), anti-aliased by supersampling."""
    shape, rim, fill, glyph = spec
    n = size * _SUPERSAMPLE
    coords = (np.arange(n) + 0.5) / n * 2 - 1
    v, u = np.meshgrid(coords, coords, indexing="ij")
    outer = SHAPES[shape](u, v, 0.97)
    inner = SHAPES[shape](u, v, 0.97 * 0.8) if rim else outer
    rgb = np.zeros((n, n, 3))
    rgb[outer] = COLOURS[rim or fill]
    rgb[inner] = COLOURS[fill]
    for colour, primitive in glyph:
        rgb[_draw(u, v, primitive) & inner] = COLOURS[colour]
    rgba = np.concatenate([rgb / 255.0, outer[..., None].astype(float)], axis=-1)
    return rgba.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 4).mean(axis=(1, 3))


@lru_cache(maxsize=2)
def templates(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """All class templates, (43, size, size, 4) float32 RGBA in [0, 1]."""
    return np.stack([_render(spec, size) for spec in CLASS_SPECS]).astype(np.float32)


# ------------------------------------------------------------------------------------------- images


def _bilinear(src: np.ndarray, index: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Sample src (K, S, S, C) at float pixel coords (B, H, W) of template index (B,), zero outside."""
    k, s = src.shape[0], src.shape[1]
    flat = src.reshape(k * s * s, -1)
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    fy, fx = (y - y0)[..., None], (x - x0)[..., None]
    out: np.ndarray | float = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            valid = ((yy >= 0) & (yy < s) & (xx >= 0) & (xx < s))[..., None]
            idx = index[:, None, None] * s * s + np.clip(yy, 0, s - 1) * s + np.clip(xx, 0, s - 1)
            out = out + np.where(valid, flat[idx], 0.0) * wy * wx
    return np.asarray(out)


def _smooth_noise(rng, n, size, cells, channels=3):
    """Low-frequency colour fields: random values on a coarse grid, bilinearly enlarged."""
    coarse = rng.uniform(0, 1, (n, cells + 1, cells + 1, channels)).astype(np.float32)
    pos = np.linspace(0, cells, size)
    i0 = np.minimum(pos.astype(int), cells - 1)
    f = (pos - i0).astype(np.float32)
    rows = coarse[:, i0] * (1 - f)[None, :, None, None] + coarse[:, i0 + 1] * f[None, :, None, None]
    return rows[:, :, i0] * (1 - f)[None, None, :, None] + rows[:, :, i0 + 1] * f[None, None, :, None]


def generate(n: int, *, seed: int, image_size: int = 32, labels: np.ndarray | None = None,
             difficulty: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """`n` synthetic traffic-sign images (n, size, size, 3) uint8 RGB and their labels (n,) int64.

    Classes are balanced (each appears n // 43 or n // 43 + 1 times, shuffled) unless `labels` is given.
    `difficulty` scales the random distortions (0: clean centred signs).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.permutation(np.arange(n) % NUM_CLASSES)
    labels = np.asarray(labels, np.int64)
    out = np.empty((n, image_size, image_size, 3), np.uint8)
    for start in range(0, n, 4096):  # bounded memory for large n
        stop = min(start + 4096, n)
        out[start:stop] = _images(rng, labels[start:stop], image_size, difficulty)
    return out, labels


def _images(rng, labels, size, difficulty):
    n = len(labels)
    tpl = templates()
    s = tpl.shape[1]
    d = difficulty
    scale = rng.uniform(1 - 0.25 * d, 1 + 0.05 * d, n)  # sign size relative to the frame
    angle = np.deg2rad(rng.uniform(-10, 10, n) * d)
    shear = rng.uniform(-0.12, 0.12, n) * d
    aspect = np.exp(rng.uniform(-0.12, 0.12, n) * d)
    shift = rng.uniform(-0.1, 0.1, (n, 2)) * d
    # Output pixel centres in [-1, 1], mapped back into template coordinates.
    grid = (np.arange(size) + 0.5) / size * 2 - 1
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    px, py = gx[None] - shift[:, 0, None, None], gy[None] - shift[:, 1, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    rx, ry = cos * px + sin * py, -sin * px + cos * py
    rx = rx - shear[:, None, None] * ry
    tu = rx / (scale * aspect)[:, None, None]
    tv = ry / (scale / aspect)[:, None, None]
    sample = _bilinear(tpl, labels, (tv + 1) / 2 * s - 0.5, (tu + 1) / 2 * s - 0.5)
    sign, alpha = sample[..., :3], sample[..., 3:4]
    # Cluttered background: smooth colour fields, finer texture, and a few hard-edged patches.
    bg = 0.6 * _smooth_noise(rng, n, size, 3) + 0.4 * _smooth_noise(rng, n, size, 8)
    bg = bg * rng.uniform(0.3, 1.0, (n, 1, 1, 1))
    for _ in range(2):
        x0, y0 = rng.integers(0, size, (2, n))
        w, h = rng.integers(3, size // 2, (2, n))
        cols, rows = np.arange(size)[None, None, :], np.arange(size)[None, :, None]
        patch = ((cols >= x0[:, None, None]) & (cols < (x0 + w)[:, None, None])
                 & (rows >= y0[:, None, None]) & (rows < (y0 + h)[:, None, None]))
        bg = np.where(patch[..., None], rng.uniform(0, 1, (n, 1, 1, 3)), bg)
    img = alpha * sign + (1 - alpha) * bg
    # Lighting: contrast around the mean, brightness, a slight colour cast.
    mean = img.mean(axis=(1, 2, 3), keepdims=True)
    img = (img - mean) * rng.uniform(1 - 0.45 * d, 1 + 0.1 * d, (n, 1, 1, 1)) + mean
    img = (img * rng.uniform(1 - 0.55 * d, 1 + 0.2 * d, (n, 1, 1, 1))
           * rng.uniform(1 - 0.08 * d, 1 + 0.08 * d, (n, 1, 1, 3)))
    # Blur (a [1, 2, 1] / 4 kernel, applied 0-2 times) and sensor noise.
    passes = rng.integers(0, 3, n) if d > 0 else np.zeros(n, int)
    for k in (1, 2):
        blurred = _blur(img)
        img = np.where((passes >= k)[:, None, None, None], blurred, img)
    img = img + rng.normal(0, 1, img.shape) * rng.uniform(0, 0.04 * d, (n, 1, 1, 1))
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def _blur(img):
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    rows = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]) / 4
    return (rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4


def contact_sheet(images_per_class: int = 6, *, seed: int = 0, scale: int = 2) -> np.ndarray:
    """A grid image (uint8 RGB): one row per class, `images_per_class` samples each, 1-pixel gaps."""
    labels = np.repeat(np.arange(NUM_CLASSES), images_per_class)
    images, _ = generate(len(labels), seed=seed, labels=labels)
    size = images.shape[1] * scale
    sheet = np.full((NUM_CLASSES * (size + 2), images_per_class * (size + 2), 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, images_per_class)
        big = np.repeat(np.repeat(img, scale, 0), scale, 1)
        sheet[r * (size + 2): r * (size + 2) + size, c * (size + 2): c * (size + 2) + size] = big
    return sheet
