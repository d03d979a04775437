"""A harder built-in dataset: sixteen confusable classes among clutter, drawn at ANY resolution.

``ShapesDataset`` (shapes.py, read it first) is solved by the default model in minutes (99.8%), so
it cannot tell two network designs apart. This one keeps its rules (nothing downloaded; the scene
of sample i depends only on (seed, split, i); every pixel is evaluated analytically from a signed
distance, so the same scene can be drawn at 24, 48 or 300 px) and adds what makes a task hard:

- **Confusable classes.** Pairs that differ in a small detail (circle / hexagon: the corners stand
  out by 13% of the radius; star5 / star6; ring / broken ring), textures that differ only in scale
  (stripes of two close periods in each direction), and dots / checker / grid at similar periods.
- **A scale range.** The labelled object's radius spans 0.14 to 0.30 of the image (2x), so size
  says nothing about the class; a texture's period does not scale with its patch.
- **Clutter.** One to three smaller distractors (radius 0.05 to 0.10) of other shape classes, each
  drawn behind or in front of the labelled object (partial occlusion), anywhere in the image.
  The label is the class of the large central object.

The sixteen classes (K = 16):

    shapes (rotate freely)       circle, hexagon, square, triangle, ring, broken_ring, cross,
                                 star5, star6
    textures (+-15 degrees)      hstripes_fine, hstripes_coarse, vstripes_fine, vstripes_coarse,
                                 checker, dots, grid

Rendering (as in shapes.py), at every pixel centre p = ((col + 0.5) / S, (row + 0.5) / S):

    local frame of object j     q = R(-theta_j) (p - c_j)
    coverage                    a_j = clip(1/2 - sd_j(q) S, 0, 1)                  anti-aliased edge
    painter's order             x = bg(p);  x <- x (1 - a_j) + rgb_j a_j  for j = behind, main, front
    pixel noise                 x = clip(x + uniform(-noise, noise), 0, 1)

Signed distances (negative inside; r the radius, n the number of corners or points):

    circle        |q| - r
    hexagon       max_k (n_k . q) - r cos(pi / 6)        six outward normals 60 degrees apart
    square        max(|q_x|, |q_y|) - 0.8 r
    triangle      max_k (n_k . q) - r / 2                three normals 120 degrees apart
    ring          | |q| - 0.72 r | - 0.2 r
    broken_ring   max(ring, |q| (g - |atan2(q_y, q_x)|))  a gap of half-angle g = 0.6 rad cut out
    cross         min(max(|q_x| - r, |q_y| - 0.27 r), max(|q_x| - 0.27 r, |q_y| - r))
    star n        |q| - r (0.5 + 0.5 tri(n phi / 2 pi))  tri(u) = |2 frac(u) - 1|, n = 5 or 6
    stripes       max(patch, P (| frac(q / P + o) - 1/2 | - 1/4))     fine P in [0.095, 0.11],
                                                                      coarse P in [0.12, 0.135]
    checker       max(patch, sign(sx sy) min(|sx|, |sy|))           P in [0.11, 0.14]
    dots          max(patch, |P (frac(q / P + o) - 1/2)| - 0.32 P)  P in [0.11, 0.14]
    grid          max(patch, min(lx, ly)),  l = P (1/2 - | frac(q / P + o) - 1/2 |) - 0.14 P
    patch         max(|q_x|, |q_y|) - h                  h in [0.2, 0.34]: the square a texture fills

At 48 px the fine stripes have a period of 4.6 to 5.3 px and the coarse ones 5.8 to 6.5 px (the
two ranges are 10% apart); at 32 px (the first progressive stage) fine and coarse are 3.0-3.5 px
and 3.8-4.3 px, so resolution matters.

Colours: each object's colour differs from the background colour by 0.3 to 0.7 in every channel
(the labelled object) or 0.25 to 0.75 (distractors), so everything is visible but colour says
nothing about the class. The background is a colour plus a low-frequency wave, as in shapes.py.

Labels: balanced in every block of sixteen consecutive samples (a random permutation per block).

Difficulty (measured on a 2-core Intel Xeon, AVX-512, shared with other jobs): the README's default
job (``tinyeffnet train --dataset clutter``: efficientnetv2_tiny, 12 epochs, 8,000 training images,
32 -> 48 px) reached 86.8%, 82.2% and 85.2% validation accuracy with seeds 0, 1, 2 (shapes: 99.8%);
a shallow three-stage network (fused 16, fused 24 e4, MBConv 32 e4 with SE, head 128, one block
each) reached 79.8%, 77.9% and 80.4%: the designs differ by more than the seeds do. The errors are
the confusable pairs: hexagon / circle, star5 / star6 / cross, grid / dots; the stripe periods are
told apart almost always. Rendering 8,000 images at 48 px takes about 3 s on one core.

Dimension legend: N images in a batch, S image side in pixels, 3 colour channels, D = 3 distractor
slots, K = 16 classes. Output: float32 NHWC images in [0, 1], int64 labels in [0, K).
"""
from __future__ import annotations

