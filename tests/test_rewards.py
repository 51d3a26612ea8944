"""Rewards (rewards.py): the reward transforms of P(real|x), DCR, token features, the two-sample
classifier and the check of a user reward's output."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tabgraa_sdv import rewards as R
from tabgraa_sdv.codec import CategoricalColumn, ColumnarCodec, NumericColumn

P = np.linspace(0.0, 1.0, 101)


# ------------------------------------------------------------------- transforms of P(real|x)
def test_classifier_reward_is_in_half_one_and_peaks_at_one_half():
    r = R.classifier_reward(P)
    assert r.min() >= 0.5 and r.max() <= 1.0
    assert r[np.argmax(r)] == pytest.approx(1.0)
    assert P[np.argmax(r)] == pytest.approx(0.5)
    # Symmetric: a row that looks fake and a row that looks like a copy are penalised alike.
    np.testing.assert_allclose(r, r[::-1])
    assert R.classifier_reward(np.array([0.0, 1.0])).tolist() == [0.5, 0.5]
    # Strictly increasing up to 0.5, strictly decreasing after it.
    assert (np.diff(r[:51]) > 0).all() and (np.diff(r[50:]) < 0).all()


def test_realism_reward_is_p_real():
    np.testing.assert_array_equal(R.realism_reward(P), P)


def test_logodds_reward_is_finite_clipped_monotone_and_zero_at_one_half():
    r = R.logodds_reward(P)
    assert np.isfinite(r).all()
    assert (np.diff(r) > 0).all()
    assert R.logodds_reward(np.array([0.5]))[0] == pytest.approx(0.0, abs=1e-12)
    # Clipped at eps = 1e-4: the ends are +-log((1 - eps) / eps), antisymmetric.
    bound = np.log((1 - 1e-4) / 1e-4)
    assert r[0] == pytest.approx(-bound) and r[-1] == pytest.approx(bound)
    assert R.logodds_reward(np.array([0.8]))[0] == pytest.approx(np.log(4.0))


# ------------------------------------------------------------------------------------ DCR
def test_distance_to_closest_on_a_hand_made_example():
    reference = np.array([[0.0, 0.0], [10.0, 10.0], [4.0, -1.0]])
    query = np.array([[1.0, 2.0], [9.0, 9.0], [0.0, 0.0], [4.0, 1.0], [6.0, 6.0]])
    # L1: (1,2)->(0,0)=3; (9,9)->(10,10)=2; copy=0; (4,1)->(4,-1)=2; (6,6)->(10,10)=8 vs
    # (4,-1)=9 vs (0,0)=12.
    np.testing.assert_allclose(R.distance_to_closest(reference, query), [3, 2, 0, 2, 8])


def test_dcr_reward_zero_for_copies_one_from_the_median_on():
    distances = np.array([0.0, 1.0, 2.0, 3.0, 4.0])  # median 2
    r = R.dcr_reward(distances)
    np.testing.assert_allclose(r, [0.0, 0.5, 1.0, 1.0, 1.0])
    assert r.min() >= 0 and r.max() <= 1


def test_dcr_reward_when_most_rows_are_copies():
    r = R.dcr_reward(np.array([0.0, 0.0, 0.0, 0.5, 7.0]))  # median 0: copies 0, others 1
    np.testing.assert_array_equal(r, [0.0, 0.0, 0.0, 1.0, 1.0])


def test_dcr_reward_of_random_distances_is_in_unit_interval():
    rng = np.random.default_rng(0)
    r = R.dcr_reward(rng.exponential(1.0, 1000))
    assert r.min() >= 0 and r.max() <= 1
    assert np.mean(r == 1.0) == pytest.approx(0.5, abs=0.01)  # at/after the median


# ------------------------------------------------------------------------- token features
@pytest.fixture(scope='module')
def feature_frame():
    rng = np.random.default_rng(3)
    n = 400
    wide = np.round(rng.lognormal(4.0, 2.0, n), 2)
    return pd.DataFrame({
        'small': rng.integers(0, 20, n),  # one token per grid point
        'wide': np.where(rng.random(n) < 0.15, np.nan, wide),  # bins + offset digits, NaN
        'color': rng.choice(np.array(['red', 'green', 'blue', None], dtype=object), n),
    })


@pytest.fixture(scope='module')
def feature_codec(feature_frame):
    return ColumnarCodec(max_base=7).fit(feature_frame)


def test_feature_codec_has_offset_digits(feature_codec):
    """Guard: the 'wide' column really goes through bins and offsets."""
    wide = feature_codec.columns[1]
    assert isinstance(wide, NumericColumn) and wide.n_offset >= 1 and wide.has_nan


def test_token_features_give_grid_positions_nan_and_codes(feature_codec, feature_frame):
    features = R.TokenFeatures(feature_codec)
    X = features.transform(feature_codec.encode(feature_frame))
    assert X.shape == (len(feature_frame), 3)
    assert features.categorical.tolist() == [False, False, True]
    for j, name in enumerate(feature_frame.columns):
        column, values = feature_codec.columns[j], feature_frame[name]
        if isinstance(column, NumericColumn):
            nan = values.isna().to_numpy()
            np.testing.assert_array_equal(np.isnan(X[:, j]), nan)  # missing -> NaN
            # exactly the column's grid position, so the order of the values is kept
            np.testing.assert_array_equal(X[~nan, j], column.to_grid(values[~nan]))
            order = np.argsort(values[~nan].to_numpy(), kind='stable')
            assert (np.diff(X[~nan, j][order]) >= 0).all()
            distinct = np.unique(values[~nan])
            grid = column.to_grid(pd.Series(distinct))
            assert (np.diff(grid) > 0).all()  # distinct values -> distinct, ordered positions
        else:
            assert isinstance(column, CategoricalColumn)
            np.testing.assert_array_equal(X[:, j], column.encode(values)[:, 0])


def test_scaled_onehot_ranges_and_missing(feature_codec, feature_frame):
    features = R.TokenFeatures(feature_codec)
    X = features.transform(feature_codec.encode(feature_frame))
    Z = features.scaled_onehot(X, X)
    n_colors = len(feature_codec.columns[2].values)
    assert Z.shape == (len(X), 2 + n_colors)
    assert Z[:, 0].min() == 0 and Z[:, 0].max() == 1
    nan = np.isnan(X[:, 1])
    assert (Z[nan, 1] == -1).all() and Z[~nan, 1].min() >= 0 and Z[~nan, 1].max() <= 1
    np.testing.assert_array_equal(Z[:, 2:].sum(1), 1)


def test_wide_categorical_is_not_passed_to_the_classifier_as_categorical():
    """HistGradientBoosting refuses categorical features of more than 255 categories; such a
    column reaches the classifiers as an ordinal code."""
    frame = pd.DataFrame({'x': np.arange(400) % 7, 'city': [f'c{i:03d}' for i in range(400)]})
    features = R.TokenFeatures(ColumnarCodec().fit(frame))
    assert features.categorical.tolist() == [False, True]
    assert features.classifier_categorical.tolist() == [False, False]


# ---------------------------------------------------------------- two-sample classifier
def _fresh_auc(classifier, real, synthetic):
    X = np.concatenate([real, synthetic])
    y = np.concatenate([np.ones(len(real)), np.zeros(len(synthetic))])
    return roc_auc_score(y, classifier.predict_proba(X)[:, 1])


def test_two_sample_classifier_separates_different_samples():
    rng = np.random.default_rng(0)
    categorical = np.array([False, False, True])

    def draw(shift, n):
        return np.column_stack([rng.normal(shift, 1, n), rng.normal(0, 1, n),
                                rng.integers(0, 4, n)]).astype(float)

    classifier = R.two_sample_classifier(draw(0, 600), draw(3, 600), categorical)
    auc = _fresh_auc(classifier, draw(0, 500), draw(3, 500))
    assert auc > 0.9
    assert classifier.predict_proba(draw(0, 200))[:, 1].mean() > 0.7  # real rows look real


def test_two_sample_classifier_is_near_chance_on_one_distribution():
    rng = np.random.default_rng(1)
    categorical = np.array([False, True])

    def draw(n):
        return np.column_stack([rng.normal(0, 1, n), rng.integers(0, 4, n)]).astype(float)

    classifier = R.two_sample_classifier(draw(800), draw(800), categorical)
    auc = _fresh_auc(classifier, draw(1000), draw(1000))
    assert abs(auc - 0.5) < 0.06


def test_two_sample_classifier_balances_the_classes():
    rng = np.random.default_rng(2)
    real, synthetic = rng.normal(0, 1, (900, 1)), rng.normal(0, 1, (100, 1))
    classifier = R.two_sample_classifier(real, synthetic, np.array([False]))
    # Trained on 100 vs 100 rows: no prior towards the bigger class.
    assert abs(classifier.predict_proba(rng.normal(0, 1, (2000, 1)))[:, 1].mean() - 0.5) < 0.1


def test_two_sample_classifier_settings_can_be_overridden_and_default_otherwise():
    rng = np.random.default_rng(3)
    real, synthetic = rng.normal(0, 1, (300, 2)), rng.normal(1, 1, (300, 2))
    default = R.two_sample_classifier(real, synthetic, np.array([False, False]), seed=4)
    regularised = R.two_sample_classifier(real, synthetic, np.array([False, False]), seed=4,
                                          min_samples_leaf=100, max_iter=5)
    assert (default.min_samples_leaf, default.max_iter, default.random_state) == (20, 200, 4)
    assert (regularised.min_samples_leaf, regularised.max_iter) == (100, 5)
    assert regularised.random_state == 4 and regularised.n_iter_ <= 5


# ----------------------------------------------------------------- user reward's output
def test_validate_reward_values_accepts_lists_and_arrays():
    out = R.validate_reward_values([1, 2.5, -3], 3)
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.5, -3.0]
    np.testing.assert_array_equal(R.validate_reward_values(np.ones((4, 1)), 4), np.ones(4))
    np.testing.assert_array_equal(R.validate_reward_values(pd.Series([0.1, 0.2]), 2),
                                  [0.1, 0.2])


@pytest.mark.parametrize('values, n_rows, match', [
    ([1.0, 2.0], 3, r'returned 2 values for 3 synthetic rows'),
    (np.ones(5), 4, r'one value per row'),
    ([1.0, np.nan, 2.0], 3, r'NaN or infinite'),
    ([1.0, np.inf], 2, r'NaN or infinite'),
    ([-np.inf], 1, r'NaN or infinite'),
    (['a', 'b'], 2, r'array of floats, got list'),
    ({'a': 1.0}, 1, r'array of floats, got dict'),
    (object(), 1, r'array of floats, got object'),
])
def test_validate_reward_values_raises_a_clear_value_error(values, n_rows, match):
    with pytest.raises(ValueError, match=match):
        R.validate_reward_values(values, n_rows)


def test_two_sample_classifier_fits_with_a_column_missing_in_every_row():
    from tabgraa_sdv.rewards import two_sample_classifier

    rng = np.random.default_rng(0)
    real = np.c_[rng.normal(0, 1, 200), np.full(200, np.nan)]
    synthetic = np.c_[rng.normal(1, 1, 200), np.full(200, np.nan)]
    classifier = two_sample_classifier(real, synthetic, np.array([False, False]))
    p_real = classifier.predict_proba(np.c_[[-2.0, 3.0], [np.nan, np.nan]])[:, 1]
    assert p_real[0] > 0.5 > p_real[1]


# ---------------------------------------------------------------------- histogram reward
def test_histogram_reward_is_zero_when_the_pool_has_the_data_frequencies():
    rng = np.random.default_rng(0)
    real = np.column_stack([rng.normal(size=500), rng.integers(0, 4, 500)])
    categorical = np.array([False, True])
    np.testing.assert_allclose(R.histogram_reward(real, real.copy(), categorical), 0.0,
                               atol=1e-12)


def test_histogram_reward_lowers_an_over_represented_category():
    real = np.repeat([0.0, 1.0], [500, 500])[:, None]       # 50 / 50
    pool = np.repeat([0.0, 1.0], [800, 200])[:, None]       # the model makes 0 too often
    r = R.histogram_reward(real, pool, np.array([True]), alpha=0.0)
    np.testing.assert_allclose(r[pool[:, 0] == 0], np.log(0.5 / 0.8))
    np.testing.assert_allclose(r[pool[:, 0] == 1], np.log(0.5 / 0.2))


def test_histogram_reward_lowers_an_over_represented_numeric_range_and_missing_values():
    rng = np.random.default_rng(1)
    real = rng.uniform(0, 1, 2000)
    real[:200] = np.nan                                       # 10% missing
    pool = rng.uniform(0, 1, 2000) ** 2                       # mass pushed towards 0
    pool[:600] = np.nan                                       # 30% missing
    r = R.histogram_reward(real[:, None], pool[:, None], np.array([False]))
    assert np.isfinite(r).all()
    assert r[:600].max() < 0                                  # missing: too frequent
    low, high = pool < 0.1, pool > 0.9
    assert r[low].mean() < 0 < r[high].mean()


def test_histogram_reward_pair_term_rewards_the_data_dependence():
    """Same marginals, but the data's two binary columns are equal while the pool's are
    independent: only the pair term can see it, and it prefers rows with x == y."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, 4000)
    real = np.column_stack([x, x]).astype(float)
    pool = rng.integers(0, 2, (4000, 2)).astype(float)
    r = R.histogram_reward(real, pool, np.array([True, True]))
    equal = pool[:, 0] == pool[:, 1]
    assert r[equal].min() > 0 > r[~equal].max()


