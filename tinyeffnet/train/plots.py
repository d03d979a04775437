"""Reading metrics.jsonl back, and drawing curves.png from it.

The figure is drawn with ``matplotlib.figure.Figure`` directly, never through pyplot: pyplot keeps a
global "current backend" and a list of open figures, and switching the backend
(``matplotlib.use("Agg")``) inside a Jupyter notebook would leave the notebook showing its own plots
only as files for the rest of the session. A bare Figure renders with Agg when it is saved, whatever
backend the session uses, and pyplot never hears of it.

Layout: the margins are fixed (``subplots_adjust``), not computed by ``tight_layout``, so that the
band above the axes (the stage labels), the shared legend under the title and the caption under the
axes never overlap each other or the curves, whatever the numbers.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

# Why the two accuracy curves differ, printed under the figure (tests/test_train_plots.py checks it).
CAPTION = ("Train accuracy is counted on the training batches as they are trained: augmented (RandAugment, "
           "flips), mixed (mixup; scored against the main label), with dropout and drop-path on, and with "
           "the weights still moving during the epoch. Validation uses the EMA weights on clean images at "
           "the evaluation size, with no dropout, so it can sit above the training curve.")


def read_metrics(path) -> list:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(metrics_path, png_path, title: str | None = None):
    """Loss and accuracy against time; stage starts as dashed lines, labelled with the image size above
    the axes; a caption on why train accuracy sits below validation accuracy. Writes ``png_path``
    atomically and returns the ``Figure`` (None when the metrics file has no rows)."""
    from matplotlib.figure import Figure

    rows = read_metrics(metrics_path)
    if not rows:
        return None
    t = [r["seconds"] for r in rows]
    fig = Figure(figsize=(11, 5.2))
    fig.subplots_adjust(left=0.07, right=0.98, top=0.78, bottom=0.25, wspace=0.22)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
        ax.plot(t, [r[f"train_{key}"] for r in rows], "o-", color="C0", label="train (augmented batches)")
        ax.plot(t, [r[f"val_{key}"] for r in rows], "o-", color="C1", label="validation (EMA weights)")
        _mark_stages(ax, rows)
        ax.set_xlabel("seconds")
        ax.set_xlim(0, max(t) * 1.03)
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("loss")
    ax_loss.set_ylim(bottom=0)
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1.02)
    handles, labels = ax_loss.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.915), ncol=2, frameon=False,
               fontsize=9)
    fig.suptitle(title or f"training curves ({Path(metrics_path).parent.name})", y=0.985)
    fig.text(0.07, 0.035, CAPTION, fontsize=8, color="0.25", ha="left", va="bottom", wrap=True)
    # Atomic: a temporary file beside the target, then a rename, so a reader never sees half a PNG.
    tmp = Path(png_path).with_name(Path(png_path).name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, png_path)
    return fig


def _mark_stages(ax, rows: list) -> None:
    """A dashed line where each stage starts, labelled with its image size just above the axes (in the
    margin, so a label never covers a curve or the legend)."""
    previous = None
    for i, r in enumerate(rows):
        if r["stage"] != previous:
            start = 0.0 if i == 0 else rows[i - 1]["seconds"]
            ax.axvline(start, color="gray", ls="--", lw=0.8)
            ax.text(start, 1.01, f"{r['image_size']}px", transform=ax.get_xaxis_transform(),
                    ha="left" if i == 0 else "center", va="bottom", fontsize=8, color="gray")
            previous = r["stage"]
