"""TabGRAA alignment (alignment.py, TabularLM.align, the synthesizer's alignment parameters):
partition, losses, selection statistics, the privacy guard, the loop and its SDV surface."""

import math
import pickle
import warnings

import matplotlib

matplotlib.use('Agg')

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from transformers import GPT2LMHeadModel  # noqa: E402

from conftest import MIXED_SDTYPES, TEST_DEVICE, TINY_MODEL, tiny_kwargs  # noqa: E402
from tabgraa_sdv import TabGRAASynthesizer  # noqa: E402
from tabgraa_sdv import alignment as A  # noqa: E402
from tabgraa_sdv.alignment import (  # noqa: E402
    OBJECTIVES, Aligner, Detection, Scorer, auc_standard_error, distill_weights, diversity,
    dpo_loss, kto_loss, npo_loss, paired_auc_difference_se, partition, tabgraa_loss)
from tabgraa_sdv.alignment import MIN_ALIGNMENT_ROWS  # noqa: E402
from tabgraa_sdv.model import TabularLM  # noqa: E402
from tabgraa_sdv.rewards import REWARDS  # noqa: E402

HISTORY_COLUMNS = ['round', 'reward_mean', 'reward_high_mean', 'reward_low_mean', 'loss',
                   'detection_auc', 'dcr_share', 'holdout_fidelity']
ALIGN = {'pool_size': 128, 'group_size': 16}  # tiny rounds: 64 rows a side, 4 steps a round


# ---------------------------------------------------------------------------- partition
def test_partition_shapes_drop_the_last_partial_group():
    rewards = np.random.default_rng(0).random(100)  # 50 a side -> 6 groups of 8, 2 dropped
    high, low = partition(rewards, 0.5, 8, np.random.default_rng(0))
    assert high.shape == low.shape == (6, 8)
    assert len(np.unique(high)) == len(np.unique(low)) == 48
    assert not set(high.ravel()) & set(low.ravel())