import numpy as np

from .procedural import (SPLITS, ProceduralDataset, check_count, check_split, coverage_by_label,
                         local_frame, paint)
from .shapes import _background, _stripe_distance

__all__ = ["ClutterDataset", "CLUTTER_CLASS_NAMES"]

CLUTTER_CLASS_NAMES = ("circle", "hexagon", "square", "triangle", "ring", "broken_ring", "cross", "star5",
                       "star6", "hstripes_fine", "hstripes_coarse", "vstripes_fine", "vstripes_coarse",
                       "checker", "dots", "grid")
NUM_SHAPES = 9                        # classes 0..8 are shapes (also the distractors' classes)
MAX_DISTRACTORS = 3
_TEXTURE_JITTER = np.pi / 12          # +-15 degrees for textures

# Columns of the per-sample uniform table U (N, NUM_COLUMNS), each in [0, 1).
_ORDER, _CX, _CY, _SIZE, _ROT, _BG, _FG, _PERIOD, _PHASE_X, _PHASE_Y, _WAVE, _COUNT = (
    0, 1, 2, 3, 4, 5, 8, 11, 12, 13, 14, 18)
_SLOT = 19                            # distractor slot k: columns _SLOT + 10k .. _SLOT + 10k + 9
_S_CLASS, _S_CX, _S_CY, _S_SIZE, _S_ROT, _S_COLOUR, _S_FRONT = 0, 1, 2, 3, 4, 5, 8
SLOT_COLUMNS = 10                     # class, cx, cy, size, rotation, colour (3), in front, spare
NUM_COLUMNS = _SLOT + SLOT_COLUMNS * MAX_DISTRACTORS

# Texture periods P (fractions of the image side) per texture class: (low, high).
_PERIODS = {9: (0.095, 0.11), 10: (0.12, 0.135), 11: (0.095, 0.11), 12: (0.12, 0.135),
            13: (0.11, 0.14), 14: (0.11, 0.14), 15: (0.11, 0.14)}


def _check_unit_number(name: str, value, high: float) -> float:
    """A real number in [0, high] (bools refused), named in the message."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"ClutterDataset: {name} must be a number in [0, {high}], got {value!r}")
    if not 0.0 <= float(value) <= high:
        raise ValueError(f"ClutterDataset: {name} must be in [0, {high}], got {value}")
    return float(value)


class ClutterDataset(ProceduralDataset):
    """Sixteen confusable classes among distractors, deterministic by seed, at any resolution.

    num_samples: how many samples (index i in [0, num_samples)).
    image_size:  default side S in pixels for ``batch`` (any size can be asked for per call).
    seed, split: "train", "val" or "test" draw independent scenes from the same seed.
    noise:       amplitude of the uniform pixel noise, in [0, 0.5].
    distractors: the most distractors per image, 0 to 3 (each image gets 1 to this many; 0: none).
    Attributes: labels (num_samples,) int64; num_classes 16; class_names.
    """

    num_classes = len(CLUTTER_CLASS_NAMES)
    class_names = CLUTTER_CLASS_NAMES
    NOISE_STREAM = (16,)                 # 16: not the shapes' noise stream
    RENDER_PIXELS = 2 ** 19              # more temporaries per pixel than the shapes (distractors)

    def __init__(self, num_samples: int, image_size: int = 64, seed: int = 0, split: str = "train",
                 noise: float = 0.08, distractors: int = MAX_DISTRACTORS):
        self.num_samples = check_count("ClutterDataset", "num_samples", num_samples, 1)
        self.image_size = check_count("ClutterDataset", "image_size", image_size, 4)
        self.seed = check_count("ClutterDataset", "seed", seed, 0)
        self.split = check_split("ClutterDataset", split)
        self.noise = _check_unit_number("noise", noise, 0.5)
        self.distractors = check_count("ClutterDataset", "distractors", distractors, 0)
        if self.distractors > MAX_DISTRACTORS:
            raise ValueError(f"ClutterDataset: distractors must be <= {MAX_DISTRACTORS}, got {distractors}")
        self._table, self.labels = self._draw_scenes()

    def _draw_scenes(self):
        """U (rows, NUM_COLUMNS) and labels: rows filled in order, so row i is the same for every size."""
        k = self.num_classes
        rows = -(-self.num_samples // k) * k                                 # whole blocks of K
        rng = np.random.default_rng([self.seed, SPLITS[self.split], 16])     # 16: not shapes' stream
        table = rng.random((rows, NUM_COLUMNS))                              # (rows, NUM_COLUMNS) float64
        labels = np.argsort(table[:, _ORDER].reshape(-1, k), axis=1).reshape(-1).astype(np.int64)
        return table[: self.num_samples], labels[: self.num_samples]

    def scene(self, i: int) -> dict:
        """The numbers that describe sample i (independent of the resolution)."""
        i = int(self._indices([i])[0])
        main, slots = _scene_parameters(self._table[i: i + 1], self.labels[i: i + 1], self.distractors)
        return {"label": int(self.labels[i]), "class_name": CLUTTER_CLASS_NAMES[self.labels[i]],
                **{k: np.asarray(v)[0].tolist() for k, v in main.items()},
                "distractors": [{k: np.asarray(v)[0].tolist() for k, v in s.items()}
                                for s in slots if s["active"][0]]}

    def _render(self, indices: np.ndarray, size: int, out: np.ndarray) -> None:
        """Draw the scenes of ``indices`` into out (N, S, S, 3) float32, in painter's order."""
        labels = self.labels[indices]
        main, slots = _scene_parameters(self._table[indices], labels, self.distractors)
        _background(main, size, out=out)                                            # (N, S, S, 3)
        for in_front in (False, True):
            if in_front:
                paint(out, _coverage(main, labels, size), main["fg"])
            for slot in slots:
                show = slot["active"] & (slot["front"] == in_front)                 # (N,) bool
                if show.any():
                    rows = np.flatnonzero(show)
                    a = _coverage(_take(slot, rows), slot["label"][rows], size)     # (n, S, S)
                    paint(out, a, slot["fg"][rows], rows)
        if self.noise:
            self._add_noise(indices, size, out)
        np.clip(out, 0, 1, out=out)

