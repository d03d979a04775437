"""plot_curves (tinyeffnet/train/plots.py): it leaves a notebook's matplotlib state alone, and its
figure is laid out so that no two pieces of text overlap and the caption explains the two accuracies.

The backend test runs in a fresh interpreter, as a notebook kernel would: there pyplot is already
imported with Jupyter's inline backend and has a figure open; after plot_curves the backend, the
current figure and pyplot's list of figures must be exactly what they were.
"""
import json
import subprocess
import sys

import pytest

from tinyeffnet.train.plots import CAPTION, plot_curves

INLINE = "module://matplotlib_inline.backend_inline"


def _write_metrics(path, epochs=12, stages=4):
    """A metrics.jsonl shaped like the default run's: stages of equal length, growing sizes."""
    rows = []
    for epoch in range(1, epochs + 1):
        stage = (epoch - 1) * stages // epochs + 1
        rows.append({"epoch": epoch, "stage": stage, "image_size": 32 + 5 * (stage - 1),
                     "seconds": 15.0 * epoch, "train_loss": 2.0 / epoch ** 0.5, "val_loss": 2.1 / epoch,
                     "train_acc": min(0.95, 0.1 * epoch), "val_acc": min(0.999, 0.11 * epoch)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("backend", [INLINE, "svg"])
def test_plot_curves_leaves_the_session_backend_and_pyplot_alone(tmp_path, backend):
    if backend == INLINE:
        pytest.importorskip("matplotlib_inline")      # Jupyter's backend, installed with the notebooks extra
    metrics = _write_metrics(tmp_path / "metrics.jsonl")
    script = (
        "import json, sys\n"
        "import matplotlib\n"
        f"matplotlib.use({backend!r})\n"
        "import matplotlib.pyplot as plt\n"
        "mine = plt.figure()\n"                       # the notebook's own open figure
        "before = (matplotlib.get_backend(), plt.get_fignums(), plt.gcf() is mine)\n"
        "from tinyeffnet.train import plot_curves\n"
        f"plot_curves({str(metrics)!r}, {str(tmp_path / 'curves.png')!r})\n"
        "after = (matplotlib.get_backend(), plt.get_fignums(), plt.gcf() is mine)\n"
        "print(json.dumps([before, after]))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert before[0] == backend or before[0].endswith("backend_inline")
    assert after == before, (before, after)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_curves_leaves_no_pyplot_import_behind(tmp_path):
    metrics = _write_metrics(tmp_path / "metrics.jsonl")
    script = (
        "import sys\n"
        "from tinyeffnet.train import plot_curves\n"
        f"plot_curves({str(metrics)!r}, {str(tmp_path / 'curves.png')!r})\n"
        "print('matplotlib.pyplot' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]


def test_the_figure_has_no_overlapping_text_and_explains_the_accuracies(tmp_path):
    fig = plot_curves(_write_metrics(tmp_path / "metrics.jsonl"), tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    texts = [t.get_text() for t in fig.texts]
    assert CAPTION in texts
    for word in ("mixup", "dropout", "EMA", "clean images"):
        assert word in CAPTION
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()     # the renderer savefig drew with
    artists = []                                      # (what, artist) of every visible piece of text
    for k, ax in enumerate(fig.axes):
        artists += [(f"stage label {t.get_text()} (axes {k})", t) for t in ax.texts]
        artists += [(f"ylabel (axes {k})", ax.yaxis.label), (f"xlabel (axes {k})", ax.xaxis.label)]
    artists += [("legend", legend) for legend in fig.legends]
    artists += [(f"figure text {t.get_text()[:30]!r}", t) for t in fig.texts]   # the title and the caption
    seen, boxes = set(), []
    for name, artist in artists:
        if id(artist) not in seen and artist.get_visible():
            seen.add(id(artist))
            boxes.append((name, artist.get_window_extent(renderer)))
    assert len(boxes) >= 2 * 4 + 4 + 1 + 2            # 4 stage labels per axes, 4 axis labels, legend, title, caption
    for i, (name_a, a) in enumerate(boxes):
        for name_b, b in boxes[i + 1:]:
            assert not a.overlaps(b), f"{name_a} overlaps {name_b}"
    for name, box in boxes:                           # stage labels and legend stay out of the plot areas
        if name.startswith(("stage label", "legend")):
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent(renderer)), f"{name} covers the curves"


def test_an_empty_metrics_file_draws_nothing(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    assert plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png") is None
    assert not (tmp_path / "curves.png").exists()
