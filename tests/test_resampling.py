"""Density-ratio resampling (resampling.py, ``resampling_factor`` of the synthesizer)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import MIXED_SDTYPES, check_save_load_samples_the_same, tiny_kwargs
from sdv.sampling import Condition

from tabgraa_sdv import TabGRAASynthesizer
from tabgraa_sdv.rewards import capped_weights


def test_capped_weights_cap_an_outlier_at_the_quantile_row_and_never_overflow():
    log_ratio = np.r_[np.linspace(0, 1, 99), 50.0]
    weights = capped_weights(log_ratio)
    assert weights.max() == 1.0 and weights[-1] == weights[-2]
    np.testing.assert_allclose(weights[:99], np.exp(log_ratio[:99] - log_ratio[98]))
    assert np.isfinite(capped_weights(np.array([1e6, -1e6, 0.0]))).all()


@pytest.fixture(scope='module')
def resampled(mixed_frame, mixed_metadata):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(resampling_factor=3))
        synthesizer.fit(mixed_frame)
    return synthesizer


def fake_log_ratio(resampler, values):
    resampler.log_ratio = lambda tokens: np.asarray(values, dtype=float)[:len(tokens)]


def test_choose_takes_one_candidate_per_row_by_weight(resampled):
    resampler = resampled._model.resampler
    n, factor = 1000, resampler.factor
    candidates = np.arange(factor * n)[:, None].repeat(2, axis=1)  # row ids as tokens
    generator = torch.Generator().manual_seed(0)
    original = resampler.log_ratio
    try:
        # Candidate 1 of every row is 2x as likely as candidates 0 and 2 (1/4, 1/2, 1/4).
        fake_log_ratio(resampler, np.r_[np.zeros(n), np.full(n, np.log(2)), np.zeros(n)])
        chosen = resampler.choose(candidates, generator)[:, 0]
        assert ((chosen % n) == np.arange(n)).all()  # row i keeps one of its own candidates
        share = np.bincount(chosen // n, minlength=factor) / n
        np.testing.assert_allclose(share, [0.25, 0.5, 0.25], atol=0.05)
        # A candidate far less likely than its siblings is (almost) never kept.
        fake_log_ratio(resampler, np.r_[np.full(n, -30.0), np.zeros(n), np.zeros(n)])
        assert (resampler.choose(candidates, generator)[:, 0] >= n).all()
    finally:
        resampler.log_ratio = original


def test_kept_rows_have_higher_estimated_ratio_than_the_candidates(resampled):
    lm = resampled._model
    lm.set_random_state(5)
    candidates = lm.sample_token_rows(3 * 400)
    chosen = lm.resampler.choose(candidates, lm._generator)
    assert lm.resampler.log_ratio(chosen).mean() > lm.resampler.log_ratio(candidates).mean()


def test_resampled_synthesizer_samples_reproducibly_and_conditions_stay_exact(
        resampled, mixed_frame, mixed_metadata):
    resampled.reset_sampling()
    first = resampled.sample(120)
    resampled.reset_sampling()
    pd.testing.assert_frame_equal(first, resampled.sample(120))
    assert len(first) == 120 and list(first.columns) == list(MIXED_SDTYPES)
    conditioned = resampled.sample_from_conditions([Condition({'color': 'blue'}, num_rows=30)])
    assert len(conditioned) == 30 and (conditioned['color'] == 'blue').all()
    # Without resampling the same fit samples differently (one candidate, no choice).
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        plain = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(resampling_factor=1))
        plain.fit(mixed_frame)
    assert plain._model.resampler is None
    plain.reset_sampling()
    assert not plain.sample(120).equals(first)


def test_resampling_in_chunks_bounds_the_candidates_held(resampled, monkeypatch):
    lm = resampled._model
    drawn = []
    import tabgraa_sdv.model as model_module

    original = model_module.sample_tokens

    def spy(model, plan, n_rows, **kwargs):
        drawn.append(n_rows)
        return original(model, plan, n_rows, **kwargs)

    monkeypatch.setattr(model_module, 'sample_tokens', spy)
    monkeypatch.setattr(lm, 'sample_batch_size', 50)
    assert len(resampled.sample(120)) == 120
    assert drawn == [150, 150, 60]  # factor 3 x chunks of 50, 50 and 20 rows


def test_resampler_holds_a_classifier_not_rows(resampled, mixed_frame, tmp_path):
    resampler = resampled._model.resampler
    held = [v for v in vars(resampler).values() if isinstance(v, np.ndarray)]
    assert held == []
    assert resampled.get_parameters()['resampling_factor'] == 3
    check_save_load_samples_the_same(resampled, tmp_path / 'resampled.pkl', 50)


def test_a_model_pickled_before_resampling_existed_still_samples(fitted):
    state, model_state = dict(fitted.__getstate__()), fitted._model.__getstate__()
    del state['resampling_factor'], model_state['resampler'], model_state['resampling_factor']
    old = TabGRAASynthesizer.__new__(TabGRAASynthesizer)  # as pickled by an earlier version
    old.__setstate__(state)
    old._model = type(fitted._model).__new__(type(fitted._model))
    assert 'resampling_factor' in fitted.__dict__  # the shared fixture is untouched
    old._model.__setstate__(model_state)
    assert old._model.resampler is None and old.get_parameters()['resampling_factor'] == 1
    old.reset_sampling()
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(old.sample(40), fitted.sample(40))


def test_resampling_is_off_by_default(fitted):
    assert fitted.get_parameters()['resampling_factor'] == 1
    assert fitted._model.resampler is None


def test_too_few_rows_sample_without_resampling_and_say_so(mixed_metadata):
    from conftest import make_mixed_frame

    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(epochs=1,
                                                                   resampling_factor=4))
    with pytest.warns(UserWarning, match='too few to train the resampling classifier'):
        synthesizer.fit(make_mixed_frame(8))
    assert synthesizer._model.resampler is None and len(synthesizer.sample(5)) == 5