@pytest.mark.parametrize('quantile', [0.5, 0.25, 0.1])
def test_partition_high_beats_low_and_takes_the_quantile(quantile):
    rewards = np.random.default_rng(1).permutation(200).astype(float)  # distinct rewards
    high, low = partition(rewards, quantile, 4, np.random.default_rng(0))
    n_side = int(200 * quantile)
    assert high.size == low.size == (n_side // 4) * 4
    assert rewards[high].min() > rewards[low].max()
    # G+ comes from the top share, G- from the bottom share of the ranking.
    assert rewards[high].min() >= 200 - n_side and rewards[low].max() < n_side


def test_partition_pairs_are_rank_aligned_then_shuffled():
    rewards = np.random.default_rng(2).permutation(96).astype(float)
    high, low = partition(rewards, 0.5, 8, np.random.default_rng(5))
    # rank of each row inside its group (0 = best)
    rank_high = {i: r for r, i in enumerate(np.argsort(-rewards)[:48])}
    rank_low = {i: r for r, i in enumerate(np.argsort(-rewards)[48:])}
    pair_ranks = [(rank_high[h], rank_low[l]) for h, l in zip(high.ravel(), low.ravel())]
    assert all(a == b for a, b in pair_ranks)  # i-th best of G+ with i-th best of G-
    assert [a for a, _ in pair_ranks] != sorted(a for a, _ in pair_ranks)  # shuffled


def test_partition_is_reproducible_with_the_same_rng():
    rewards = np.random.default_rng(3).random(64)
    a = partition(rewards, 0.5, 8, np.random.default_rng(9))
    b = partition(rewards, 0.5, 8, np.random.default_rng(9))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_partition_of_a_too_small_pool_names_group_size():
    with pytest.raises(ValueError, match='group_size'):
        partition(np.arange(30.0), 0.5, 16, np.random.default_rng(0))


# ------------------------------------------------------------------------------- losses
def test_tabgraa_loss_is_log_two_when_the_groups_agree():
    rho = torch.randn(3, 8)
    # L = -log sigmoid(beta * (mean rho+ - mean rho-)) = -log sigmoid(0) = log 2
    assert tabgraa_loss(rho, rho.clone(), 1.0).item() == pytest.approx(math.log(2), rel=1e-6)
    assert tabgraa_loss(rho, rho.clone(), 7.0).item() == pytest.approx(math.log(2), rel=1e-6)


def test_tabgraa_loss_takes_group_means_inside_the_sigmoid():
    rho_high = torch.tensor([[2.0, 0.0]])
    rho_low = torch.tensor([[0.0, 2.0]])
    # group means equal -> tabgraa = log 2; DPO averages per pair: (sp(-2) + sp(2)) / 2
    tabgraa = tabgraa_loss(rho_high, rho_low, 1.0).item()
    dpo = dpo_loss(rho_high, rho_low, 1.0).item()
    assert tabgraa == pytest.approx(math.log(2))
    softplus = torch.nn.functional.softplus
    assert dpo == pytest.approx(((softplus(torch.tensor(-2.0)) + softplus(torch.tensor(2.0)))
                                 / 2).item())
    assert tabgraa != pytest.approx(dpo)
    # by hand, with several groups: mean over groups of -log sigmoid(beta * (mean - mean))
    rho_high = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    rho_low = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    expected = np.mean([-math.log(1 / (1 + math.exp(-0.5 * (2.0 - 0.5)))),
                        -math.log(1 / (1 + math.exp(-0.5 * (0.0 - 1.0))))])
    assert tabgraa_loss(rho_high, rho_low, 0.5).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize('loss_fn', [tabgraa_loss, dpo_loss, kto_loss])
def test_gradients_reach_both_groups(loss_fn):
    rho_high = torch.tensor([[0.3, -0.2, 0.1, 0.5]], requires_grad=True)
    rho_low = torch.tensor([[0.1, 0.4, -0.3, 0.2]], requires_grad=True)
    loss_fn(rho_high, rho_low, 1.0).backward()
    assert (rho_high.grad != 0).all() and (rho_low.grad != 0).all()
    # Descent raises the high group's log-ratio and lowers the low group's.
    assert (rho_high.grad < 0).all() and (rho_low.grad > 0).all()


def test_npo_loss_ignores_the_high_group():
    rho_high = torch.tensor([[0.3, -0.2, 5.0]], requires_grad=True)
    rho_low = torch.tensor([[0.1, 0.4, -0.3]], requires_grad=True)
    loss = npo_loss(rho_high, rho_low, 2.0)
    loss.backward()
    assert rho_high.grad is None or (rho_high.grad == 0).all()
    assert (rho_low.grad > 0).all()  # pushes the low group down
    assert loss.item() == pytest.approx(npo_loss(torch.zeros(1, 3) - 9, rho_low, 2.0).item())
    # L = mean -(2 / beta) log sigmoid(-beta * rho)
    expected = np.mean([-(2 / 2.0) * math.log(1 / (1 + math.exp(2.0 * r)))
                        for r in (0.1, 0.4, -0.3)])
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_kto_loss_decreases_when_rho_high_increases():
    rho_low = torch.tensor([[0.1, -0.4, 0.2, 0.0]])
    values = [kto_loss(torch.full((1, 4), h), rho_low, 1.0).item()
              for h in np.linspace(-2, 3, 11)]
    assert all(b < a for a, b in zip(values, values[1:]))


def test_kto_reference_point_is_detached_and_clamped():
    rho_high = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    rho_low = torch.tensor([[-3.0, -1.0]], requires_grad=True)
    loss = kto_loss(rho_high, rho_low, 1.0)
    # mean rho < 0 -> z = 0
    sig = torch.sigmoid
    expected = ((1 - sig(rho_high)).mean() + (1 - sig(-rho_low)).mean()).item()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # z detached: d/d rho_high of 1 - sigmoid(rho_high - z) is -sigmoid'(.) / B, nothing else
    s = sig(torch.tensor([-1.0, -2.0]))
    np.testing.assert_allclose(rho_high.grad[0].numpy(), (-(s * (1 - s)) / 2).numpy(), rtol=1e-5)


# ------------------------------------------------------------------- selection statistics
def test_auc_standard_error_shrinks_with_more_rows_and_vanishes_at_one():
    small, large = auc_standard_error(0.7, 50, 50), auc_standard_error(0.7, 5000, 5000)
    assert 0 < large < small
    assert large == pytest.approx(small / 10, rel=0.05)  # ~ 1 / sqrt(n)
    assert auc_standard_error(1.0, 100, 100) == pytest.approx(0.0, abs=1e-12)
    # Hanley & McNeil at AUC 0.5, n+ = n- = n: sqrt((1/4 + (n-1)(1/3 - 1/4) * 2) / n^2)
    n = 100
    assert auc_standard_error(0.5, n, n) == pytest.approx(
        math.sqrt((0.25 + 2 * (n - 1) / 12) / n**2), rel=1e-9)


def test_detection_placements_average_to_sklearns_auc_with_ties():
    rng = np.random.default_rng(0)
    p_real = rng.integers(0, 5, 300) / 4  # coarse scores: many ties within and across classes
    p_syn = rng.integers(0, 4, 500) / 4
    detection = Detection.from_scores(p_real, p_syn)
    y = np.r_[np.ones(300), np.zeros(500)]
    expected = roc_auc_score(y, np.r_[p_real, p_syn])
    assert detection.auc == pytest.approx(expected, abs=1e-12)
    assert detection.synthetic_placements.mean() == pytest.approx(expected, abs=1e-12)
    assert detection.se == pytest.approx(auc_standard_error(expected, 300, 500))


def _round_scores(rng, hardness, shift, m=2000):
    """Classifier scores of one round: each held-out real row has a hardness shared by every
    round (the same rows are easy to tell from synthetic ones whatever the pool), plus noise;
    a fresh synthetic pool, its scores raised by ``shift`` (a better round's rows look more
    real to the classifier, so its AUC is lower)."""
    p_real = hardness + 0.3 * rng.standard_normal(len(hardness))
    p_syn = rng.standard_normal(m) + 0.6 + shift
    return Detection.from_scores(p_real, p_syn)


def test_paired_standard_error_matches_the_spread_of_auc_differences():
    """Over many draws of two rounds scored on the same real rows, the paired DeLong SE is
    the standard deviation of the AUC difference, and well under the unpaired one."""
    rng = np.random.default_rng(1)
    hardness = rng.standard_normal(1000)
    differences, paired, unpaired = [], [], []
    for _ in range(300):
        a, b = _round_scores(rng, hardness, 0.05), _round_scores(rng, hardness, 0.0)
        differences.append(a.auc - b.auc)
        paired.append(paired_auc_difference_se(a, b))
        unpaired.append(math.hypot(a.se, b.se))
    assert np.mean(paired) == pytest.approx(np.std(differences), rel=0.15)
    assert np.mean(paired) < 0.75 * np.mean(unpaired)
    assert np.mean(differences) < 0  # the shifted round is the better one
    with pytest.raises(ValueError, match='same held-out real rows'):
        paired_auc_difference_se(a, _round_scores(rng, hardness[:10], 0.0))


def test_diversity_of_duplicated_rows_and_a_constant_column():
    tokens = np.array([[1, 5, 7], [2, 5, 8], [1, 5, 7], [3, 5, 9]])
    distinct, entropy = diversity(tokens)
    assert distinct == pytest.approx(3 / 4)
    # columns: {1:2, 2:1, 3:1}, constant (entropy 0), {7:2, 8:1, 9:1}
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert entropy == pytest.approx((h + 0.0 + h) / 3)
    assert diversity(np.full((10, 2), 4)) == (pytest.approx(0.1), pytest.approx(0.0))
    assert diversity(np.arange(12).reshape(6, 2))[0] == 1.0


# ------------------------------------------------------------------ a fitted TabularLM
def make_lm_frame(n_rows=300, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        'x': np.round(rng.normal(0, 1, n_rows), 2),
        'k': rng.integers(0, 50, n_rows),
        'c': rng.choice(np.array(['a', 'b', 'c', None], dtype=object), n_rows),
    })


