"""Exercise 9: TensorFlow's "same" padding (``resolve_padding``, the signature of
``tinyeffnet.ops._checks.resolve_padding``), needed to run weights ported from TensorFlow.

    padding p (an int, PyTorch):  top = bottom = left = right = p
    padding "same" (TensorFlow), per axis of size n, kernel k, stride s:
        out    = ceil(n / s)
        total  = max((out - 1) s + k - n, 0)
        before = total // 2,   after = total - before          (the SMALLER half first)

What the grid catches: the larger half first (PyTorch's asymmetric habit, or Keras ported wrong),
floor instead of ceil for the output size, a total that is not clamped at 0 (stride > kernel),
PyTorch's symmetric (k - 1) // 2 used for "same" (right at stride 1, wrong at stride 2 on even
sizes), and height and width swapped on non-square inputs.
"""
from __future__ import annotations

from ..ops._checks import resolve_padding as library_resolve_padding
from .harness import Exercise, Function, Mismatch, Test, submitted




def grid_test(name: str, draw, hint: str, cases: int = 12) -> Test:
    """Row: ``cases`` geometries drawn by ``draw(rng) -> (padding, H, W, KH, KW, S)``, every answer exact."""

    def run(sub, rng):
        seen = []
        for _ in range(cases):
            padding, h, w, kh, kw, s = draw(rng)
            expected = library_resolve_padding(padding, h, w, kh, kw, s)
            got = submitted(sub, "resolve_padding")(padding, h, w, kh, kw, s)
            try:
                got = tuple(int(v) for v in got)
            except (TypeError, ValueError):
                raise Mismatch(f"resolve_padding must return 4 ints (top, bottom, left, right), got {got!r}") from None
            if got != expected:
                raise Mismatch(f"resolve_padding({padding!r}, height={h}, width={w}, kh={kh}, kw={kw}, stride={s}) "
                               f"returned {got}, expected {expected} (top, bottom, left, right)")
            seen.append(f"{h}x{w} k{kh}x{kw} s{s}")
        return f"{cases} geometries: " + ", ".join(seen[:4]) + ", ..."

    return Test(name, run, hint)


def _odd_kernel(rng, high=7):
    return int(rng.choice([k for k in range(1, high + 1, 2)]))


def _even(rng):
    return int(rng.choice([2, 4, 6, 8, 10, 12]))


def _odd(rng):
    return int(rng.choice([1, 3, 5, 7, 9, 11]))


def exercises() -> list:
    tests = [
        grid_test("int padding is symmetric",
                  lambda r: (int(r.integers(0, 3)), int(r.integers(3, 10)), int(r.integers(3, 10)), 3, 3,
                             int(r.integers(1, 3))),
                  "an int p pads p on every side (PyTorch)"),
        grid_test('"same", stride 1',
                  lambda r: ("same", int(r.integers(1, 12)), int(r.integers(1, 12)), _odd_kernel(r), _odd_kernel(r), 1),
                  "at stride 1 the total is k - 1, split evenly: (k - 1) // 2 on each side"),
        grid_test('"same", stride 2, even sizes (asymmetric)',
                  lambda r: ("same", _even(r), _even(r), _odd_kernel(r), _odd_kernel(r), 2),
                  "an even size at stride 2 needs an odd total: the SMALLER half goes on top and on the left"),
        grid_test('"same", stride 2, odd sizes',
                  lambda r: ("same", _odd(r), _odd(r), _odd_kernel(r), _odd_kernel(r), 2),
                  "out = ceil(n / s), not floor: an odd size at stride 2 has (n + 1) / 2 outputs"),
        grid_test('"same", stride 3 and 4',
                  lambda r: ("same", int(r.integers(1, 14)), int(r.integers(1, 14)), _odd_kernel(r), _odd_kernel(r),
                             int(r.integers(3, 5))),
                  "total = max((ceil(n / s) - 1) s + k - n, 0), for any stride"),
        grid_test('"same", stride larger than the kernel (total clamps at 0)',
                  lambda r: ("same", int(r.choice([2, 4, 6, 8])), int(r.choice([3, 6, 9])), 1, 1,
                             int(r.integers(2, 4))),
                  "(ceil(n / s) - 1) s + k - n can be negative: clamp the total at 0 (no negative padding)"),
        grid_test('"same", non-square input and kernel',
                  lambda r: ("same", _even(r), _odd(r) + 6, 1, _odd_kernel(r, 5) + 2, 2),
                  "height uses (H, KH), width uses (W, KW): check they are not swapped"),
    ]
    doc = """The zero padding (top, bottom, left, right) of a convolution.

    padding: an int p >= 0 (PyTorch: p on every side) or "same" (TensorFlow);
    height, width: the input's H and W; kh, kw: the kernel's size; stride: S >= 1.

    "same", along each axis (n = H with k = KH for top/bottom, n = W with k = KW for left/right):
        out   = ceil(n / S)                       (-(-n // S) in integer arithmetic)
        total = max((out - 1) * S + k - n, 0)
        before = total // 2,  after = total - before     (the smaller half first)

    Returns a tuple of 4 ints (top, bottom, left, right).
    Example: H = 6, KH = 3, S = 2: out = 3, total = 2*2 + 3 - 6 = 1, so top 0 and bottom 1."""
    intro = """TensorFlow's "same" padding: the output is ceil(n / s) along each axis, and the padding
that takes it there is split with the SMALLER half first; at stride 2 on an even size that is
asymmetric (0 on top, 1 at the bottom), which PyTorch's symmetric int padding cannot express.
The library's version: resolve_padding in tinyeffnet/ops/_checks.py; docs/DESIGN.md, section 3."""
    try_it = """print(solution.resolve_padding("same", 6, 7, 3, 3, 2))   # expected (0, 1, 1, 1)
print(solution.resolve_padding(1, 6, 7, 3, 3, 2))        # expected (1, 1, 1, 1)"""
    return [Exercise(name="same_padding", title='TensorFlow "same" padding', intro=intro,
                     functions=[Function("resolve_padding", "padding, height, width, kh, kw, stride", doc)],
                     tests=tests, try_it=try_it, notebook="09_porting_weights.ipynb")]
