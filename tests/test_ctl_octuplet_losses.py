"""The centroid triplet loss term and the octuplet loss against computations by hand."""
import itertools

import numpy as np
import pytest
import torch

from global_model.config import load_config
from global_model.modeling.centroid import CentroidTripletLoss
from global_model.modeling.losses import LossConfigError, build_loss
from global_model.modeling.octuplet import OctupletLoss

# Two identities, two images each; anchor 0's own-id centroid *with* itself would be (1, 0), without it (2, 0).
FEATS = [[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [1.0, 5.0]]
PIDS = [0, 0, 1, 1]


def ctl_by_hand(feats, pids, margin, cosine=False):
    """Loops over anchors: positive = mean of the other images of the id, negative = nearest other centroid."""
    f, pids = np.asarray(feats, float), list(pids)

    def d(a, b):
        if cosine:
            return 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        return np.linalg.norm(a - b)

    losses = []
    for i, y in enumerate(pids):
        own = [j for j, p in enumerate(pids) if p == y and j != i]
        others = sorted(set(pids) - {y})
        if not own or not others:
            continue
        pos = f[own].mean(0)
        neg = min(d(f[i], f[[j for j, p in enumerate(pids) if p == o]].mean(0)) for o in others)
        losses.append(max(d(f[i], pos) - neg + margin, 0.0))
    return float(np.mean(losses))


def test_ctl_positive_is_the_centroid_of_the_other_images():
    term = CentroidTripletLoss(margin=3.0)
    value = float(term(torch.tensor(FEATS), torch.tensor(PIDS)))
    # anchor 0: d(pos=(2,0)) = 2, nearest other centroid (0.5, 4) at sqrt(16.25) -> 2 - 4.0311 + 3
    assert ctl_by_hand(FEATS, PIDS, 3.0) == pytest.approx(value, rel=1e-6)
    first = 2.0 - np.sqrt(0.25 + 16.0) + 3.0
    with_self = 1.0 - np.sqrt(0.25 + 16.0) + 3.0  # what including the anchor in its centroid would give
    parts = [first]
    f = np.asarray(FEATS)
    for i, (own, other) in enumerate([(0, (2, 3)), (3, (0, 1)), (2, (0, 1))], start=1):
        parts.append(max(np.linalg.norm(f[i] - f[own]) - np.linalg.norm(f[i] - f[list(other)].mean(0)) + 3.0, 0))
    assert value == pytest.approx(np.mean(parts), rel=1e-6)
    assert value != pytest.approx(np.mean([with_self] + parts[1:]), rel=1e-3)


@pytest.mark.parametrize("cosine", [False, True])
def test_ctl_gradient_matches_finite_differences_of_the_hand_computation(cosine):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(6, 3))
    pids = [0, 0, 0, 1, 1, 2]
    term = CentroidTripletLoss(margin=1.0, distance="cosine" if cosine else "euclidean")
    x = torch.tensor(feats, dtype=torch.float64, requires_grad=True)
    value = term(x, torch.tensor(pids))
    value.backward()
    assert float(value.detach()) == pytest.approx(ctl_by_hand(feats, pids, 1.0, cosine), rel=1e-9)
    eps, numeric = 1e-6, np.zeros_like(feats)
    for i, j in itertools.product(range(6), range(3)):
        up, down = feats.copy(), feats.copy()
        up[i, j] += eps
        down[i, j] -= eps
        numeric[i, j] = (ctl_by_hand(up, pids, 1.0, cosine) - ctl_by_hand(down, pids, 1.0, cosine)) / (2 * eps)
    assert np.allclose(x.grad.numpy(), numeric, atol=1e-6)
    assert term.skipped_anchors == 1  # identity 2 has one image


def test_ctl_skips_single_image_identities_and_logs_the_count(caplog):
    term = CentroidTripletLoss(margin=3.0)
    with caplog.at_level("INFO", logger="global_model.train"):
        value = term(torch.tensor(FEATS + [[9.0, 9.0]]), torch.tensor(PIDS + [2]))
    assert term.skipped_anchors == 1
    assert "1 of 5 anchors" in caplog.text
    assert float(value) == pytest.approx(ctl_by_hand(FEATS + [[9.0, 9.0]], PIDS + [2], 3.0))
    lone = term(torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True), torch.tensor([0, 1]))
    assert float(lone.detach()) == 0.0 and lone.requires_grad