def _take(params: dict, rows: np.ndarray) -> dict:
    return {k: v[rows] for k, v in params.items()}


# ----------------------------------------------------------------------------------------------------
# Scene parameters from the uniform table
# ----------------------------------------------------------------------------------------------------

def _scene_parameters(u: np.ndarray, labels: np.ndarray, max_distractors: int):
    """Map uniforms (N, NUM_COLUMNS) to scene numbers, float32: (main object, [distractor slots]).

    Every value is a fraction of the image side. A slot's ``active`` says whether sample n has a
    distractor there (each image has 1 .. max_distractors of them); its class is a shape class
    other than the label."""
    f32 = np.float32
    is_texture = labels >= NUM_SHAPES
    low = np.array([_PERIODS.get(int(c), (0.1, 0.1))[0] for c in labels])
    high = np.array([_PERIODS.get(int(c), (0.1, 0.1))[1] for c in labels])
    bg = u[:, _BG: _BG + 3]                                                      # (N, 3)
    main = {
        "center": (0.3 + 0.4 * u[:, [_CX, _CY]]).astype(f32),                   # (N, 2) x, y
        "size": np.where(is_texture, 0.2 + 0.14 * u[:, _SIZE], 0.14 + 0.16 * u[:, _SIZE]).astype(f32),
        "rotation": np.where(is_texture, (2 * u[:, _ROT] - 1) * _TEXTURE_JITTER,
                             2 * np.pi * u[:, _ROT]).astype(f32),
        "period": (low + (high - low) * u[:, _PERIOD]).astype(f32),
        "offset": u[:, [_PHASE_X, _PHASE_Y]].astype(f32),
        "bg": bg.astype(f32),
        "fg": np.mod(bg + 0.3 + 0.4 * u[:, _FG: _FG + 3], 1.0).astype(f32),
        "wave_angle": (2 * np.pi * u[:, _WAVE]).astype(f32),
        "wave_freq": (1.0 + 2.0 * u[:, _WAVE + 1]).astype(f32),
        "wave_phase": (2 * np.pi * u[:, _WAVE + 2]).astype(f32),
        "wave_amp": (0.12 * u[:, _WAVE + 3]).astype(f32),
    }
    count = np.where(max_distractors > 0, 1 + np.floor(u[:, _COUNT] * max_distractors), 0)    # (N,)
    slots = []
    for k in range(MAX_DISTRACTORS):
        s = u[:, _SLOT + SLOT_COLUMNS * k: _SLOT + SLOT_COLUMNS * (k + 1)]           # (N, 10)
        label = np.floor(s[:, _S_CLASS] * (NUM_SHAPES - 1)).astype(np.int64)         # 0 .. 7
        label = np.where(is_texture | (label < labels), label, label + 1)            # skip the label
        slots.append({
            "active": count > k,
            "label": label,
            "front": s[:, _S_FRONT] < 0.5,
            "center": (0.08 + 0.84 * s[:, [_S_CX, _S_CY]]).astype(f32),
            "size": (0.05 + 0.05 * s[:, _S_SIZE]).astype(f32),
            "rotation": (2 * np.pi * s[:, _S_ROT]).astype(f32),
            "period": np.full(len(labels), 0.1, dtype=f32),
            "offset": np.zeros((len(labels), 2), dtype=f32),
            "fg": np.mod(bg + 0.25 + 0.5 * s[:, _S_COLOUR: _S_COLOUR + 3], 1.0).astype(f32),
        })
    return main, slots


# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------

def _polygon(qx, qy, corners: int, first_angle: float):
    """max_k (n_k . q): the support function of a regular polygon with ``corners`` outward normals."""
    sd = None
    for k in range(corners):
        a = np.float32(first_angle + 2 * np.pi * k / corners)
        d = np.cos(a) * qx + np.sin(a) * qy
        sd = d if sd is None else np.maximum(sd, d)
    return sd


def _star(radius, qx, qy, r, points: int):
    """|q| - r (0.5 + 0.5 tri(n phi / 2 pi)): n points on a circle of radius r."""
    f32 = np.float32
    u = f32(points / (2 * np.pi)) * np.arctan2(qy, qx)
    tri = np.abs(f32(2) * (u - np.floor(u)) - f32(1))
    return radius - r * (f32(0.5) + f32(0.5) * tri)


def _line_distance(coordinate, period, offset):
    """Signed distance to thin lines of width 0.28 P, period P along one axis (negative inside)."""
    phase = coordinate / period + offset
    return period * (np.float32(0.5) - np.abs(phase - np.floor(phase) - np.float32(0.5)) - np.float32(0.14))


def _signed_distance(label: int, qx, qy, p: dict):
    """sd (n, S, S) for n objects of one class; per-object numbers p[...] are (n, 1, 1)."""
    f32 = np.float32
    r = p["size"]
    radius = np.sqrt(qx * qx + qy * qy)
    if label == 0:                                                     # circle
        return radius - r
    if label == 1:                                                     # hexagon (corners on the circle)
        return _polygon(qx, qy, 6, 0.0) - f32(np.cos(np.pi / 6)) * r
    if label == 2:                                                     # square
        return np.maximum(np.abs(qx), np.abs(qy)) - f32(0.8) * r
    if label == 3:                                                     # triangle
        return _polygon(qx, qy, 3, np.pi / 2) - f32(0.5) * r
    if label in (4, 5):                                                # ring, broken ring
        ring = np.abs(radius - f32(0.72) * r) - f32(0.2) * r
        if label == 4:
            return ring
        gap = radius * (f32(0.6) - np.abs(np.arctan2(qy, qx)))       # > 0 inside the gap's wedge
        return np.maximum(ring, gap)
    if label == 6:                                                     # cross
        w = f32(0.27) * r
        ax, ay = np.abs(qx), np.abs(qy)
        return np.minimum(np.maximum(ax - r, ay - w), np.maximum(ax - w, ay - r))
    if label in (7, 8):                                                # star5, star6
        return _star(radius, qx, qy, r, 5 if label == 7 else 6)
    patch = np.maximum(np.abs(qx), np.abs(qy)) - r                     # textures fill a square
    period, ox, oy = p["period"], p["offset_x"], p["offset_y"]
    if label in (9, 10):                                               # horizontal stripes
        pattern = _stripe_distance(qy, period, oy)
    elif label in (11, 12):                                            # vertical stripes
        pattern = _stripe_distance(qx, period, ox)
    elif label == 13:                                                  # checker
        sx = _stripe_distance(qx, period, ox)
        sy = _stripe_distance(qy, period, oy)
        pattern = np.sign(sx * sy) * np.minimum(np.abs(sx), np.abs(sy))
    elif label == 14:                                                  # dots
        dx = period * (qx / period + ox - np.floor(qx / period + ox) - f32(0.5))
        dy = period * (qy / period + oy - np.floor(qy / period + oy) - f32(0.5))
        pattern = np.sqrt(dx * dx + dy * dy) - f32(0.32) * period
    else:                                                              # grid
        pattern = np.minimum(_line_distance(qx, period, ox), _line_distance(qy, period, oy))
    return np.maximum(patch, pattern)


def _coverage(params: dict, labels: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased coverage a = clip(1/2 - sd S, 0, 1), (N, S, S) float32."""
    qx, qy = local_frame(params, size)                                          # (N, S, S)
    per_object = {"size": params["size"], "period": params["period"],
                  "offset_x": params["offset"][:, 0], "offset_y": params["offset"][:, 1]}
    return coverage_by_label(_signed_distance, labels, qx, qy, per_object, size)
