"""The built-in dataset: ten classes of shapes and textures, drawn analytically at ANY resolution.

Nothing is downloaded. Every image is a scene described by a few numbers (class, centre, size,
rotation, colours, background wave); the scene of sample i depends only on (seed, split, i), never
on the image size or on how many samples the dataset has. Rendering evaluates, at every pixel centre,
a signed distance sd(p) to the shape's edge (negative inside), in coordinates where the image is the
unit square, so the same scene can be drawn at 32 px or at 300 px. That is what progressive
learning needs: one training set, seen at growing resolution.

    pixel centre        p = ((col + 0.5) / S, (row + 0.5) / S)             in [0, 1]^2
    local frame         q = R(-theta) (p - c)                              rotation theta about centre c
    coverage            a = clip(1/2 - sd(q) / px, 0, 1),  px = 1 / S      (a box-filtered edge: anti-aliased)
    image               x = clip(bg(p) (1 - a) + fg a + noise, 0, 1)
    background          bg(p) = bg_rgb + amp * sin(2 pi f (cos(phi) p_x + sin(phi) p_y) + psi)

Sizes, as fractions of the image side: centre c in [0.3, 0.7]^2; shape radius r in [0.18, 0.32];
texture square half-side h in [0.22, 0.35].

Signed distances:

    circle      |q| - r
    square      max(|q_x|, |q_y|) - 0.85 r
    triangle    max_k (n_k . q) - r / 2             three outward unit normals 120 degrees apart
    ring        | |q| - 0.75 r | - t r              t in [0.12, 0.2]
    cross       min(max(|q_x| - r, |q_y| - w), max(|q_x| - w, |q_y| - r)),   w = r * [0.22, 0.32]
    star        |q| - r (0.45 + 0.55 tri(5 phi / 2 pi))          tri(u) = |2 frac(u) - 1|: five points
    hstripes    max(patch, P (| frac(q_y / P + o) - 1/2 | - 1/4))   stripes of period P along y
    vstripes    the same along x
    checker     max(patch, sign(sx sy) min(|sx|, |sy|))            sx, sy: the stripe distances
    dots        max(patch, |P (frac(q / P + o) - 1/2)| - 0.3 P)    a lattice of discs
    patch       max(|q_x|, |q_y|) - h                              the square the texture fills

Shapes rotate freely (theta in [0, 2 pi)); textures only by +-15 degrees, so horizontal and vertical
stripes stay distinct (mind this if augmentation rotates too: rotations above 30 degrees could make
them ambiguous). Foreground and background colours differ by 0.3 to 0.7 in every channel, so the
shape is always visible, but colour says nothing about the class. Texture periods P are 0.11 to 0.18
of the image: at least 3.5 pixels at 32 px; below about 24 px the textures start to blur.

Pixel noise: uniform in [-noise, noise] per pixel and channel, from a generator seeded with
(seed, split, i, S), so it is deterministic but (unlike the scene) differs per resolution.

Difficulty (measured): a 3-conv-layer PyTorch CNN (16-32-64 channels, BatchNorm, Adam, one-cycle
LR, no augmentation) trained 8 epochs on 6,000 images at 32 px reaches 92% validation accuracy; the
errors are square / triangle / circle and cross / star, which are a few pixels wide at 32 px and
easy at 64 px (so resolution matters, as progressive learning assumes). Rendering 2,000 images at
64 px takes about 0.8 s on one core.

Labels: balanced in every block of ten consecutive samples (a random permutation of the ten classes
per block), so any num_samples that is a multiple of 10 has exactly num_samples / 10 per class.

Dimension legend: N images in a batch, S image side in pixels, 3 colour channels (RGB), K = 10 classes.
Output: float32 NHWC images in [0, 1] (not normalised), int64 labels in [0, K).
"""
from __future__ import annotations

import numpy as np

from .procedural import (SPLITS, ProceduralDataset, check_count, check_split, coverage_by_label, fill_background,
                         local_frame, paint, pixel_centres)

__all__ = ["ShapesDataset", "CLASS_NAMES"]

CLASS_NAMES = ("circle", "square", "triangle", "ring", "cross", "star",
               "hstripes", "vstripes", "checker", "dots")

# Columns of the per-sample uniform table U (N, NUM_COLUMNS), each in [0, 1).
_ORDER, _CX, _CY, _SIZE, _ROT, _BG, _FG, _AUX, _PHASE_X, _PHASE_Y, _WAVE = 0, 1, 2, 3, 4, 5, 8, 11, 12, 13, 14
NUM_COLUMNS = 18                   # _WAVE uses 4 columns: angle, frequency, phase, amplitude
_TEXTURE_JITTER = np.pi / 12       # +-15 degrees for textures


