"""The shared metrics on tables whose answer is known: a fresh draw from the real rows'
distribution, copies of the training rows, a shifted table, a collapsed table."""

import numpy as np
import pandas as pd
import pytest

from tabgraa_sdv.metrics import evaluate


def draw(n, seed, shift=0.0):
    """Two correlated numbers, a category that depends on them, a binary and a numeric target."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, n)
    x2 = 0.8 * x1 + rng.normal(0.0, 0.6, n)
    colour = np.where(x1 + rng.normal(0.0, 0.5, n) > 0, 'red', 'blue')
    label = np.where(x1 - x2 + rng.normal(0.0, 0.3, n) > 0, 'yes', 'no')
    amount = 2.0 * x1 - x2 + rng.normal(0.0, 0.2, n)
    return pd.DataFrame({'x1': x1, 'x2': x2, 'colour': colour, 'label': label, 'amount': amount})


@pytest.fixture(scope='module')
def real():
    return draw(400, 0), draw(400, 1)


def scores(real, synthetic, metrics, target='label', task='classification'):
    train, test = real
    return evaluate(train, test, synthetic, target=target, task=task, metrics=metrics)


def test_evaluate_is_reproducible_and_leaves_numpys_global_stream_alone(real):
    synthetic = draw(400, 2)
    np.random.seed(1)
    first = scores(real, synthetic, ('logistic_detection', 'tree_detection_auc'))
    after_first = np.random.random()
    np.random.seed(2)
    second = scores(real, synthetic, ('logistic_detection', 'tree_detection_auc'))
    assert first == second  # SDMetrics' unseeded folds no longer move the score
    np.random.seed(1)
    assert np.random.random() == after_first  # the caller's stream was restored


def test_a_fresh_draw_is_hard_to_detect_and_a_shifted_one_is_easy(real):
    fresh = scores(real, draw(400, 2), ('tree_detection_auc', 'logistic_detection'))
    shifted = scores(real, draw(400, 2, shift=3.0), ('tree_detection_auc', 'logistic_detection'))
    assert fresh['tree_detection_auc'] < 0.6 and shifted['tree_detection_auc'] > 0.95
    assert fresh['logistic_detection'] > 0.7 and shifted['logistic_detection'] < 0.2


def test_copies_of_training_rows_are_caught_by_dcr_share_and_the_attack(real):
    copies = scores(real, real[0], ('dcr_share', 'mia_auc'))
    fresh = scores(real, draw(400, 2), ('dcr_share', 'mia_auc'))
    assert copies == {'dcr_share': 1.0, 'mia_auc': 1.0}
    assert abs(fresh['dcr_share'] - 0.5) < 0.08 and abs(fresh['mia_auc'] - 0.5) < 0.08


def test_tstr_follows_the_label_signal(real):
    fresh = scores(real, draw(400, 2), ('tstr_score',))['tstr_score']
    shuffled = draw(400, 2)
    shuffled['label'] = shuffled['label'].sample(frac=1, random_state=0).to_numpy()
    one_class = draw(400, 2).assign(label='yes')
    assert fresh > 0.85
    assert abs(scores(real, shuffled, ('tstr_score',))['tstr_score'] - 0.5) < 0.1
    assert scores(real, one_class, ('tstr_score',))['tstr_score'] == 0.5


def test_tstr_is_r2_for_a_regression_target(real):
    fresh = scores(real, draw(400, 2), ('tstr_score',), target='amount', task='regression')
    noise = draw(400, 2).assign(amount=np.random.default_rng(0).normal(size=400))
    assert fresh['tstr_score'] > 0.8
    assert scores(real, noise, ('tstr_score',), 'amount', 'regression')['tstr_score'] < 0.05


def test_alpha_precision_and_beta_recall_see_a_collapsed_table(real):
    fresh = scores(real, draw(400, 2), ('alpha_precision', 'beta_recall'))
    collapsed = scores(real, pd.concat([draw(400, 2).iloc[:1]] * 400, ignore_index=True),
                       ('alpha_precision', 'beta_recall'))
    shifted = scores(real, draw(400, 2, shift=3.0), ('alpha_precision',))
    assert fresh['alpha_precision'] > 0.9 and fresh['beta_recall'] > 0.4
    assert shifted['alpha_precision'] < 0.3  # rows outside the real support
    assert collapsed['beta_recall'] < 0.05  # one row covers almost none of the real ones


def test_quality_real_bins_ignores_one_outlier_that_moves_the_reports_bins(real):
    """SDMetrics' report bins the synthetic numbers on their own range: one far value shifts
    every synthetic bin of x1 and the colour x x1 pair scores low. quality_real_bins bins on the
    real column, so the same table scores as before; breaking the pair's dependence lowers it.
    (One number and two categories: a pair of numbers is scored by Pearson correlation, which
    an outlier does move.)"""
    columns = ['x1', 'colour', 'label']
    real = tuple(frame[columns] for frame in real)
    fresh = draw(400, 2)[columns]
    outlier = fresh.copy()
    outlier.loc[0, 'x1'] = fresh['x1'].min() - 2.5 * np.ptp(fresh['x1'])
    metrics = ('quality_score', 'quality_real_bins')
    base, moved = scores(real, fresh, metrics), scores(real, outlier, metrics)
    assert moved['quality_score'] < base['quality_score'] - 0.02
    assert moved['quality_real_bins'] == pytest.approx(base['quality_real_bins'], abs=0.005)
    broken = fresh.assign(colour=fresh['colour'].sample(frac=1, random_state=0).to_numpy())
    assert scores(real, broken, metrics)['quality_real_bins'] < base['quality_real_bins'] - 0.02
    assert base['quality_real_bins'] <= 1.0


def test_quality_real_bins_bins_a_datetime_column_as_a_number():
    def table(n, seed):
        rng = np.random.default_rng(seed)
        days = rng.integers(0, 365, n)
        when = (pd.Timestamp('2024-01-01') + pd.to_timedelta(days, 'D')).strftime('%Y-%m-%d')
        return pd.DataFrame({'when': when, 'late': np.where(days > 180, 'yes', 'no')})
    metadata = {'columns': {'when': {'sdtype': 'datetime', 'datetime_format': '%Y-%m-%d'},
                            'late': {'sdtype': 'categorical'}}}
    out = evaluate(table(300, 0), table(300, 1), table(300, 2), metadata=metadata,
                   metrics=('quality_score', 'quality_real_bins'))
    assert 0.8 < out['quality_real_bins'] <= 1.0
    # one date far past the real range: the report's own bins move, the real bins do not
    far = table(300, 2)
    far.loc[0, 'when'] = '2030-06-01'
    moved = evaluate(table(300, 0), table(300, 1), far, metadata=metadata,
                     metrics=('quality_score', 'quality_real_bins'))
    assert moved['quality_score'] < out['quality_score'] - 0.02
    assert moved['quality_real_bins'] == pytest.approx(out['quality_real_bins'], abs=0.01)
