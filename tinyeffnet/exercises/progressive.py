"""Exercise 11: the progressive-learning schedule of EfficientNetV2 (the paper's Algorithm 1;
``progressive_schedule(cfg)``, the signature of ``tinyeffnet/train/algorithm.py``).

    M = min(stages, epochs) stages, i = 0 .. M-1:
        S_i   = S_0   + (S_e   - S_0)   i / (M - 1)       image size, rounded to the nearest int
        Phi_i = Phi_0 + (Phi_e - Phi_0) i / (M - 1)       dropout, RandAugment magnitude, mixup alpha
    epochs split as evenly as possible, the EARLIER stages getting one fewer when M does not divide;
    M = 1 (or i / (M - 1) undefined) means the last stage's values; progressive=False is one stage of
    all the epochs at S_e and Phi_e.

What the grid catches: i / M instead of i / (M - 1) (the last stage never reaches S_e), int()
truncation instead of rounding, the extra epochs given to the first stages, M not clipped to the
number of epochs (a stage without epochs), M = 1 dividing by zero, progressive=False ignored, and
the first stage counted from 1.
"""
from __future__ import annotations

from types import SimpleNamespace

from ..train.algorithm import StageSettings
from ..train.algorithm import progressive_schedule as library_schedule
from .harness import Exercise, Function, Mismatch, Test, submitted
from .loading import in_package

FIELDS = ("index", "epochs", "image_size", "dropout", "randaug", "mixup")


def make_config(epochs: int, stages: int, min_size: int, max_size: int, progressive: bool = True,
                dropout=(0.1, 0.3), randaug=(0.0, 10.0), mixup=(0.0, 0.2)) -> SimpleNamespace:
    """The fields of a TrainConfig that the schedule reads (a TrainConfig works the same)."""
    return SimpleNamespace(epochs=epochs, stages=stages, min_size=min_size, max_size=max_size,
                           progressive=progressive, dropout=tuple(dropout), randaug=tuple(randaug),
                           mixup=tuple(mixup))


def _field(stage, name):
    if isinstance(stage, dict):
        if name not in stage:
            raise Mismatch(f"a stage has no {name!r}")
        return stage[name]
    if not hasattr(stage, name):
        raise Mismatch(f"a stage ({type(stage).__name__}) has no attribute {name!r}")
    return getattr(stage, name)


def compare_schedules(ours, expected, cfg) -> None:
    try:
        ours = list(ours)
    except TypeError:
        raise Mismatch(f"progressive_schedule must return a list of stages, got {type(ours).__name__}") from None
    where = (f"epochs={cfg.epochs}, stages={cfg.stages}, sizes {cfg.min_size}..{cfg.max_size}, "
             f"progressive={cfg.progressive}")
    if len(ours) != len(expected):
        raise Mismatch(f"{where}: {len(ours)} stages, expected {len(expected)}")
    for stage, ref in zip(ours, expected):
        for name in FIELDS:
            got, want = _field(stage, name), getattr(ref, name)
            if name == "epochs":
                same = tuple(int(e) for e in got) == want
            elif name in ("index", "image_size"):
                same = got == want and float(got).is_integer()
            else:
                same = abs(float(got) - want) <= 1e-9 * max(1.0, abs(want))
            if not same:
                raise Mismatch(f"{where}: stage index {ref.index}: {name} = {got!r}, expected {want!r}")




def schedule_test(name: str, draw, hint: str, cases: int = 4) -> Test:
    """Row: ``cases`` configurations drawn by ``draw(rng)``, every stage's every field."""

    def run(sub, rng):
        seen = []
        for _ in range(cases):
            cfg = draw(rng)
            compare_schedules(submitted(sub, "progressive_schedule")(cfg), library_schedule(cfg), cfg)
            seen.append(f"{cfg.epochs} epochs / {cfg.stages} stages, {cfg.min_size}..{cfg.max_size} px")
        return "; ".join(seen)

    return Test(name, run, hint)


def _sizes(rng):
    low = int(rng.integers(8, 65))
    return low, low + int(rng.integers(0, 200))


def _rounding_config(rng):
    """A config where rounding and truncation differ at some stage, and no size lands on .5."""
    while True:
        stages = int(rng.integers(3, 7))
        low, high = _sizes(rng)
        fracs = [((high - low) * i / (stages - 1)) % 1 for i in range(stages)]
        if any(0.5 < f for f in fracs) and not any(abs(f - 0.5) < 1e-9 for f in fracs):
            return make_config(int(rng.integers(stages, 3 * stages)), stages, low, high)


def _even_split(rng):
    stages = int(rng.integers(2, 6))
    return make_config(stages * int(rng.integers(1, 4)), stages, *_sizes(rng))


