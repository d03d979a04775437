"""The batch iterator: coverage of every sample, drop_last, and exact resume from its state."""
import io

import numpy as np
import pytest

from tinyeffnet.data import BatchIterator, generator_state, set_generator_state


def through_npz(state):
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def test_each_epoch_covers_every_sample_once_in_a_new_order():
    it = BatchIterator(23, batch_size=5, seed=3)
    assert len(it) == 5
    epochs = [np.concatenate(list(it)) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(23))
    assert not np.array_equal(epochs[0], epochs[1])
    again = BatchIterator(23, batch_size=5, seed=3)
    np.testing.assert_array_equal(np.concatenate(list(again)), epochs[0])
    assert it.epoch == 3 and it.position == 0


def test_batch_sizes_with_and_without_drop_last():
    assert [b.size for b in BatchIterator(23, 5, shuffle=False)] == [5, 5, 5, 5, 3]
    batches = list(BatchIterator(23, 5, shuffle=False, drop_last=True))
    assert [b.size for b in batches] == [5, 5, 5, 5]
    np.testing.assert_array_equal(np.concatenate(batches), np.arange(20))
    assert len(BatchIterator(23, 5, drop_last=True)) == 4


@pytest.mark.parametrize("drop_last", [False, True])
def test_resume_from_state_gives_the_same_batches(drop_last):
    reference = BatchIterator(17, batch_size=4, seed=9, drop_last=drop_last)
    expected = [b for _ in range(3) for b in reference]

    it = BatchIterator(17, batch_size=4, seed=9, drop_last=drop_last)
    got = []
    for indices in it:                       # stop in the middle of the first epoch ("crash")
        got.append(indices)
        if len(got) == 2:
            break
    state = through_npz(it.state_dict())
    resumed = BatchIterator(17, batch_size=4, seed=9, drop_last=drop_last)
    resumed.load_state_dict(state)
    while resumed.epoch < 3:
        got.extend(resumed)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_rejects_other_settings():
    state = BatchIterator(10, 2, seed=1).state_dict()
    with pytest.raises(ValueError, match="batch_size is 3 here, 2 in the state dict"):
        BatchIterator(10, 3, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="seed is 2 here, 1 in the state dict"):
        BatchIterator(10, 2, seed=2).load_state_dict(state)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        BatchIterator(10, 0)
    with pytest.raises(ValueError, match="gives no batch at all"):
        BatchIterator(3, 5, drop_last=True)
    with pytest.raises(TypeError, match="num_samples must be an int, got float"):
        BatchIterator(10.0, 2)


def test_generator_state_round_trip_through_npz():
    rng = np.random.default_rng(123)
    rng.random(7)
    rng.integers(0, 10, size=3)
    state = through_npz(generator_state(rng))
    expected = (rng.random(5), rng.standard_normal(4), rng.permutation(6))
    other = np.random.default_rng(0)
    set_generator_state(other, state)
    got = (other.random(5), other.standard_normal(4), other.permutation(6))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