def fit_lm(frame=None, seed=0, **config):
    frame = make_lm_frame() if frame is None else frame
    lm = TabularLM(epochs=1, batch_size=128, model_config={**TINY_MODEL, **config},
                   device=TEST_DEVICE, seed=seed)
    return lm.fit(frame), lm.codec.encode(frame)


@pytest.fixture(scope='module')
def lm_tokens():
    """A frame's tokens split into the scorer's training and held-out rows."""
    _, tokens = fit_lm()
    return tokens[:220], tokens[220:]


# ------------------------------------------------------------------------- privacy guard
def rows_outside_pools(aligner):
    """Rows the LM loss saw that are not rows of any pool the aligner drew."""
    pooled = {row.tobytes() for pool in aligner.pools for row in np.asarray(pool, np.int64)}
    return [row for batch in aligner.loss_inputs for row in np.asarray(batch, np.int64)
            if row.tobytes() not in pooled]


def arrays_held_by(obj, depth=0, seen=None):
    """Every numpy array / tensor reachable through ``obj``'s attributes (not the codec)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 4:
        return []
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, torch.Tensor):
        return [obj.detach().cpu().numpy()]
    children = []
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif hasattr(obj, '__dict__') and type(obj).__module__.startswith('tabgraa_sdv') \
            and type(obj).__name__ not in ('ColumnarCodec', 'TabularLM'):
        children = list(vars(obj).values())
    return [a for child in children for a in arrays_held_by(child, depth + 1, seen)]


def holds_rows_of(arrays, tokens):
    """Whether any held 2-D array has the token width and contains a real token row."""
    real = {row.tobytes() for row in np.asarray(tokens, np.int64)}
    for array in arrays:
        if array.ndim == 2 and array.shape[1] == tokens.shape[1]:
            try:
                as_int = array.astype(np.int64)
            except (TypeError, ValueError):
                continue
            if np.array_equal(as_int, array) and any(r.tobytes() in real for r in as_int):
                return True
    return False


@pytest.mark.parametrize('objective', ['tabgraa', 'dpo', 'kto', 'npo', 'distill'])
def test_alignment_losses_only_ever_see_pool_rows(objective, lm_tokens):
    lm, _ = fit_lm()
    train, holdout = lm_tokens
    aligner = lm.align(train, holdout, record=True, rounds=2, objective=objective,
                       patience=5, **ALIGN)
    assert len(aligner.history) == 3
    assert len(aligner.pools) == 4  # round 0, first scored pool, one after each round
    assert all(len(pool) == ALIGN['pool_size'] for pool in aligner.pools)
    assert len(aligner.loss_inputs) == 2 * (64 // 16)  # one batch per optimizer step
    assert all(len(batch) == 2 * ALIGN['group_size'] for batch in aligner.loss_inputs)
    assert rows_outside_pools(aligner) == []
    # The aligner never holds the real tokens: the scorer keeps features, no SFT callback.
    assert aligner.sft_tokens is None
    scorer = aligner.scorer
    # (pools and loss inputs are model samples, which may copy a training row by chance)
    held = arrays_held_by(scorer) + arrays_held_by(
        {k: v for k, v in vars(aligner).items() if k not in ('pools', 'loss_inputs')})
    assert held, 'the walk found nothing: the check would be vacuous'
    assert not holds_rows_of(held, train) and not holds_rows_of(held, holdout)
    assert all(not np.shares_memory(a, train) and not np.shares_memory(a, holdout) for a in held)
    assert scorer.real_X.dtype == np.float64 and scorer.holdout_X.dtype == np.float64
    assert scorer.real_X.shape == (len(train), len(lm.codec.columns))  # one feature a column
    assert scorer.user_reward is None and scorer._real_frame is None


def test_privacy_guard_catches_a_leaked_training_row(lm_tokens, monkeypatch):
    """Negative control: a training row slipped into the loss is reported by the check."""
    lm, _ = fit_lm()
    train, holdout = lm_tokens
    original = Aligner._log_probs
    leaked = {}

    def leaky(self, tokens, grad=True, model=None, batch_size=4096):
        if grad and not leaked:
            pooled = {r.tobytes() for pool in self.pools for r in pool}
            row = next(r for r in train if r.tobytes() not in pooled)
            tokens = np.array(tokens, copy=True)
            tokens[0] = row
            leaked['row'] = row
        return original(self, tokens, grad=grad, model=model, batch_size=batch_size)

    monkeypatch.setattr(Aligner, '_log_probs', leaky)
    aligner = lm.align(train, holdout, record=True, rounds=1, **ALIGN)
    outside = rows_outside_pools(aligner)
    assert len(outside) == 1
    np.testing.assert_array_equal(outside[0], leaked['row'])
    assert holds_rows_of(aligner.loss_inputs, train)


def test_sft_more_baseline_trains_on_real_rows_and_the_guard_sees_it(lm_tokens):
    """sft_more is the supervised baseline: it is expected to feed real rows, and the guard
    reports them (so the guard is not vacuous for a real-data path either)."""
    lm, _ = fit_lm()
    train, holdout = lm_tokens
    aligner = lm.align(train, holdout, record=True, rounds=1, objective='sft_more', **ALIGN)
    assert aligner.loss_inputs and rows_outside_pools(aligner)
    assert holds_rows_of(aligner.loss_inputs, train)


def test_first_alignment_step_starts_from_the_reference(lm_tokens, monkeypatch):
    """rho = log pi_theta - log pi_ref is exactly 0 before the first update (LoRA's B = 0, the
    full copy is identical), so the first TabGRAA loss is log 2: the policy's log-probs must not
    be computed with dropout when the reference's are not."""
    train, holdout = lm_tokens
    original = A.LOSSES['tabgraa']
    for adapter in ('lora', 'full'):
        lm, _ = fit_lm(dropout=0.1)  # the compact default has none; the trap needs it
        assert lm.model.config.resid_pdrop > 0
        seen = []

        def spy(rho_high, rho_low, beta):
            seen.append((rho_high.detach().clone(), rho_low.detach().clone()))
            return original(rho_high, rho_low, beta)

        monkeypatch.setitem(A.LOSSES, 'tabgraa', spy)
        aligner = lm.align(train, holdout, rounds=1, adapter=adapter, **ALIGN)
        rho_high, rho_low = seen[0]
        np.testing.assert_allclose(rho_high.cpu().numpy(), 0, atol=1e-5, err_msg=adapter)
        np.testing.assert_allclose(rho_low.cpu().numpy(), 0, atol=1e-5, err_msg=adapter)
        assert not all(torch.allclose(h, torch.zeros_like(h), atol=1e-6) for h, _ in seen), \
            'later steps must move the policy away from the reference'
        assert math.isfinite(aligner.history[1]['loss'])