def test_histogram_reward_pair_term_of_a_number_and_a_category():
    """Unequal cell counts (a number's 6 + 2 pair bins, 3 categories): in the data the category
    follows the number's tercile, in the pool it is drawn apart from it. Rows that follow the
    data's rule must score higher, and the two marginals alone give them nothing."""
    rng = np.random.default_rng(6)
    n = 6000
    x = rng.uniform(0, 1, n)
    real = np.column_stack([x, np.minimum((x * 3).astype(int), 2)]).astype(float)
    px = rng.uniform(0, 1, n)
    pool = np.column_stack([px, rng.integers(0, 3, n)]).astype(float)
    categorical = np.array([False, True])
    r = R.histogram_reward(real, pool, categorical)
    follows = pool[:, 1] == np.minimum((pool[:, 0] * 3).astype(int), 2)
    assert r[follows].mean() > 1.0 > -1.0 > r[~follows].mean()
    marginals_only = R.histogram_reward(real, pool, categorical, max_pair_categories=2,
                                        pair_bins=6)  # the category leaves the pairs
    assert abs(marginals_only[follows].mean() - marginals_only[~follows].mean()) < 0.1


def test_histogram_reward_counts_the_model_on_model_X_when_given():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(600, 2))
    pool, other = rng.normal(0.5, 1, (300, 2)), rng.normal(0.5, 1, (900, 2))
    categorical = np.array([False, False])
    np.testing.assert_array_equal(R.histogram_reward(real, pool, categorical, model_X=pool),
                                  R.histogram_reward(real, pool, categorical))
    assert not np.allclose(R.histogram_reward(real, pool, categorical, model_X=other),
                           R.histogram_reward(real, pool, categorical))


