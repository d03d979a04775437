"""A batch iterator whose position can be saved and restored exactly, and Generator state as arrays.

The order of epoch e is a permutation drawn from its own generator, seeded with (seed, e):

    order_e = default_rng([seed, e]).permutation(num_samples)        (shuffle=True)
    order_e = 0, 1, ..., num_samples - 1                             (shuffle=False)
    batch b of epoch e = order_e[b * B : (b + 1) * B]                (the last one shorter unless drop_last)

So the whole iterator state is two integers, (epoch, position), and resuming from them gives the
same batches as an uninterrupted run, with no generator state to carry (the seed is fixed at
construction). ``position`` counts samples already handed out in the current epoch.

``generator_state`` / ``set_generator_state`` turn a numpy Generator's state into int arrays and back,
for the other random streams a checkpoint must carry (augmentation, dropout), so that a checkpoint
stays an .npz file with no pickled objects.

Dimension legend: N samples in the dataset, B batch size.
"""
from __future__ import annotations

import numpy as np

__all__ = ["BatchIterator", "generator_state", "set_generator_state"]


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class BatchIterator:
    """Index batches over ``range(num_samples)``, one epoch per ``iter()``, resumable.

        it = BatchIterator(len(dataset), batch_size=64, shuffle=True, seed=0)
        for epoch in range(epochs):
            for indices in it:                   # (B,) int64; it.epoch, it.position advance
                images, labels = dataset.batch(indices)
        state = it.state_dict()                  # {"epoch", "position", "seed", ...} as arrays
        it2 = BatchIterator(...same arguments...); it2.load_state_dict(state)   # continues exactly

    An epoch interrupted by a break resumes where it stopped at the next ``iter()``.
    """

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0):
        self.num_samples = _check_int("num_samples", num_samples, 1)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        if drop_last and self.batch_size > self.num_samples:
            raise ValueError(f"batch_size {batch_size} > num_samples {num_samples} with drop_last=True "
                             f"gives no batch at all")
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = _check_int("seed", seed, 0)
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of one epoch, (N,) int64."""
        if not self.shuffle:
            return np.arange(self.num_samples, dtype=np.int64)
        return np.random.default_rng([self.seed, int(epoch)]).permutation(self.num_samples).astype(np.int64)

    def __iter__(self):
        order = self.order(self.epoch)                                           # (N,)
        end = len(self) * self.batch_size if self.drop_last else self.num_samples
        while self.position < end:
            indices = order[self.position: self.position + self.batch_size]       # (B,)
            self.position += indices.size       # counted before the caller uses it: a checkpoint
            yield indices                       # taken after this batch resumes with the next one
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict:
        """0-d int64 arrays: epoch, position, and the settings checked on load."""
        return {k: np.array(v, dtype=np.int64) for k, v in (
            ("epoch", self.epoch), ("position", self.position), ("seed", self.seed),
            ("num_samples", self.num_samples), ("batch_size", self.batch_size),
            ("shuffle", self.shuffle), ("drop_last", self.drop_last))}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "num_samples", "batch_size", "shuffle", "drop_last"):
            if int(state[key]) != int(getattr(self, key)):
                raise ValueError(f"BatchIterator.load_state_dict: {key} is {int(getattr(self, key))} here, "
                                 f"{int(state[key])} in the state dict")
        position = int(state["position"])
        if not 0 <= position <= self.num_samples:
            raise ValueError(f"BatchIterator.load_state_dict: position {position} outside [0, {self.num_samples}]")
        self.epoch = int(state["epoch"])
        self.position = position


# ----------------------------------------------------------------------------------------------------
# numpy Generator state <-> arrays
# ----------------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def _int_to_words(value: int) -> np.ndarray:
    """A non-negative Python int (up to 128 bits for PCG64) as two uint64 words (high, low)."""
    return np.array([(value >> 64) & _MASK64, value & _MASK64], dtype=np.uint64)


def _words_to_int(words) -> int:
    high, low = (int(w) for w in np.asarray(words, dtype=np.uint64))
    return (high << 64) | low


def generator_state(rng: np.random.Generator) -> dict:
    """The state of a PCG64 Generator as uint64 arrays (storable in an .npz without pickling)."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise TypeError(f"generator_state supports PCG64 (numpy's default), got {state['bit_generator']}")
    return {"state": _int_to_words(state["state"]["state"]), "inc": _int_to_words(state["state"]["inc"]),
            "has_uint32": np.array(state["has_uint32"], dtype=np.int64),
            "uinteger": np.array(state["uinteger"], dtype=np.uint64)}


def set_generator_state(rng: np.random.Generator, arrays: dict) -> None:
    """Restore what ``generator_state`` returned into ``rng`` (a PCG64 Generator), in place."""
    if rng.bit_generator.state["bit_generator"] != "PCG64":
        raise TypeError("set_generator_state supports PCG64 (numpy's default) generators only")
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": _words_to_int(arrays["state"]), "inc": _words_to_int(arrays["inc"])},
        "has_uint32": int(arrays["has_uint32"]), "uinteger": int(arrays["uinteger"]),
    }