def test_align_leaves_a_plain_trainable_model(lm_tokens):
    train, holdout = lm_tokens
    lm, _ = fit_lm()
    keys = set(lm.model.state_dict())
    lm.align(train, holdout, rounds=1, adapter='lora', **ALIGN)
    assert type(lm.model) is GPT2LMHeadModel
    assert set(lm.model.state_dict()) == keys
    assert not any('lora' in name for name, _ in lm.model.named_modules())
    assert not lm.model.training
    # as after SFT: every weight trainable again, so a later alignment (full) can train it
    assert all(p.requires_grad for p in lm.model.parameters())
    aligner = lm.align(train, holdout, rounds=1, adapter='full', **ALIGN)
    assert len(aligner.history) == 2


def test_align_with_a_wide_categorical_column():
    """More than 255 categories: HistGradientBoosting would refuse them as categorical."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({'x': rng.normal(0, 1, 400).round(2),
                          'city': [f'c{i:03d}' for i in rng.permutation(400)]})
    lm, tokens = fit_lm(frame)
    aligner = lm.align(tokens[:300], tokens[300:], rounds=1, pool_size=512, group_size=16)
    assert len(aligner.history) == 2
    assert all(0 <= row['detection_auc'] <= 1 for row in aligner.history)
    assert all(0 < row['holdout_fidelity'] <= 1 for row in aligner.history)


# ----------------------------------------------------------------- selection and patience
@pytest.fixture
def scripted_auc(monkeypatch):
    """Detection AUCs come from a script (standard error as given) and diversity never drops,
    so the selection logic is tested apart from the noise of a tiny model."""
    def install(values, se=0.0, paired_se=0.0):
        """``paired_se``: every pair of rounds gets this paired SE of their difference."""
        it = iter(values)
        # 2 real rows with placements (a - d, a + d) make Var_i(V_a - V_b) / 2 = paired_se^2
        # between rounds of different sign; synthetic placements are constant.
        signs = iter(np.resize([1.0, -1.0], 64))

        def detection(self, tokens):
            auc, d = next(it), next(signs) * paired_se / 2
            return Detection(auc, se, [auc - d, auc + d], [auc, auc])

        monkeypatch.setattr(Scorer, 'detection_auc', detection)
        monkeypatch.setattr(A, 'diversity', lambda tokens: (1.0, 1.0))
    return install


@pytest.mark.parametrize('aucs, patience, rounds, kept', [
    ([0.9, 0.9, 0.9, 0.9], 1, [0, 1], 0),  # no improvement: stop after one round
    ([0.9, 0.8, 0.85, 0.7, 0.6], 1, [0, 1, 2], 1),  # improvement, then one round without
    ([0.9, 0.8, 0.85, 0.7, 0.6], 2, [0, 1, 2, 3, 4], 4),  # patience 2 outlasts the bad round
    ([0.9, 0.95, 0.97, 0.8, 0.7], 2, [0, 1, 2], 0),  # two bad rounds: stop, keep SFT
])
def test_patience_stops_after_rounds_without_improvement(lm_tokens, scripted_auc, aucs,
                                                         patience, rounds, kept):
    scripted_auc(aucs)
    lm, _ = fit_lm()
    history = lm.align(*lm_tokens, rounds=4, patience=patience, **ALIGN).history
    assert [row['round'] for row in history] == rounds
    assert [row['round'] for row in history if row['kept']] == [kept]


def test_an_improvement_within_the_standard_error_is_not_kept(lm_tokens, scripted_auc):
    scripted_auc([0.9, 0.85, 0.79], se=0.1)
    lm, _ = fit_lm()
    history = lm.align(*lm_tokens, rounds=2, patience=5, **ALIGN).history
    assert [row['kept'] for row in history] == [False, False, True]  # 0.79 < 0.9 - 0.1


def test_paired_selection_keeps_a_round_inside_its_own_se_but_outside_the_paired_one(
        lm_tokens, scripted_auc):
    # 0.85 is within 0.1 of 0.9, but outside the paired SE (0.02) of the difference
    scripted_auc([0.9, 0.85, 0.84], se=0.1, paired_se=0.02)
    lm, _ = fit_lm()
    history = lm.align(*lm_tokens, rounds=2, patience=5, selection='paired', **ALIGN).history
    assert [row['detection_auc_paired_se'] for row in history[1:]] == pytest.approx([0.02] * 2)
    assert [row['kept'] for row in history] == [False, True, False]  # 0.84 > 0.85 - 0.02
    scripted_auc([0.9, 0.85, 0.84], se=0.1, paired_se=0.02)
    lm, _ = fit_lm()
    history = lm.align(*lm_tokens, rounds=2, patience=5, **ALIGN).history  # 'auc_se'
    assert [row['kept'] for row in history] == [True, False, False]


def test_fidelity_selection_also_needs_held_out_fidelity_no_lower_than_the_best(
        lm_tokens, scripted_auc, monkeypatch):
    """Round 1 detects lower but lost fidelity: 'fidelity' passes it over (the default takes
    it); round 2 is lower on both counts than round 0, so it is kept."""
    for selection, kept in [('fidelity', [False, False, True]), ('auc_se', [False, True, False])]:
        scripted_auc([0.9, 0.8, 0.85])
        fidelity = iter([0.90, 0.89, 0.91])
        monkeypatch.setattr(Scorer, 'holdout_fidelity', lambda self, tokens: next(fidelity))
        lm, _ = fit_lm()
        history = lm.align(*lm_tokens, rounds=2, patience=5, selection=selection,
                           **ALIGN).history
        assert [row['holdout_fidelity'] for row in history] == [0.90, 0.89, 0.91]
        assert [row['kept'] for row in history] == kept


def test_selection_must_be_a_known_rule(lm_tokens):
    lm, _ = fit_lm()
    with pytest.raises(ValueError, match="selection must be one of .*'paired'"):
        lm.align(*lm_tokens, rounds=1, selection='lowest', **ALIGN)


def test_the_kept_round_is_the_model_that_samples(lm_tokens, scripted_auc):
    """Keeping round 0 restores the SFT weights exactly, whatever the rounds did."""
    train, holdout = lm_tokens
    scripted_auc([0.6, 0.9, 0.9])
    lm, _ = fit_lm()
    sft_state = {k: v.clone() for k, v in lm.model.state_dict().items()}
    lm.align(train, holdout, rounds=2, patience=5, learning_rate=1e-2, **ALIGN)
    for key, value in lm.model.state_dict().items():
        torch.testing.assert_close(value, sft_state[key], rtol=0, atol=1e-6, msg=key)
    scripted_auc([0.9, 0.6, 0.9])
    lm, _ = fit_lm()
    lm.align(train, holdout, rounds=2, patience=5, learning_rate=1e-2, **ALIGN)
    assert any(not torch.allclose(value, sft_state[key])
               for key, value in lm.model.state_dict().items())


def test_backtrack_undoes_a_round_that_is_not_kept_and_shrinks_the_step(
        lm_tokens, scripted_auc, monkeypatch):
    scripted_auc([0.9, 0.95, 0.8])
    starts = []  # (trainable weights, learning rate) at the start of each round's steps
    align_round = A.Aligner._align_round

    def spy(self, pool, rewards, optimizer, rng):
        state = {k: v.clone() for k, v in self._trainable_state().items()}
        starts.append((state, optimizer.param_groups[0]['lr']))
        return align_round(self, pool, rewards, optimizer, rng)

    monkeypatch.setattr(A.Aligner, '_align_round', spy)
    lm, _ = fit_lm()
    history = lm.align(*lm_tokens, rounds=2, patience=5, learning_rate=1e-2, backtrack=0.5,
                       **ALIGN).history
    assert [row['learning_rate'] for row in history[1:]] == [1e-2, 5e-3]
    assert [lr for _, lr in starts] == [1e-2, 5e-3]
    for key, value in starts[0][0].items():  # round 2 starts from round 0, not from round 1
        torch.testing.assert_close(starts[1][0][key], value, rtol=0, atol=0, msg=key)
    assert [row['kept'] for row in history] == [False, False, True]


@pytest.mark.parametrize('objective', ['tabgraa', 'distill'])
def test_current_ratio_rescores_rows_against_the_policy_that_drew_them(
        lm_tokens, scripted_auc, monkeypatch, objective):
    """The corrected reward is r(x) + log pi_prev(x) - log pi_theta(x): r itself in round 1,
    where both pools come from the SFT model, then r plus the log-ratio of round 0's weights
    (the reference: LoRA's B = 0) to round 1's."""
    scripted_auc([0.9, 0.8, 0.7])

    def reward(tokens):  # any function of the row will do
        return (np.asarray(tokens)[:, 0] % 3).astype(float)

    monkeypatch.setattr(Scorer, 'reward', lambda self, fresh, previous: reward(fresh))
    seen = []  # (rewards the objective got, r + log pi_ref - log pi_theta of its pool)
    method = '_distill_round' if objective == 'distill' else '_align_round'
    original = getattr(A.Aligner, method)

    def spy(self, pool, rewards, optimizer, *rest):
        log_ratio = self._reference_log_probs(pool) - self._log_probs(pool, grad=False)
        seen.append((np.asarray(rewards), reward(pool), log_ratio.cpu().numpy()))
        return original(self, pool, rewards, optimizer, *rest)

    monkeypatch.setattr(A.Aligner, method, spy)
    lm, _ = fit_lm()
    lm.align(*lm_tokens, rounds=2, patience=5, learning_rate=1e-2, objective=objective,
             current_ratio=True, **ALIGN)
    (first, r_first, zero), (second, r_second, log_ratio) = seen
    np.testing.assert_array_equal(first, r_first)
    np.testing.assert_allclose(zero, 0, atol=1e-5)
    assert np.abs(log_ratio).max() > 1e-3, 'round 1 must have moved the policy'
    np.testing.assert_allclose(second, r_second + log_ratio, rtol=1e-5, atol=1e-5)


def test_current_ratio_needs_the_logodds_reward(lm_tokens):
    lm, _ = fit_lm()
    with pytest.raises(ValueError, match="current_ratio.*reward='logodds'"):
        lm.align(*lm_tokens, rounds=1, reward='classifier', current_ratio=True, **ALIGN)


def test_several_scorers_average_p_real_of_one_classifier_per_previous_pool(lm_tokens):
    lm, _ = fit_lm()
    train, holdout = lm_tokens
    lm.set_random_state(3)
    fresh, first, second = (lm.sample_token_rows(120) for _ in range(3))
    scorer = Scorer(lm.codec, train, holdout, reward='logodds', seed=7)
    features = scorer.features

    def p_real(previous, seed):
        classifier = A.R.two_sample_classifier(
            scorer.real_X, features.transform(previous), features.classifier_categorical, seed)
        return classifier.predict_proba(features.transform(fresh))[:, 1]

    averaged = scorer.reward(fresh, [first, second])
    np.testing.assert_allclose(averaged, A.R.logodds_reward((p_real(first, 7)
                                                              + p_real(second, 8)) / 2))
    # one pool, bare or in a list, is the single classifier of the paper's reward
    np.testing.assert_allclose(scorer.reward(fresh, first), A.R.logodds_reward(p_real(first, 7)))
    np.testing.assert_allclose(scorer.reward(fresh, [first]), scorer.reward(fresh, first))
    assert not np.allclose(averaged, scorer.reward(fresh, first))


def test_scorers_draw_companion_pools_that_only_the_scorer_sees(lm_tokens, monkeypatch):
    """With scorers=2 each round draws the pool it trains on plus one companion from the same
    policy; the next round's scorer gets both as its previous pools, and the loss sees rows of
    the trained-on pools only."""
    calls = []
    original = Scorer.reward

    def spy(self, fresh, previous):
        calls.append((fresh, previous))
        return original(self, fresh, previous)

    monkeypatch.setattr(Scorer, 'reward', spy)
    lm, _ = fit_lm()
    train, holdout = lm_tokens
    aligner = lm.align(train, holdout, record=True, rounds=2, patience=5, scorers=2, **ALIGN)
    assert len(aligner.pools) == 2 * 4  # round 0, first scored, one after each round: 2 each
    pools = aligner.pools
    (fresh1, previous1), (fresh2, previous2) = calls
    assert [p is q for p, q in zip(previous1, pools[0:2])] == [True, True]
    assert fresh1 is pools[2] and fresh2 is pools[4]
    assert len(previous2) == 2 and previous2[0] is fresh1 and previous2[1] is pools[3]
    trained_on = {row.tobytes() for pool in (fresh1, fresh2) for row in pool}
    assert all(row.tobytes() in trained_on
               for batch in aligner.loss_inputs for row in np.asarray(batch, np.int64))


@pytest.mark.parametrize('scorers', [0, 1.5, True])
def test_scorers_must_be_a_positive_integer(lm_tokens, scorers):
    lm, _ = fit_lm()
    with pytest.raises(ValueError, match='scorers must be a positive integer'):
        lm.align(*lm_tokens, rounds=1, scorers=scorers, **ALIGN)


@pytest.mark.parametrize('reward', ['dcr', 'histogram'])
def test_scorers_need_a_classifier_reward(lm_tokens, reward):
    lm, _ = fit_lm()
    with pytest.raises(ValueError, match=f"scorers=2 averages reward classifiers.*'{reward}'"):
        lm.align(*lm_tokens, rounds=1, reward=reward, scorers=2, **ALIGN)


def test_a_collapsed_round_is_never_kept(lm_tokens, monkeypatch):
    diversities = iter([(1.0, 1.0), (0.5, 1.0), (1.0, 0.5)])
    aucs = iter([0.9, 0.6, 0.5])
    monkeypatch.setattr(Scorer, 'detection_auc',
                        lambda self, tokens: Detection(auc := next(aucs), 0.0, [auc], [auc]))
    monkeypatch.setattr(A, 'diversity', lambda tokens: next(diversities))
    lm, _ = fit_lm()
    history = lm.align(*lm_tokens, rounds=2, patience=5, **ALIGN).history
    assert [row['kept'] for row in history] == [True, False, False]


# ------------------------------------------------------------------------- synthesizer
@pytest.fixture(scope='module')
def aligned(mixed_frame, mixed_metadata):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
            epochs=1, rounds=2, patience=2, **ALIGN))
        synthesizer.fit(mixed_frame)
    return synthesizer


def check_history(history, n_rounds):
    assert set(HISTORY_COLUMNS) <= set(history.columns)
    assert history['round'].tolist() == list(range(n_rounds + 1))
    assert history['kept'].sum() == 1
    assert history.loc[0, ['loss', 'reward_mean']].isna().all()  # round 0 is the SFT model
    later = history.iloc[1:]
    assert later[['loss', 'reward_mean', 'reward_high_mean', 'reward_low_mean']].notna().all().all()
    assert (later['reward_high_mean'] >= later['reward_mean']).all()
    assert (later['reward_mean'] >= later['reward_low_mean']).all()
    assert history['detection_auc'].between(0, 1).all()
    assert history['dcr_share'].between(0, 1).all()


@pytest.mark.parametrize('objective, adapter', [
    ('tabgraa', 'lora'), ('tabgraa', 'full'), ('dpo', 'full'), ('kto', 'lora'),
    ('npo', 'full'), ('sft_more', 'lora'), ('distill', 'lora'),
])
def test_every_objective_and_adapter_fits(mixed_frame, mixed_metadata, objective, adapter):
    assert objective in OBJECTIVES
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rounds=2, objective=objective, adapter=adapter, **ALIGN))
    synthesizer.fit(mixed_frame)
    check_history(synthesizer.get_alignment_history(), 2)
    assert type(synthesizer._model.model) is GPT2LMHeadModel
    assert len(synthesizer.sample(50)) == 50


def test_objectives_cover_the_documented_list():
    assert set(OBJECTIVES) == {'tabgraa', 'dpo', 'kto', 'npo', 'sft_more', 'distill'}


def test_distill_weights_follow_exp_reward_over_beta_and_cap_the_largest():
    rewards = np.log(np.array([1.0, 2.0, 4.0, 8.0]))
    weights = distill_weights(rewards, beta=1.0, clip_quantile=1.0)
    np.testing.assert_allclose(weights, np.array([1, 2, 4, 8]) / 15)
    flatter = distill_weights(rewards, beta=2.0, clip_quantile=1.0)  # exp(r / 2) = sqrt ratio
    np.testing.assert_allclose(flatter, np.sqrt([1, 2, 4, 8]) / np.sqrt([1, 2, 4, 8]).sum())
    capped = distill_weights(np.r_[np.linspace(0, 1, 99), 50.0], beta=1.0)  # one outlier
    assert capped.sum() == pytest.approx(1.0)
    assert capped[-1] == capped[-2]  # the outlier gets the weight of the 99% quantile's row
    assert np.isfinite(distill_weights(np.array([1e4, -1e4]), beta=1.0)).all()


@pytest.mark.parametrize('reward', REWARDS)
def test_every_built_in_reward_fits(mixed_frame, mixed_metadata, reward):
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rounds=1, reward=reward, **ALIGN))
    synthesizer.fit(mixed_frame)
    history = synthesizer.get_alignment_history()
    check_history(history, 1)
    if reward == 'dcr':
        assert history.loc[1, 'reward_high_mean'] <= 1 and history.loc[1, 'reward_low_mean'] >= 0
    if reward == 'realism':
        assert 0 <= history.loc[1, 'reward_low_mean'] <= history.loc[1, 'reward_high_mean'] <= 1


def test_aligned_synthesizer_history_and_model(aligned):
    check_history(aligned.get_alignment_history(), 2)
    model = aligned._model.model
    assert type(model) is GPT2LMHeadModel  # LoRA merged back
    assert not any('lora' in key for key in model.state_dict())
    fresh = GPT2LMHeadModel(model.config)
    assert set(model.state_dict()) == set(fresh.state_dict())


def test_aligned_synthesizer_samples_and_round_trips(aligned, mixed_frame, tmp_path):
    aligned.reset_sampling()
    first = aligned.sample(200)
    assert list(first.columns) == list(MIXED_SDTYPES)
    assert first.dtypes.to_dict() == mixed_frame.dtypes.to_dict()
    path = tmp_path / 'aligned.pkl'
    aligned.save(path)
    loaded = TabGRAASynthesizer.load(path)
    pd.testing.assert_frame_equal(loaded.get_alignment_history(), aligned.get_alignment_history())
    aligned.reset_sampling()
    loaded.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(200), aligned.sample(200))
    aligned.reset_sampling()
    pd.testing.assert_frame_equal(aligned.sample(200), first)
    pickle.dumps(aligned._model)  # no peft objects left that do not pickle


def test_plot_alignment_history_returns_a_figure(aligned):
    from matplotlib.figure import Figure
    import matplotlib.pyplot as plt

    figure = aligned.plot_alignment_history()
    assert isinstance(figure, Figure)
    left, right = figure.axes[:2]
    assert len(left.lines) == 3 and len(right.lines[0].get_xdata()) == 3
    plt.close(figure)


def test_rounds_zero_leaves_an_empty_alignment_history(fitted):
    assert fitted.rounds == 0
    history = fitted.get_alignment_history()
    assert history.empty
    assert set(HISTORY_COLUMNS) <= set(history.columns)


def test_too_few_rows_skip_alignment_with_a_warning(mixed_frame, mixed_metadata):
    small = mixed_frame.head(MIN_ALIGNMENT_ROWS - 1)
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rounds=2, pool_size=32, group_size=4))
    with pytest.warns(UserWarning, match='alignment rounds are skipped'):
        synthesizer.fit(small)
    assert synthesizer.get_alignment_history().empty
    assert len(synthesizer.sample(10)) == 10
    enough = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rounds=1, pool_size=32, group_size=4))
    enough.fit(mixed_frame.head(MIN_ALIGNMENT_ROWS))
    assert enough.get_alignment_history()['round'].tolist() == [0, 1]


def test_synthesizer_patience_one_stops_after_one_round_without_improvement(
        mixed_frame, mixed_metadata, scripted_auc):
    scripted_auc([0.9, 0.9, 0.9, 0.9])
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rounds=3, patience=1, **ALIGN))
    synthesizer.fit(mixed_frame)
    history = synthesizer.get_alignment_history()
    assert history['round'].tolist() == [0, 1]
    assert history['kept'].tolist() == [True, False]


# ---------------------------------------------------------------------- user reward
def row_keys(frame):
    frame = frame.astype(object).where(frame.notna(), None)
    return set(frame.astype(str).agg('|'.join, axis=1))


def test_user_reward_sees_the_users_columns_and_real_rows(mixed_frame, mixed_metadata):
    calls = []

    def reward(real_df, synthetic_df):
        calls.append((real_df.copy(), synthetic_df.copy()))
        return -np.abs(synthetic_df['age'].to_numpy() - 40.0)

    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rounds=1, reward=reward, **ALIGN))
    synthesizer.fit(mixed_frame)
    assert len(calls) == 1
    real_df, synthetic_df = calls[0]
    assert list(real_df.columns) == list(mixed_frame.columns)
    assert list(synthetic_df.columns) == list(mixed_frame.columns)
    assert len(synthetic_df) == ALIGN['pool_size']
    assert real_df['joined'].dtype == mixed_frame['joined'].dtype
    # The real frame holds training rows only (the 90% SFT split), none made up.
    assert 0 < len(real_df) < len(mixed_frame)
    assert row_keys(real_df) <= row_keys(mixed_frame)
    history = synthesizer.get_alignment_history()
    # the pool's mean reward is the callable's
    assert history.loc[1, 'reward_mean'] == pytest.approx(
        np.mean(-np.abs(synthetic_df['age'].to_numpy() - 40.0)))


@pytest.mark.parametrize('bad, match', [
    (lambda real, syn: np.zeros(len(syn) - 1), 'one value per row'),
    (lambda real, syn: np.full(len(syn), np.nan), 'NaN'),
    (lambda real, syn: ['x'] * len(syn), 'array of floats'),
])
def test_bad_user_reward_raises_naming_the_problem(mixed_frame, mixed_metadata, bad, match):
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rounds=1, reward=bad, **ALIGN))
    with pytest.raises(ValueError, match=match):
        synthesizer.fit(mixed_frame)


# -------------------------------------------------------------------- bad parameters
@pytest.mark.parametrize('name, value', [
    ('objective', 'ppo'),
    ('objective', None),
    ('reward', 'accuracy'),
    ('reward', 3),
    ('quantile', 0),
    ('quantile', 0.6),
    ('quantile', -0.1),
    ('quantile', True),
    ('adapter', 'qlora'),
    ('adapter', None),
    ('beta', 0),
    ('beta', -1.0),
    ('beta', 'high'),
    ('beta', True),
    ('pool_size', 0),
    ('pool_size', 100.0),
    ('pool_size', -5),
    ('group_size', 0),
    ('group_size', 2.5),
    ('patience', 0),
    ('alignment_learning_rate', 0),
])
def test_bad_alignment_parameter_raises_value_error_naming_it(mixed_metadata, name, value):
    with pytest.raises(ValueError, match=name):
        TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(rounds=1, **{name: value}))


def test_group_size_larger_than_a_side_of_the_pool_names_group_size(mixed_metadata):
    with pytest.raises(ValueError, match='group_size'):
        TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(rounds=1, pool_size=128, group_size=65))
    with pytest.raises(ValueError, match='group_size'):
        TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(rounds=1, pool_size=128, quantile=0.25,
                                                         group_size=33))
    # exactly a side fits
    TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(rounds=1, pool_size=128, group_size=64))
    # without rounds the alignment parameters are not used
    TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(rounds=0, pool_size=8, group_size=64))
