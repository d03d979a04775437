"""A correct progressive-learning schedule (Algorithm 1). Test fixture."""
from collections import namedtuple

Stage = namedtuple("Stage", "index epochs image_size dropout randaug mixup")


def _lerp(pair, f):
    return pair[0] + (pair[1] - pair[0]) * f


def progressive_schedule(cfg):
    if not cfg.progressive:
        return [Stage(0, tuple(range(cfg.epochs)), cfg.max_size, cfg.dropout[1], cfg.randaug[1], cfg.mixup[1])]
    m = min(cfg.stages, cfg.epochs)
    base, extra = divmod(cfg.epochs, m)
    stages, start = [], 0
    for i in range(m):
        count = base + (1 if i >= m - extra else 0)
        f = i / (m - 1) if m > 1 else 1.0
        size = int(round(_lerp((cfg.min_size, cfg.max_size), f)))
        stages.append(Stage(i, tuple(range(start, start + count)), size, _lerp(cfg.dropout, f), _lerp(cfg.randaug, f),
                            _lerp(cfg.mixup, f)))
        start += count
    return stages
