"""Helpers of benchmark probes whose numbers docs/ quotes: the label draws of
benchmarks/label_draw_probe.py, the reliability measure of benchmarks/reward_noise_probe.py and
the quality parts of benchmarks/quality_noise_probe.py, the quality over several draws of
benchmarks/alignment.py, the column sets and halves of benchmarks/detection_probe.py, the
offset redraws of benchmarks/offset_smoothing_probe.py and the round copies of
benchmarks/round_holdout_probe.py."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'benchmarks'))

import alignment as alignment_benchmark  # noqa: E402
import detection_probe  # noqa: E402
import label_draw_probe  # noqa: E402
import offset_smoothing_probe  # noqa: E402
import quality_noise_probe  # noqa: E402
import reward_noise_probe  # noqa: E402


def test_systematic_draw_tracks_the_running_sum_of_p_in_sorted_order():
    rng = np.random.default_rng(0)
    p1 = rng.random(500)
    p = np.column_stack([1 - p1, p1])
    picks = label_draw_probe.draws(p, np.random.default_rng(1))
    order = np.argsort(p1, kind='stable')
    running = np.cumsum(picks['systematic'][order]) - np.cumsum(p1[order])
    assert np.abs(running).max() < 1
    assert set(np.unique(picks['systematic'])) <= {0, 1}
    np.testing.assert_array_equal(picks['argmax'], (p1 > 0.5).astype(int))


def test_both_random_draws_give_each_row_its_own_chance():
    p1 = np.linspace(0.05, 0.95, 40)
    p = np.column_stack([1 - p1, p1])
    n = 4000
    means = {draw: np.zeros(len(p1)) for draw in ('independent', 'systematic')}
    for seed in range(n):
        picks = label_draw_probe.draws(p, np.random.default_rng(seed))
        for draw in means:
            means[draw] += picks[draw] / n
    for draw, mean in means.items():
        # 4 standard errors of a mean of n Bernoulli draws
        assert np.all(np.abs(mean - p1) < 4 * np.sqrt(p1 * (1 - p1) / n)), draw


def test_the_fitted_temperature_recovers_the_one_the_labels_were_drawn_with():
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    p1 = rng.uniform(0.02, 0.98, 20000)
    p = np.column_stack([1 - p1, p1])
    np.testing.assert_allclose(label_draw_probe.with_temperature(p, 1.0), p, atol=1e-9)
    codes = np.array([0, 1])
    for true in (0.6, 1.0, 1.7):  # p_hat flatter than, equal to, sharper than the data
        labels = (rng.random(len(p1)) < label_draw_probe.with_temperature(p, true)[:, 1])
        fitted, loss = label_draw_probe.fitted_temperature(p, labels.astype(int), codes)
        assert abs(fitted - true) < 0.1 * true
        assert loss <= log_loss(labels, p, labels=codes)


def test_the_calibrated_draw_differs_from_the_independent_one_by_the_temperature_alone():
    p1 = np.linspace(0.05, 0.95, 500)
    p = np.column_stack([1 - p1, p1])
    same = label_draw_probe.draws(p, np.random.default_rng(3), temperature=1.0)
    np.testing.assert_array_equal(same['calibrated'], same['independent'])
    sharper = label_draw_probe.draws(p, np.random.default_rng(3), temperature=0.5)
    np.testing.assert_array_equal(sharper['independent'], same['independent'])
    # sharper: more of the likely class where p1 > 0.5, less where p1 < 0.5 (and some rows
    # do change, so a draw that ignored the temperature would fail here)
    assert not np.array_equal(sharper['calibrated'], same['independent'])
    assert sharper['calibrated'][p1 > 0.5].sum() >= same['independent'][p1 > 0.5].sum()
    assert sharper['calibrated'][p1 < 0.5].sum() <= same['independent'][p1 < 0.5].sum()


def test_rows_past_the_training_range_encode_at_its_ends():
    import pandas as pd

    from tabgraa_sdv.codec import ColumnarCodec

    train = pd.DataFrame({'x': [0.5, 1.0, 2.5, 4.0], 'c': ['a', 'b', 'a', 'b']})
    codec = ColumnarCodec().fit(train)
    rows = pd.DataFrame({'x': [-3.0, 2.5, 9.5], 'c': ['b', 'a', 'a']})
    with pytest.raises(ValueError, match='outside the range'):
        codec.encode(rows)
    decoded = codec.decode(label_draw_probe.encode_in_range(codec, train, rows))
    assert decoded['x'].tolist() == [0.5, 2.5, 4.0]
    assert decoded['c'].tolist() == ['b', 'a', 'a']
    assert rows['x'].tolist() == [-3.0, 2.5, 9.5]  # the caller's rows are left as they were


def test_detection_by_columns_finds_a_broken_dependence_no_single_column_shows():
    import pandas as pd
    rng = np.random.default_rng(0)

    def draw(dependent):
        x = rng.normal(size=3000)
        y = x + 0.1 * rng.normal(size=3000)
        # the same marginals either way; in the synthetic rows y no longer follows x
        return pd.DataFrame({'x': x, 'y': y if dependent else rng.permutation(y),
                             'z': rng.normal(size=3000)})

    real, synthetic = draw(True), draw(False)
    scores = detection_probe.detection_by_columns(real, synthetic, seed=0)
    assert list(scores) == ['all', 'only x', 'only y', 'only z',
                            'without x', 'without y', 'without z']
    assert scores['all'] > 0.9
    assert all(abs(scores[f'only {c}'] - 0.5) < 0.05 for c in 'xyz')
    assert abs(scores['without x'] - 0.5) < 0.05 and abs(scores['without y'] - 0.5) < 0.05
    assert scores['without z'] > 0.9


def test_holdout_halves_are_disjoint_equal_and_fixed_by_the_seed():
    rows = pd.DataFrame({'id': np.arange(101), 'x': np.arange(101) * 2.0})
    first, second = detection_probe.halves(rows, seed=3)
    assert len(first) == len(second) == 50
    assert not set(first['id']) & set(second['id'])
    pd.testing.assert_frame_equal(first, rows.set_index('id').loc[first['id']].reset_index())
    again, _ = detection_probe.halves(rows, seed=3)
    pd.testing.assert_frame_equal(first, again)
    other, _ = detection_probe.halves(rows, seed=4)
    assert set(other['id']) != set(first['id'])


def test_offset_redraws_keep_bins_or_top_digits_and_touch_nothing_else():
    from tabgraa_sdv.codec import ColumnarCodec
    rng = np.random.default_rng(0)
    data = pd.DataFrame({'x': np.round(rng.lognormal(size=3000), 4),
                         'c': rng.choice(['a', 'b'], size=3000)})
    codec = ColumnarCodec(max_base=16).fit(data)
    column = codec.columns[codec.column_names.index('x')]
    assert column.n_offset >= 2  # a top digit and finer ones to redraw
    sample = data.sample(1000, random_state=1).reset_index(drop=True)
    before = column.encode(sample['x'])
    redraw = offset_smoothing_probe.redraw_offsets
    assert redraw(codec, sample, 'as sampled', rng) is sample
    for variant, kept in (('uniform in bin', 1), ('top digit kept', 2)):
        out = redraw(codec, sample, variant, np.random.default_rng(2))
        after = column.encode(out['x'])  # raises if a value left the codec's grid
        np.testing.assert_array_equal(after[:, :kept], before[:, :kept])
        assert (after[:, kept:] != before[:, kept:]).any()
        pd.testing.assert_series_equal(out['c'], sample['c'])
    moved = column.encode(redraw(codec, sample, 'neighbour bin', np.random.default_rng(3))['x'])
    step = moved[:, 0] - before[:, 0]
    assert set(np.unique(step)) <= {-1, 0, 1} and 0.35 < (step != 0).mean() < 0.65
    with pytest.raises(ValueError, match='Unknown variant'):
        redraw(codec, sample, 'blurred', rng)


def test_reliability_of_identical_and_independent_rewards():
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    assert reward_noise_probe.reliability(a, 2 * a + 1) == (pytest.approx(1.0), 1.0)
    rho, same_half = reward_noise_probe.reliability(a, rng.normal(size=2000))
    assert abs(rho) < 0.1 and abs(same_half - 0.5) < 0.05


def test_quality_parts_average_to_the_scores_the_benchmarks_record():
    import pandas as pd

    from tabgraa_sdv.metrics import evaluate

    rng = np.random.default_rng(0)

    def table(n):
        x = rng.normal(size=n)
        return pd.DataFrame({'x': x, 'y': x + rng.normal(size=n),
                             'c': np.where(x + rng.normal(size=n) > 0, 'a', 'b')})

    real, synthetic = table(300), table(300)
    metadata = {'columns': {'x': {'sdtype': 'numerical'}, 'y': {'sdtype': 'numerical'},
                            'c': {'sdtype': 'categorical'}}}
    parts = quality_noise_probe.quality_scores(real, synthetic, metadata)
    recorded = evaluate(real, real, synthetic, metadata,
                        metrics=('quality_score', 'quality_real_bins'))
    assert parts['quality_score'] == pytest.approx(recorded['quality_score'])
    assert parts['quality_real_bins'] == pytest.approx(recorded['quality_real_bins'])
    assert parts['quality_score'] == pytest.approx(
        (parts['column_shapes'] + parts['pair_trends']) / 2)


def test_quality_over_draws_scores_the_first_sample_and_the_extra_ones():
    import pandas as pd

    from tabgraa_sdv.metrics import evaluate

    rng = np.random.default_rng(1)

    def table(n, shift=0.0):
        x = rng.normal(shift, 1.0, n)
        return pd.DataFrame({'x': x, 'c': np.where(x + rng.normal(size=n) > 0, 'a', 'b')})

    real = table(300)
    extra = [table(300, shift) for shift in (0.2, 0.5, 1.0)]

    class Sampler:
        def __init__(self):
            self.tables = iter(extra)

        def sample(self, n):
            return next(self.tables)

    metadata = {'columns': {'x': {'sdtype': 'numerical'}, 'c': {'sdtype': 'categorical'}}}
    names = ('quality_score', 'quality_real_bins')
    first = {'quality_score': 1.0, 'quality_real_bins': 0.5}
    out = alignment_benchmark.quality_over_draws(Sampler(), real, real, metadata, first,
                                                 draws=4, seed=0)
    scores = [first] + [evaluate(real, real, t, metadata, metrics=names) for t in extra]
    assert out['draws'] == 4
    for name in names:
        values = [score[name] for score in scores]
        assert out[f'{name}_draws'] == pytest.approx(np.mean(values), abs=1e-5)
        assert out[f'{name}_draws_sd'] == pytest.approx(np.std(values, ddof=1), abs=1e-5)


def test_every_rounds_policy_is_kept_and_the_kept_one_samples_as_the_fit_does(
        mixed_frame, mixed_metadata):
    """benchmarks/round_holdout_probe.py scores each round as if ``fit`` had kept it; that is
    only true if re-installing the kept round's copy gives the fitted synthesizer's sample."""
    import warnings

    import round_holdout_probe
    from conftest import tiny_kwargs

    from tabgraa_sdv import TabGRAASynthesizer

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
            rounds=2, pool_size=128, group_size=16, patience=5, resampling_factor=2,
            label_columns=['member'], alignment_learning_rate=1e-2))
        with round_holdout_probe.policy_every_round() as rounds:
            synthesizer.fit(mixed_frame)
        synthesizer.reset_sampling()
        fitted_sample = synthesizer.sample(200)
        history = synthesizer.get_alignment_history()
        assert sorted(rounds) == history['round'].tolist() == [0, 1, 2]
        assert all(len(pool) == 128 for _, pool in rounds.values())
        real_tokens = synthesizer._model.codec.encode(
            synthesizer._data_processor.transform(mixed_frame))
        samples = {}
        for round_, (policy, _) in rounds.items():
            round_holdout_probe.use_round(synthesizer, policy, real_tokens)
            samples[round_] = synthesizer.sample(200)
        kept = int(history.loc[history['kept'], 'round'].iloc[0])
        pd.testing.assert_frame_equal(samples[kept], fitted_sample)
        assert not samples[0].equals(samples[2])  # the copies are of different weights

        # The rule's output sample: label model and resampler fitted on the given rows only,
        # and the synthesizer's own put back afterwards.
        lm = synthesizer._model
        own = (lm.label_model, lm.resampler)
        seen = []
        fit_resampler = lm.fit_resampler
        lm.fit_resampler = lambda tokens: (seen.append(len(tokens)), fit_resampler(tokens))
        try:
            train_index = np.arange(0, len(real_tokens), 2)
            output = round_holdout_probe.output_for_rule(synthesizer, real_tokens, train_index,
                                                         64)
        finally:
            del lm.fit_resampler
        assert seen == [len(train_index)]
        assert output.shape == (64, real_tokens.shape[1])
        assert (lm.label_model, lm.resampler) == own
        pd.testing.assert_frame_equal(synthesizer.sample(200), samples[2])
    # the patch is undone on leaving the context
    from tabgraa_sdv.alignment import Aligner
    assert 'keeping' not in Aligner._evaluate.__qualname__


def test_resampler_variants_parse_apply_and_leave_the_synthesizer_as_it_was(
        mixed_frame, mixed_metadata):
    import warnings

    import resampler_holdout_probe as probe
    from conftest import tiny_kwargs

    from tabgraa_sdv import TabGRAASynthesizer, rewards

    assert probe.parse_variant('min_samples_leaf=100,l2_regularization=1.5') == {
        'min_samples_leaf': 100, 'l2_regularization': 1.5}
    with pytest.raises(ValueError, match='key=value'):
        probe.parse_variant('min_samples_leaf')
    real, model = np.random.default_rng(0).normal(size=(2, 200, 2))
    with probe.classifier_settings({'min_samples_leaf': 50}):
        assert rewards.two_sample_classifier(real, model, np.array([False, False])) \
            .min_samples_leaf == 50
    assert rewards.two_sample_classifier(real, model, np.array([False, False])) \
        .min_samples_leaf == 20

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
            resampling_factor=2, label_columns=['member']))
        synthesizer.fit(mixed_frame)
        lm = synthesizer._model
        own = (lm.label_model, lm.resampler)
        real_tokens = lm.codec.encode(synthesizer._data_processor.transform(mixed_frame))
        synthesizer.reset_sampling()
        as_fitted = synthesizer.sample(150)
        samples = {v: probe.sample_variant(synthesizer, v, real_tokens, 150) for v in
                   ('raw', 'labels', 'harness', 'min_samples_leaf=20', 'min_samples_leaf=80')}
        assert (lm.label_model, lm.resampler) == own
    pd.testing.assert_frame_equal(samples['harness'], as_fitted)
    # the default classifier trained again on the same rows is the harness's resampler
    pd.testing.assert_frame_equal(samples['min_samples_leaf=20'], as_fitted)
    for variant in ('raw', 'labels', 'min_samples_leaf=80'):
        assert not samples[variant].equals(as_fitted), variant


def test_finished_keys_are_the_current_revisions_cells(tmp_path):
    path = tmp_path / 'probe.csv'
    assert alignment_benchmark.finished_keys(path, ['dataset', 'seed'], 9) == set()
    pd.DataFrame({'dataset': ['magic', 'magic', 'adult'], 'seed': [0, 1, 0],
                  'code_revision': [8, 9, 9]}).to_csv(path, index=False)
    assert alignment_benchmark.finished_keys(path, ['dataset', 'seed'], 9) == {
        ('magic', 1), ('adult', 0)}
    assert alignment_benchmark.finished_keys(path, ['dataset', 'seed'], 8) == {('magic', 0)}