def test_histogram_reward_skips_wide_categories_in_pairs_and_survives_an_all_missing_column():
    rng = np.random.default_rng(4)
    real = np.column_stack([rng.integers(0, 100, 1000), rng.integers(0, 3, 1000),
                            np.full(1000, np.nan)]).astype(float)
    pool = np.column_stack([rng.integers(0, 100, 500), rng.integers(0, 3, 500),
                            np.full(500, np.nan)]).astype(float)
    categorical = np.array([True, True, False])
    r = R.histogram_reward(real, pool, categorical)
    assert r.shape == (500,) and np.isfinite(r).all()
    # the 100-category column enters pairs only when allowed
    wide_in_pairs = R.histogram_reward(real, pool, categorical, max_pair_categories=100)
    assert not np.allclose(r, wide_in_pairs)


# ---------------------------------------------------------------------- held-out fidelity
def test_binned_fidelity_is_one_for_a_sample_of_the_same_rows_and_falls_with_a_shift():
    rng = np.random.default_rng(7)
    real = np.column_stack([rng.normal(size=3000), rng.integers(0, 3, 3000)]).astype(float)
    categorical = np.array([False, True])
    assert R.binned_fidelity(real, real, categorical) == pytest.approx((1.0, 1.0, 1.0))
    shifted = real.copy()
    shifted[:, 0] += 1.0  # a whole sd: many rows change bins
    columns, pairs, score = R.binned_fidelity(real, shifted, categorical)
    assert columns < 0.85 and pairs < 0.85 and score == pytest.approx((columns + pairs) / 2)
    # the category alone moved to code 0 in half its rows: the column term sees exactly that
    moved = real.copy()
    moved[:1500, 1] = 0
    expected = 1 - 0.5 * np.abs(np.bincount(real[:, 1].astype(int), minlength=3) / 3000
                                - np.bincount(moved[:, 1].astype(int), minlength=3) / 3000).sum()
    assert R.binned_fidelity(real, moved, categorical)[0] == pytest.approx((1 + expected) / 2)


def test_binned_fidelity_pair_term_alone_sees_a_lost_dependence():
    """Same marginals, but the pool's two binary columns are independent where the data's are
    equal: the column term stays near 1, the pair term falls to about 1/2."""
    rng = np.random.default_rng(8)
    x = rng.integers(0, 2, 4000)
    real = np.column_stack([x, x]).astype(float)
    pool = rng.integers(0, 2, (4000, 2)).astype(float)
    columns, pairs, _ = R.binned_fidelity(real, pool, np.array([True, True]))
    assert columns > 0.97 and pairs == pytest.approx(0.5, abs=0.03)
    # a one-column table has no pairs: its pair term is its column term
    one = R.binned_fidelity(real[:, :1], pool[:, :1], np.array([True]))
    assert one[1] == one[0] == one[2]