def test_ctl_refuses_k_below_two_and_is_summed_by_weight(tiny_config):
    cfg = load_config(tiny_config, ["LOSS.CENTROID_WEIGHT", "1.0", "DATALOADER.NUM_INSTANCE", "1",
                                    "SOLVER.IMS_PER_BATCH", "8"])
    with pytest.raises(LossConfigError, match="NUM_INSTANCE.*>= 2.*other K-1 images"):
        build_loss(cfg, 4, 2)
    cfg = load_config(tiny_config, ["LOSS.CENTROID_WEIGHT", "0.5", "LOSS.CENTROID_MARGIN", "3.0"])
    loss = build_loss(cfg, 2, 2)
    feats = torch.tensor(FEATS)
    outputs = {"logits": [torch.zeros(4, 2)], "triplet_feats": [feats], "center_feats": [feats]}
    total, parts = loss(outputs, {"pids": torch.tensor(PIDS)})
    assert parts["centroid"] == pytest.approx(ctl_by_hand(FEATS, PIDS, 3.0), rel=1e-5)
    assert float(total) == pytest.approx(parts["ce"] + parts["triplet"] + 0.5 * parts["centroid"], rel=1e-5)


def octuplet_by_hand(hr, lr, pids, margin, terms, dist):
    views = {"H": np.asarray(hr, float), "L": np.asarray(lr, float)}
    total = []
    for i in range(len(pids)):
        pos = [j for j in range(len(pids)) if pids[j] == pids[i] and j != i]
        neg = [j for j in range(len(pids)) if pids[j] != pids[i]]
        row = 0.0
        for t in terms:
            a, c = views[t[0]], views[t[1]]
            row += max(max(dist(a[i], c[j]) for j in pos) - min(dist(a[i], c[j]) for j in neg) + margin, 0.0)
        total.append(row)
    return float(np.mean(total))


@pytest.mark.parametrize("terms", [("HH", "HL", "LH", "LL"), ("HH",), ("HL", "LH")])
def test_octuplet_equals_the_four_term_computation_and_its_switches(terms):
    rng = np.random.default_rng(1)
    hr, lr = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    pids = [0, 0, 1, 1, 2, 2]
    euclid = lambda a, b: float(np.linalg.norm(a - b))  # noqa: E731
    loss = OctupletLoss(margin=2.0, distance="euclidean", normalize=False, terms=terms)
    value, parts = loss(torch.tensor(hr), torch.tensor(lr), torch.tensor(pids))
    assert float(value) == pytest.approx(octuplet_by_hand(hr, lr, pids, 2.0, terms, euclid), rel=1e-9)
    assert set(parts) == set(terms)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    normed, _ = OctupletLoss(margin=0.3, terms=terms)(torch.tensor(hr), torch.tensor(lr), torch.tensor(pids))
    assert float(normed) == pytest.approx(octuplet_by_hand(unit(hr), unit(lr), pids, 0.3, terms, euclid), rel=1e-9)


def test_octuplet_never_takes_the_own_twin_as_positive_and_refuses_bad_terms():
    hr = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 10.0], [0.0, 14.0]])
    lr = hr.clone()  # twins identical: d(H_i, L_i) = 0 would be the easiest positive if allowed
    value, parts = OctupletLoss(margin=0.0, normalize=False, terms=("HL",))(hr, lr, torch.tensor([0, 0, 1, 1]))
    assert parts["HL"] == 0.0 and float(value) == 0.0
    value, _ = OctupletLoss(margin=7.0, normalize=False, terms=("HL",))(hr, lr, torch.tensor([0, 0, 1, 1]))
    # positives are the other image of the id (4 away); nearest negatives 10, sqrt(116), 10, 14
    assert float(value) == pytest.approx(np.mean([1.0, 4 - np.sqrt(116) + 7, 1.0, 0.0]))
    with pytest.raises(ValueError, match="subset of HH, HL, LH, LL"):
        OctupletLoss(terms=("HX",))