class ShapesDataset(ProceduralDataset):
    """Procedural shapes and textures, deterministic by seed, at any resolution.

    num_samples: how many samples (index i in [0, num_samples)).
    image_size:  default side S in pixels for ``batch`` (any size can be asked for per call).
    seed, split: "train", "val" or "test" draw independent scenes from the same seed.
    noise:       amplitude of the uniform pixel noise.
    Attributes: labels (num_samples,) int64; num_classes 10; class_names.
    """

    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    def __init__(self, num_samples: int, image_size: int = 64, seed: int = 0, split: str = "train",
                 noise: float = 0.05):
        self.num_samples = check_count("ShapesDataset", "num_samples", num_samples, 1)
        self.image_size = check_count("ShapesDataset", "image_size", image_size, 4)
        self.seed = check_count("ShapesDataset", "seed", seed, 0)
        self.split = check_split("ShapesDataset", split)
        if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, (int, float, np.integer, np.floating)):
            raise TypeError(f"ShapesDataset: noise must be a number in [0, 0.5], got {noise!r}")
        if not 0.0 <= float(noise) <= 0.5:
            raise ValueError(f"ShapesDataset: noise must be in [0, 0.5], got {noise}")
        self.noise = float(noise)
        self._table, self.labels = self._draw_scenes()

    def _draw_scenes(self):
        """U (rows, NUM_COLUMNS) and labels: rows filled in order, so row i is the same for every size."""
        rows = -(-self.num_samples // 10) * 10                              # whole blocks of ten
        rng = np.random.default_rng([self.seed, SPLITS[self.split]])
        table = rng.random((rows, NUM_COLUMNS))                             # (rows, 18) float64
        blocks = table[:, _ORDER].reshape(-1, 10)                           # (rows/10, 10)
        labels = np.argsort(blocks, axis=1).reshape(-1).astype(np.int64)    # a permutation per block
        return table[: self.num_samples], labels[: self.num_samples]

    def scene(self, i: int) -> dict:
        """The numbers that describe sample i (independent of the resolution)."""
        i = int(self._indices([i])[0])
        p = _scene_parameters(self._table[i: i + 1], self.labels[i: i + 1])
        return {"label": int(self.labels[i]), "class_name": CLASS_NAMES[self.labels[i]],
                **{k: np.asarray(v)[0].tolist() for k, v in p.items()}}

    def _render(self, indices: np.ndarray, size: int, out: np.ndarray) -> None:
        """Draw the scenes of ``indices`` into out (N, S, S, 3) float32."""
        params = _scene_parameters(self._table[indices], self.labels[indices])
        a = _coverage(params, self.labels[indices], size)                           # (N, S, S)
        _background(params, size, out=out)                                           # (N, S, S, 3)
        paint(out, a, params["fg"])                     # bg (1 - a) + fg a, written as a lerp
        if self.noise:
            self._add_noise(indices, size, out)
        np.clip(out, 0, 1, out=out)

# ----------------------------------------------------------------------------------------------------
# Scene parameters from the uniform table
# ----------------------------------------------------------------------------------------------------

def _scene_parameters(u: np.ndarray, labels: np.ndarray) -> dict:
    """Map uniforms (N, 18) to scene numbers, float32. Every value is a fraction of the image side."""
    f32 = np.float32
    is_texture = labels >= 6
    rotation = np.where(is_texture, (2 * u[:, _ROT] - 1) * _TEXTURE_JITTER, 2 * np.pi * u[:, _ROT])
    size = np.where(is_texture, 0.22 + 0.13 * u[:, _SIZE], 0.18 + 0.14 * u[:, _SIZE])
    bg = u[:, _BG: _BG + 3]                                                    # (N, 3)
    fg = np.mod(bg + 0.3 + 0.4 * u[:, _FG: _FG + 3], 1.0)                      # (N, 3) 0.3..0.7 away
    return {
        "center": (0.3 + 0.4 * u[:, [_CX, _CY]]).astype(f32),                 # (N, 2) x, y
        "size": size.astype(f32),                                              # r, or patch half-side h
        "rotation": rotation.astype(f32),                                      # radians
        "aux": u[:, _AUX].astype(f32),                                         # shape detail in [0, 1)
        "period": (0.11 + 0.07 * u[:, _AUX]).astype(f32),                      # texture period P
        "offset": u[:, [_PHASE_X, _PHASE_Y]].astype(f32),                      # texture phase o
        "bg": bg.astype(f32), "fg": fg.astype(f32),
        "wave_angle": (2 * np.pi * u[:, _WAVE]).astype(f32),
        "wave_freq": (1.0 + 2.0 * u[:, _WAVE + 1]).astype(f32),                # cycles per image
        "wave_phase": (2 * np.pi * u[:, _WAVE + 2]).astype(f32),
        "wave_amp": (0.12 * u[:, _WAVE + 3]).astype(f32),
    }


# ----------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------

def _stripe_distance(coordinate, period, offset):
    """Signed distance to stripes of width P/2 with period P along one axis (negative inside)."""
    phase = coordinate / period + offset
    return period * (np.abs(phase - np.floor(phase) - np.float32(0.5)) - np.float32(0.25))


def _signed_distance(label: int, qx, qy, p: dict):
    """sd (n, S, S) for n samples of one class; per-sample numbers p[...] are (n, 1, 1)."""
    r, aux = p["size"], p["aux"]
    radius = np.sqrt(qx * qx + qy * qy)
    f32 = np.float32
    if label == 0:                                                     # circle
        return radius - r
    if label == 1:                                                     # square
        return np.maximum(np.abs(qx), np.abs(qy)) - f32(0.85) * r
    if label == 2:                                                     # triangle
        angles = np.float32(np.pi / 2) + np.arange(3, dtype=np.float32) * np.float32(2 * np.pi / 3)
        sd = None
        for a in angles:
            d = np.cos(a) * qx + np.sin(a) * qy
            sd = d if sd is None else np.maximum(sd, d)
        return sd - f32(0.5) * r
    if label == 3:                                                     # ring
        return np.abs(radius - f32(0.75) * r) - (f32(0.12) + f32(0.08) * aux) * r
    if label == 4:                                                     # cross
        w = (f32(0.22) + f32(0.1) * aux) * r
        ax, ay = np.abs(qx), np.abs(qy)
        return np.minimum(np.maximum(ax - r, ay - w), np.maximum(ax - w, ay - r))
    if label == 5:                                                     # star
        u = f32(5 / (2 * np.pi)) * np.arctan2(qy, qx)
        tri = np.abs(f32(2) * (u - np.floor(u)) - f32(1))
        return radius - r * (f32(0.45) + f32(0.55) * tri)
    patch = np.maximum(np.abs(qx), np.abs(qy)) - r                     # textures fill a square
    period, ox, oy = p["period"], p["offset_x"], p["offset_y"]
    if label == 6:                                                     # horizontal stripes
        pattern = _stripe_distance(qy, period, oy)
    elif label == 7:                                                   # vertical stripes
        pattern = _stripe_distance(qx, period, ox)
    elif label == 8:                                                   # checkerboard
        sx = _stripe_distance(qx, period, ox)
        sy = _stripe_distance(qy, period, oy)
        pattern = np.sign(sx * sy) * np.minimum(np.abs(sx), np.abs(sy))
    else:                                                              # dots
        dx = period * (qx / period + ox - np.floor(qx / period + ox) - f32(0.5))
        dy = period * (qy / period + oy - np.floor(qy / period + oy) - f32(0.5))
        pattern = np.sqrt(dx * dx + dy * dy) - f32(0.3) * period
    return np.maximum(patch, pattern)


def _coverage(params: dict, labels: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased coverage a = clip(1/2 - sd / px, 0, 1), (N, S, S) float32."""
    qx, qy = local_frame(params, size)                                          # (N, S, S)
    per_sample = {
        "size": params["size"], "aux": params["aux"], "period": params["period"],
        "offset_x": params["offset"][:, 0], "offset_y": params["offset"][:, 1],
    }
    return coverage_by_label(_signed_distance, labels, qx, qy, per_sample, size)


def _background(params: dict, size: int, out: np.ndarray) -> None:
    """out = bg_rgb + amp sin(2 pi f (cos(phi) x + sin(phi) y) + psi), out (N, S, S, 3) float32."""
    t = pixel_centres(size)
    along = (np.cos(params["wave_angle"])[:, None, None] * t[None, None, :]
             + np.sin(params["wave_angle"])[:, None, None] * t[None, :, None])   # (N, S, S)
    wave = params["wave_amp"][:, None, None] * np.sin(
        np.float32(2 * np.pi) * params["wave_freq"][:, None, None] * along
        + params["wave_phase"][:, None, None])                                   # (N, S, S)
    fill_background(params["bg"], wave, out)                                     # (N, S, S, 3)
