"""merge_train_sets: the one way training sets are combined (DATASETS.TRAIN, FVRID both, SJDL's streams)."""
import pytest

from global_model.data.datasets import DatasetError, merge_train_sets
from global_model.data.records import ImageRecord


def _set(prefix, pids, camids):
    return [ImageRecord(f"{prefix}/{i}.jpg", p, c, attrs={"set": prefix}) for i, (p, c) in enumerate(zip(pids, camids))]


A = _set("a", [347, 1, 347, 5], [26, 1, 2, -1])
B = _set("b", [1, 2, 1], [1, 2, 1])


def test_each_set_gets_a_contiguous_block_in_sorted_pid_order():
    merged, classes = merge_train_sets([A, B])
    assert classes == 5
    assert [r.pid for r in merged] == [2, 0, 2, 1, 3, 4, 3]  # a: 1->0, 5->1, 347->2; b: 1->3, 2->4
    assert sorted({r.pid for r in merged}) == list(range(classes))
    assert not {r.pid for r in merged[:4]} & {r.pid for r in merged[4:]}


def test_records_keep_their_order_and_everything_but_the_pid():
    merged, _ = merge_train_sets([A, B])
    assert [r.path for r in merged] == [r.path for r in A + B]
    assert [r.camid for r in merged] == [r.camid for r in A + B]
    assert [r.attrs for r in merged] == [r.attrs for r in A + B]


def test_cameras_relabelled_per_set_on_request():
    merged, _ = merge_train_sets([A, B], relabel_cameras=True)
    assert [r.camid for r in merged] == [2, 0, 1, -1, 3, 4, 3]  # a: 1, 2, 26 -> 0, 1, 2; b: 1, 2 -> 3, 4


@pytest.mark.parametrize("sets, classes", [([], 0), ([[]], 0), ([A], 3), ([[], B], 2), ([B, B], 4)])
def test_class_count(sets, classes):
    assert merge_train_sets(sets)[1] == classes


def test_unlabelled_record_is_refused():
    with pytest.raises(DatasetError, match=r"training set 1: b/2.jpg has no identity \(pid -1\)"):
        merge_train_sets([A, _set("b", [1, 2, -1], [1, 1, 1])])
