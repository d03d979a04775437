"""Reading metrics.jsonl back, and drawing curves.png from it.

The figure is drawn with ``matplotlib.figure.Figure`` directly, never through pyplot: pyplot keeps a
global "current backend", and switching it (``matplotlib.use("Agg")``) inside a Jupyter notebook
would leave the notebook showing its own plots only as files for the rest of the session. A bare
Figure renders with Agg when it is saved, whatever backend the session uses.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_metrics(path) -> list:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_curves(metrics_path, png_path, title: str | None = None) -> None:
    """Loss and accuracy against time; stage boundaries as dashed lines labelled with the image size."""
    from matplotlib.figure import Figure

    rows = read_metrics(metrics_path)
    if not rows:
        return
    t = [r["seconds"] for r in rows]
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(t, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.plot(t, [r["val_loss"] for r in rows], "o-", label="val")
    ax_acc.plot(t, [r["train_acc"] for r in rows], "o-", label="train")
    ax_acc.plot(t, [r["val_acc"] for r in rows], "o-", label="val")
    for ax in (ax_loss, ax_acc):
        _mark_stages(ax, rows)
        ax.set_xlabel("seconds")
        ax.legend()
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0, 1)
    fig.suptitle(title or f"training curves ({Path(metrics_path).parent.name})")
    fig.tight_layout()
    # Atomic: a temporary file beside the target, then a rename, so a reader never sees half a PNG.
    tmp = Path(png_path).with_name(Path(png_path).name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, png_path)


def _mark_stages(ax, rows: list) -> None:
    """A dashed line where each stage starts, labelled with its image size."""
    previous = None
    for i, r in enumerate(rows):
        if r["stage"] != previous:
            start = 0.0 if i == 0 else rows[i - 1]["seconds"]
            ax.axvline(start, color="gray", ls="--", lw=0.8)
            ax.text(start, 1.0, f" {r['image_size']}px", transform=ax.get_xaxis_transform(),
                    va="top", fontsize=8, color="gray")
            previous = r["stage"]