def _uneven_split(rng):
    stages = int(rng.integers(2, 6))
    return make_config(stages * int(rng.integers(1, 4)) + int(rng.integers(1, stages)), stages, *_sizes(rng))


def _regularization(rng):
    cfg = _even_split(rng)
    cfg.dropout = (float(rng.uniform(0, 0.2)), float(rng.uniform(0.2, 0.5)))
    cfg.randaug = (float(rng.uniform(0, 5)), float(rng.uniform(5, 15)))
    cfg.mixup = (float(rng.uniform(0, 0.1)), float(rng.uniform(0.1, 0.4)))
    return cfg


def _clipped(rng):
    epochs = int(rng.integers(1, 4))
    return make_config(epochs, epochs + int(rng.integers(1, 4)), *_sizes(rng))


def _one_stage(rng):
    return make_config(int(rng.integers(1, 6)), 1, *_sizes(rng))


def _fixed(rng):
    cfg = _uneven_split(rng)
    cfg.progressive = False
    return cfg


DOC = """The stages of progressive learning (EfficientNetV2, Algorithm 1).

    cfg: a TrainConfig, or anything with these attributes: epochs, stages (M), min_size (S_0),
         max_size (S_e), progressive (bool), dropout, randaug, mixup (each a (first, last) pair).

    M = min(cfg.stages, cfg.epochs); for i = 0 .. M-1, with f = i / (M - 1) (f = 1 when M == 1):
        image_size = round(S_0 + (S_e - S_0) f)           an int, to the nearest pixel
        dropout    = dropout[0] + (dropout[1] - dropout[0]) f      (randaug and mixup alike)
    Epochs: cfg.epochs split into M runs of consecutive Python epoch indices (from 0); when M does
    not divide, the LAST (epochs % M) stages get one epoch more.
    cfg.progressive False: a single stage, index 0, all the epochs, max_size, each pair's last value.

    Returns a list of stages, each with the attributes index (i), epochs (a tuple of ints),
    image_size, dropout, randaug, mixup: tinyeffnet.train.StageSettings (allowed here:
    from tinyeffnet.train import StageSettings), a namedtuple or a dict.
    Example: 12 epochs, 4 stages, 32..48 px: sizes 32, 37, 43, 48; epochs (0,1,2), (3,4,5), ..."""

INTRO = """Progressive learning (EfficientNetV2, section 4): train small images with weak
regularization first, then grow both, stage by stage, linearly from (S_0, Phi_0) to (S_e, Phi_e).
Read after notebooks/07_progressive_learning.ipynb; the library's version: progressive_schedule in
tinyeffnet/train/algorithm.py."""

TRY_IT = """from types import SimpleNamespace
cfg = SimpleNamespace(epochs=12, stages=4, min_size=32, max_size=48, progressive=True,
                      dropout=(0.05, 0.2), randaug=(0.0, 5.0), mixup=(0.0, 0.1))
for stage in solution.progressive_schedule(cfg):
    print(stage)"""


def exercises() -> list:
    tests = [
        schedule_test("epochs divide evenly", _even_split,
                      "S_i = S_0 + (S_e - S_0) i / (M - 1): the last stage is S_e"),
        schedule_test("epochs do not divide: the later stages get one more", _uneven_split,
                      "with 10 epochs over 4 stages the counts are 2, 2, 3, 3 (the extra epochs go LAST)"),
        schedule_test("sizes round to the nearest pixel", _rounding_config,
                      "round(S_0 + (S_e - S_0) f), not int() (which truncates)"),
        schedule_test("regularization interpolates linearly", _regularization,
                      "dropout, randaug and mixup each go from their first to their last value with the same f"),
        schedule_test("more stages than epochs: M = min(stages, epochs)", _clipped,
                      "a stage without epochs is not a stage: M = min(stages, epochs)"),
        schedule_test("one stage: the last stage's values", _one_stage,
                      "M = 1: i / (M - 1) is 0 / 0; the single stage uses S_e and Phi_e"),
        schedule_test("progressive=False: one stage at the final values", _fixed,
                      "the baseline trains every epoch at max_size with the last regularization values"),
    ]
    return [Exercise(
        name="progressive_schedule", title="Progressive learning: the schedule of Algorithm 1", intro=INTRO,
        functions=[Function("progressive_schedule", "cfg", DOC)], tests=tests,
        allowed=("tinyeffnet.train:StageSettings", "tinyeffnet.train.algorithm:StageSettings"),
        forbidden=_library_code_but_stage_settings, try_it=TRY_IT, notebook="07_progressive_learning.ipynb")]


def _library_code_but_stage_settings(code) -> bool:
    """The call guard's test: any of the package's code is the library's answer, except what
    building the allowed StageSettings runs (its __post_init__ check and its ``number``)."""
    own = {StageSettings.__post_init__.__code__, StageSettings.number.fget.__code__}
    return in_package(code) and code not in own
