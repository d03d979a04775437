"""Compound scaling: one coefficient phi grows a base network's depth, width and image size together.

EfficientNet (Tan & Le, ICML 2019, section 3.3, equation 3) scales a base network B0 by

    depth      d = alpha ** phi        (blocks per stage:  repeats -> ceil(repeats * d))
    width      w = beta  ** phi        (channels:          c -> round_filters(c, w), multiples of 8)
    resolution r = gamma ** phi        (image size:        s -> round(base_size * r))

    with alpha * beta**2 * gamma**2 ~= 2,   alpha, beta, gamma >= 1

A network's FLOPs grow like d * w**2 * r**2 (a conv's cost is linear in its depth, quadratic in its
width and in its image side), so each +1 of phi about doubles them: 1.2 * 1.1**2 * 1.15**2 = 1.92.
alpha = 1.2, beta = 1.1, gamma = 1.15 came from a small grid search at phi = 1 on B0.

The published B1-B7 are NOT these powers. Their (width, depth, size) -- efficientnet_params in the
official code; torchvision's efficientnet_b* builders have the same width and depth -- are rounder
values near them (the paper does not say how they were picked): B1 (1.0, 1.1, 240), B2 (1.1, 1.2,
260), B3 (1.2, 1.4, 300), B4 (1.4, 1.8, 380), B5 (1.6, 2.2, 456), B6 (1.8, 2.6, 528), B7 (2.0, 3.1,
600). Against phi = 1..7 the published depth is 0.81-0.92 of alpha**phi, the width 0.90-1.03 of
beta**phi, the size 0.88-1.02 of 224 * gamma**phi (torchvision evaluates its B2 weights at 288 px).
So two things are exact and one is not (tests/models/test_scaling.py):

    exact    scale_network(V1_BASE, width, depth, size) with the published coefficients is torchvision's
             efficientnet_b* stage table, stem and head, block for block
    exact    compound_coefficients(phi) is alpha**phi, beta**phi, gamma**phi
    approx   the published coefficients are compound scaling's only to within about 20%

EfficientNetV2 (Tan & Le, ICML 2021, section 4) scales S up to M and L with "similar compound scaling"
and two restrictions, both options of compound_scale (``rules="v2"``):

    1. the maximum inference image size is 480 (``max_image_size``): larger images cost memory and
       training speed for little accuracy
    2. more layers go to the later stages, stages 5 and 6 of its Table 4 (``late_stages``; stage 0 is
       the stem there, so these are the 5th and 6th block stages, counted from 1): extra capacity for
       little runtime. The paper gives no amount: with ``late_depth`` those stages grow with
       (alpha * late_depth) ** phi instead of alpha ** phi, so that phi = 0 is still the base network
       and the extra layers come gradually (1.0, the default, adds nothing; M's official table, with
       a 7th stage, is not any formula's output)

and channels rounded with V2's rule (no "+8 if it lost more than 10%", config.round_filters).

    >>> from tinyeffnet.models import V1_BASE, scaling
    >>> print(scaling.describe_family(scaling.official_family()))              # B0-B7 as published
    >>> print(scaling.describe_family(scaling.compound_family(V1_BASE, range(8))))  # phi = 0..7
    >>> model = scaling.compound_scale(V1_BASE, 2.0).build(num_classes=10)      # an EfficientNet
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..ops._checks import check_int, check_number
from .config import ROUNDING_RULES, VARIANTS, Stage, round_filters, round_repeats

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15   # depth, width, resolution bases (EfficientNet, section 3.3)
V2_MAX_IMAGE_SIZE = 480               # EfficientNetV2, section 4: restriction 1
V2_LATE_STAGES = (5, 6)               # EfficientNetV2, section 4: restriction 2 (Table 4 numbering)
RULES = ("v1", "v2")


@dataclass(frozen=True)
class ScaledNetwork:
    """A scaled family member: its coefficients, its stage table and image size.

    name:        "efficientnet_b3" for a published variant, "phi=2.5" for a compound-scaled one
    phi:         the compound coefficient (None for a published variant: it has none, see above)
    width, depth: the multipliers that were applied; image_size: input side in pixels
    stages:      the scaled Stage rows (channels and repeats already rounded)
    stem, head:  the stem's and the head conv's channels; rounding: "v1" or "v2"
    """

    name: str
    phi: float | None
    width: float
    depth: float
    image_size: int
    stages: tuple
    stem: int
    head: int
    rounding: str

    def num_parameters(self, num_classes: int = 1000, in_channels: int = 3) -> int:
        """Trainable parameters of the network, counted from the table (see count_parameters)."""
        return count_parameters(self.stages, self.head, num_classes, in_channels)

    def build(self, **kwargs):
        """The network: ``EfficientNetV2(self.stages, head_channels=self.head, ...)``; kwargs go to it
        (num_classes, drop_rate, bn_eps, dtype, seed, ...). The table is already scaled, so width and
        depth are 1 there."""
        from .efficientnetv2 import EfficientNetV2

        return EfficientNetV2(self.stages, head_channels=self.head, rounding=self.rounding, **kwargs)


# ------------------------------------------------------------------------------ checks
def _check_stages(stages, where: str) -> tuple:
    rows = tuple(stage if isinstance(stage, Stage) else Stage(*stage) for stage in stages)
    if not rows:
        raise ValueError(f"{where}: base_stages must hold at least one Stage, got none")
    return rows


def _check_rule(name: str, value, allowed, where: str) -> str:
    if value not in allowed:
        raise ValueError(f"{where}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _check_phi(phi, where: str) -> float:
    return check_number("phi", phi, op=where)   # any finite number: phi < 0 scales down


def _check_late_stages(late_stages, count: int, where: str) -> tuple:
    if not isinstance(late_stages, (tuple, list)):
        raise TypeError(f"{where}: late_stages must be a tuple of stage numbers (counted from 1), "
                        f"got {type(late_stages).__name__}")
    for number in late_stages:
        if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= count:
            raise ValueError(f"{where}: late_stages holds stage numbers 1..{count} (counted from 1, "
                             f"the table has {count} stages), got {number!r}")
    return tuple(late_stages)


# ------------------------------------------------------------------------------ the rules
def compound_coefficients(phi: float, alpha: float = ALPHA, beta: float = BETA,
                          gamma: float = GAMMA) -> tuple:
    """(depth, width, resolution) multipliers for ``phi``: alpha**phi, beta**phi, gamma**phi."""
    phi = _check_phi(phi, "compound_coefficients")
    for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        check_number(name, value, 0, low_open=True, op="compound_coefficients")
    return alpha ** phi, beta ** phi, gamma ** phi


def implied_phi(value: float, base: float) -> float:
    """The phi for which base**phi == value: log(value) / log(base). Shows how far a published
    coefficient is from compound scaling (B7's depth 3.1 is alpha**6.2, its width 2.0 beta**7.3)."""
    check_number("value", value, 0, low_open=True, op="implied_phi")
    check_number("base", base, 1, low_open=True, op="implied_phi")
    return math.log(value) / math.log(base)


def scale_network(base_stages, width: float = 1.0, depth: float = 1.0, image_size: int = 224, *,
                  head: int = 1280, rounding: str = "v1", late_stages=(), late_depth: float = 1.0,
                  max_image_size: int | None = None, name: str | None = None,
                  phi: float | None = None) -> ScaledNetwork:
    """Scale a base table by explicit (width, depth) and set its image size.

    base_stages:    Stage rows of the unscaled network (config.V1_BASE, config.V2_S, ...)
    width, depth:   multipliers; channels with round_filters(c, width, rounding=rounding), repeats
                    with ceil(r * depth) (ceil(r * depth * late_depth) for the stages in late_stages)
    image_size:     the scaled input side (capped at max_image_size when that is given)
    head:           the head conv's channels before scaling (1280 in every EfficientNet)
    rounding:       "v1" (EfficientNet, torchvision's _make_divisible) or "v2" (EfficientNetV2)
    late_stages:    stage numbers counted from 1 that get late_depth on top of depth (V2 restriction 2)
    """
    where = "scale_network"
    stages = _check_stages(base_stages, where)
    check_number("width", width, 0, low_open=True, op=where)
    check_number("depth", depth, 0, low_open=True, op=where)
    check_int("image_size", image_size, op=where)
    check_int("head", head, op=where)
    _check_rule("rounding", rounding, ROUNDING_RULES, where)
    late = _check_late_stages(late_stages, len(stages), where)
    check_number("late_depth", late_depth, 1, op=where)
    if max_image_size is not None:
        image_size = min(image_size, check_int("max_image_size", max_image_size, op=where))
    scaled = tuple(replace(stage,
                           in_ch=round_filters(stage.in_ch, width, rounding=rounding),
                           out_ch=round_filters(stage.out_ch, width, rounding=rounding),
                           repeats=round_repeats(stage.repeats, depth * (late_depth if number in late else 1.0)))
                   for number, stage in enumerate(stages, start=1))
    label = name if name is not None else (f"phi={phi:g}" if phi is not None else f"w{width:g} d{depth:g}")
    return ScaledNetwork(label, phi, float(width), float(depth), int(image_size), scaled, scaled[0].in_ch,
                         round_filters(head, width, rounding=rounding), rounding)


def compound_scale(base_stages, phi: float, *, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
                   base_size: int = 224, head: int = 1280, rules: str = "v1", late_depth: float = 1.0,
                   late_stages=None, max_image_size=None) -> ScaledNetwork:
    """Compound-scale ``base_stages`` by ``phi`` (see the module docstring).

    rules "v1":  EfficientNet: V1 channel rounding, no image-size cap, every stage deepened alike
    rules "v2":  EfficientNetV2's restrictions: V2 channel rounding, image size capped at 480
                 (``max_image_size``), and stages 5 and 6 (``late_stages``, counted from 1) deepened
                 by (alpha * late_depth) ** phi instead of alpha ** phi (the paper gives no amount;
                 late_depth 1.0 adds nothing)
    base_size:   the base network's image size (224 for B0; S evaluates at 384)
    Returns a ScaledNetwork: ``.stages``, ``.image_size``, ``.build(num_classes=...)``.
    """
    where = "compound_scale"
    _check_rule("rules", rules, RULES, where)
    check_int("base_size", base_size, op=where)
    depth, width, resolution = compound_coefficients(phi, alpha, beta, gamma)
    stages = _check_stages(base_stages, where)
    if late_stages is None:
        late_stages = tuple(n for n in V2_LATE_STAGES if n <= len(stages)) if rules == "v2" else ()
    elif rules == "v1" and late_stages:
        raise ValueError(f"{where}: late_stages is one of EfficientNetV2's restrictions: use rules=\"v2\"")
    if rules == "v1" and late_depth != 1.0:
        raise ValueError(f"{where}: late_depth is one of EfficientNetV2's restrictions: use rules=\"v2\", "
                         f"got late_depth {late_depth!r} with rules \"v1\"")
    if max_image_size is None and rules == "v2":
        max_image_size = V2_MAX_IMAGE_SIZE
    return scale_network(stages, width, depth, int(round(base_size * resolution)), head=head,
                         rounding="v1" if rules == "v1" else "v2", late_stages=late_stages,
                         late_depth=check_number("late_depth", late_depth, 1, op=where) ** max(phi, 0.0),
                         max_image_size=max_image_size, phi=_check_phi(phi, where))


# ------------------------------------------------------------------------------ families
def official_family(prefix: str = "efficientnet_b") -> list:
    """The published variants whose names start with ``prefix`` (default: EfficientNet B0-B7), as
    ScaledNetworks built from their (width, depth, eval size) in config.VARIANTS."""
    names = [name for name in VARIANTS if name.startswith(prefix)]
    if not names:
        raise ValueError(f"official_family: no variant name starts with {prefix!r}; "
                         f"known: {', '.join(VARIANTS)}")
    family = []
    for name in names:
        v = VARIANTS[name]
        family.append(scale_network(v.stages, v.width, v.depth, v.eval_size, head=v.head, rounding=v.rounding,
                                    name=name))
    return family


def compound_family(base_stages, phis, **options) -> list:
    """[compound_scale(base_stages, phi, **options) for phi in phis]."""
    return [compound_scale(base_stages, phi, **options) for phi in phis]


def count_parameters(stages, head: int, num_classes: int = 1000, in_channels: int = 3) -> int:
    """Trainable parameters of the network a scaled table describes (BN: gamma and beta per channel;
    running statistics are buffers, not counted), without building it:

        conv unit   K*K*Cin*Cout + 2 Cout          depthwise unit  K*K*C + 2 C
        SE          2 Ce*Cr + Cr + Ce (two 1x1 convs with bias)      classifier  Ch*classes + classes
    """
    where = "count_parameters"
    stages = _check_stages(stages, where)
    check_int("head", head, op=where)
    check_int("num_classes", num_classes, op=where)
    check_int("in_channels", in_channels, op=where)

    def conv(k, cin, cout):
        return k * k * cin * cout + 2 * cout

    total = conv(3, in_channels, stages[0].in_ch)
    for stage in stages:
        for repeat in range(stage.repeats):
            cin = stage.in_ch if repeat == 0 else stage.out_ch
            mid = int(cin * stage.expand)
            if stage.block == "fused":
                total += (conv(stage.kernel, cin, stage.out_ch) if stage.expand == 1
                          else conv(stage.kernel, cin, mid) + conv(1, mid, stage.out_ch))
                continue
            total += conv(1, cin, mid) if mid != cin else 0
            total += stage.kernel * stage.kernel * mid + 2 * mid
            if stage.se:
                squeeze = max(1, int(cin * stage.se))
                total += 2 * mid * squeeze + squeeze + mid
            total += conv(1, mid, stage.out_ch)
    return total + conv(1, stages[-1].out_ch, head) + head * num_classes + num_classes


def describe_family(networks, num_classes: int = 1000, *, channels: bool = False) -> str:
    """A text table, one row per ScaledNetwork: name, phi, width, depth, image size, stem, repeats
    per stage, head, parameters (millions) and relative FLOPs d * w**2 * r**2 against the first row's
    coefficients (the compound-scaling estimate, not a count). ``channels=True`` adds, after the
    repeats, each stage's output channels ("16/24/32/64/80")."""
    networks = list(networks)
    if not networks or not all(isinstance(n, ScaledNetwork) for n in networks):
        raise TypeError("describe_family: networks must be a non-empty list of ScaledNetwork "
                        "(from official_family, compound_family or compound_scale)")
    check_int("num_classes", num_classes, op="describe_family")
    if channels is not True and channels is not False:
        raise TypeError(f"describe_family: channels must be True or False, got {channels!r}")
    first = networks[0]
    extra = ("channels",) if channels else ()
    rows = [("name", "phi", "width", "depth", "size", "stem", "repeats", *extra, "head", "params", "~FLOPs")]
    for n in networks:
        flops = (n.depth / first.depth) * (n.width / first.width) ** 2 * (n.image_size / first.image_size) ** 2
        outs = ("/".join(str(s.out_ch) for s in n.stages),) if channels else ()
        rows.append((n.name, "-" if n.phi is None else f"{n.phi:g}", f"{n.width:.3f}", f"{n.depth:.3f}",
                     str(n.image_size), str(n.stem), "/".join(str(s.repeats) for s in n.stages), *outs,
                     str(n.head), f"{n.num_parameters(num_classes) / 1e6:.2f}M", f"{flops:.1f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    return "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:])
