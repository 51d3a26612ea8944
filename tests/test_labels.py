"""Label columns (labels.py, ``label_columns`` of the synthesizer)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import MIXED_SDTYPES, check_save_load_samples_the_same, tiny_kwargs
from sdv.sampling import Condition
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from tabgraa_sdv import TabGRAASynthesizer
from tabgraa_sdv.codec import ColumnarCodec
from tabgraa_sdv.labels import LabelModel


def noisy_label_table(n_rows=4000, seed=0):
    """``y`` is 'yes' with probability 0.2 where ``x < 50`` and 0.8 where ``x >= 50``."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100, n_rows)
    y = np.where(rng.random(n_rows) < np.where(x < 50, 0.2, 0.8), 'yes', 'no')
    return pd.DataFrame({'x': x, 'colour': rng.choice(['red', 'blue'], n_rows), 'y': y})


def record_fit_sizes(monkeypatch, estimator):
    """A list that gets the row count of every ``estimator.fit`` call from now on."""
    seen, original = [], estimator.fit

    def spy(self, X, y):
        seen.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(estimator, 'fit', spy)
    return seen


@pytest.fixture(scope='module')
def labelled():
    table = noisy_label_table()
    codec = ColumnarCodec().fit(table)
    tokens = codec.encode(table)
    return table, codec, tokens, LabelModel(codec, ['y'], seed=0).fit(tokens)


def test_probabilities_estimate_the_conditional_not_a_sharpened_one(labelled):
    table, codec, tokens, model = labelled
    p, codes = model.probabilities(tokens, 0)
    yes = list(codec.columns[2].values).index('yes')
    p_yes = p[:, list(codes).index(yes)]
    low = table['x'].to_numpy() < 50
    # Calibrated: the mean estimate in each half is the true 0.2 / 0.8, and the estimate
    # of each row is near it (a bootstrap's overconfident fits push rows towards 0 and 1).
    assert abs(p_yes[low].mean() - 0.2) < 0.03 and abs(p_yes[~low].mean() - 0.8) < 0.03
    assert np.abs(p_yes - np.where(low, 0.2, 0.8)).mean() < 0.08
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_redraw_samples_the_label_from_the_conditional_and_nothing_else(labelled):
    table, codec, tokens, model = labelled
    label_slot = codec.slots_of(['y'])[0]
    scrambled = tokens.copy()
    scrambled[:, label_slot] = codec.slot_start[label_slot]  # every row says the first value
    redrawn = model.redraw(scrambled, torch.Generator().manual_seed(0))
    others = np.arange(codec.n_slots) != label_slot
    np.testing.assert_array_equal(redrawn[:, others], scrambled[:, others])
    decoded = codec.decode(redrawn)
    low = (decoded['x'] < 50).to_numpy()
    p, codes = model.probabilities(scrambled, 0)
    p_yes = p[:, list(codes).index(list(codec.columns[2].values).index('yes'))]
    # Sampled, not the argmax: each half's share of 'yes' is its mean estimate (about 0.2
    # and 0.8), up to three standard errors of ~2,000 draws.
    for half in (low, ~low):
        assert abs((decoded.loc[half, 'y'] == 'yes').mean() - p_yes[half].mean()) < 0.03
    # One uniform per row from the generator: the same seed draws the same labels.
    np.testing.assert_array_equal(
        redrawn, model.redraw(scrambled, torch.Generator().manual_seed(0)))
    # A label given as a condition (its slot fixed) is kept.
    np.testing.assert_array_equal(
        model.redraw(scrambled, torch.Generator().manual_seed(1), fixed_slots=[label_slot]),
        scrambled)


def test_a_label_with_one_value_in_the_training_rows_stays_that_value():
    table = noisy_label_table(200).assign(y='yes')
    codec = ColumnarCodec().fit(table)
    tokens = codec.encode(table)
    model = LabelModel(codec, ['y']).fit(tokens)
    assert (codec.decode(model.redraw(tokens, torch.Generator().manual_seed(0)))['y']
            == 'yes').all()


def test_label_model_rejects_a_column_it_does_not_write_and_a_bootstrapped_number():
    table = noisy_label_table(1000).assign(wide=np.random.default_rng(0).integers(0, 10**6, 1000))
    codec = ColumnarCodec().fit(table)
    with pytest.raises(ValueError, match="names 'nope'"):
        LabelModel(codec, ['nope'])
    with pytest.raises(ValueError, match="column 'wide' is a number written in several"):
        LabelModel(codec, ['wide'], bootstrap=True)


def noisy_number_table(n_rows=6000, seed=0):
    """``y = 10,000 + 100 x + noise`` with the noise's sd ``20 + 4 x`` (heteroscedastic), and a
    tenth of ``y`` missing; ``y`` spans thousands of grid points, so it takes several tokens."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100, n_rows)
    y = np.rint(10_000 + 100 * x + rng.normal(0, 20 + 4 * x)).astype(float)
    y[rng.random(n_rows) < 0.1] = np.nan
    return pd.DataFrame({'x': x, 'colour': rng.choice(['red', 'blue'], n_rows), 'y': y})


@pytest.fixture(scope='module')
def numeric_labelled():
    table = noisy_number_table()
    codec = ColumnarCodec().fit(table)
    tokens = codec.encode(table)
    assert len(codec.slots_of(['y'])) > 1
    return table, codec, tokens, LabelModel(codec, ['y'], seed=0).fit(tokens)


def test_a_number_is_redrawn_from_its_conditional_mean_and_spread(numeric_labelled):
    table, codec, tokens, model = numeric_labelled
    slots = codec.slots_of(['y'])
    scrambled = tokens.copy()
    present = ~table['y'].isna().to_numpy()
    # Every present value becomes the column's smallest: the redraw must not lean on it.
    scrambled[np.ix_(present, slots)] = codec.encode(table.assign(y=table['y'].min()))[
        np.ix_(present, slots)]
    redrawn = model.redraw(scrambled, torch.Generator().manual_seed(0))
    others = ~np.isin(np.arange(codec.n_slots), slots)
    np.testing.assert_array_equal(redrawn[:, others], scrambled[:, others])
    y = codec.decode(redrawn)['y'].to_numpy()
    # A missing value stays missing, and only it.
    np.testing.assert_array_equal(np.isnan(y), ~present)
    x = table['x'].to_numpy()
    for lo, hi in ((0, 20), (40, 60), (80, 100)):
        rows = present & (x >= lo) & (x < hi)
        mean = 10_000 + 100 * x[rows].mean()
        # Within the band the true spread is the noise's plus x's (100 per unit of x).
        spread = np.sqrt(np.mean((20 + 4 * x[rows]) ** 2) + 100**2 * x[rows].var())
        assert abs(y[rows].mean() - mean) < 0.1 * spread
        assert 0.8 * spread < y[rows].std() < 1.25 * spread
    # The residual, not just the prediction: at fixed x the spread grows with x (sd 20 + 4x).
    resid = y - (10_000 + 100 * x)
    low, high = present & (x < 20), present & (x >= 80)
    assert resid[high].std() > 2.5 * resid[low].std()


def test_a_number_label_is_kept_where_it_is_a_condition_and_is_reproducible(numeric_labelled):
    table, codec, tokens, model = numeric_labelled
    slots = codec.slots_of(['y'])
    np.testing.assert_array_equal(
        model.redraw(tokens, torch.Generator().manual_seed(0), fixed_slots=slots), tokens)
    first = model.redraw(tokens, torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(first, model.redraw(tokens, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="'y' is a number, regressed"):
        model.probabilities(tokens, 0)


def test_a_number_label_holds_quantiles_not_rows_and_fits_on_folds(numeric_labelled,
                                                                   monkeypatch):
    table, codec, tokens, model = numeric_labelled
    numeric = model.models[0]
    assert len(numeric.fits) == 5
    # Its arrays are the residual quantiles of 20 bands and the band edges: sizes of their own,
    # whatever the number of rows.
    assert numeric.residuals.shape == (20, 201) and numeric.band_edges.shape == (19,)
    seen = record_fit_sizes(monkeypatch, HistGradientBoostingRegressor)
    LabelModel(codec, ['y'], n_models=2).fit(tokens)
    LabelModel(codec, ['y'], n_models=1).fit(tokens)
    n = int((~table['y'].isna()).sum())
    assert seen == [n // 2, n - n // 2, n - n // 2] or seen == [n - n // 2, n // 2, n // 2]


def test_a_label_model_pickled_before_number_labels_existed_redraws_as_before(labelled):
    table, codec, tokens, model = labelled
    state = dict(vars(model))
    del state['numeric']
    old = LabelModel.__new__(LabelModel)
    old.__setstate__(state)
    np.testing.assert_array_equal(old.redraw(tokens, torch.Generator().manual_seed(0)),
                                  model.redraw(tokens, torch.Generator().manual_seed(0)))


@pytest.fixture(scope='module')
def label_synthesizer(mixed_frame, mixed_metadata):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer = TabGRAASynthesizer(
            mixed_metadata, **tiny_kwargs(label_columns=['color'], resampling_factor=2))
        synthesizer.fit(mixed_frame)
    return synthesizer


def test_synthesizer_with_label_columns_samples_reproducibly_and_keeps_conditions(
        label_synthesizer, tmp_path):
    assert label_synthesizer.get_parameters()['label_columns'] == ['color']
    assert label_synthesizer._model.label_model.columns == ['color']
    label_synthesizer.reset_sampling()
    first = label_synthesizer.sample(150)
    label_synthesizer.reset_sampling()
    pd.testing.assert_frame_equal(first, label_synthesizer.sample(150))
    assert list(first.columns) == list(MIXED_SDTYPES)
    conditioned = label_synthesizer.sample_from_conditions(
        [Condition({'color': 'green'}, num_rows=40)])
    assert len(conditioned) == 40 and (conditioned['color'] == 'green').all()
    check_save_load_samples_the_same(label_synthesizer, tmp_path / 'labels.pkl', 50)


def test_label_columns_change_only_the_labels_of_the_same_language_model_rows(
        label_synthesizer):
    lm = label_synthesizer._model
    lm.set_random_state(3)
    rows = lm.sample_token_rows(200)
    redrawn = lm.relabel(rows, torch.Generator().manual_seed(0))
    slot = lm.codec.slots_of(['color'])[0]
    others = np.arange(lm.codec.n_slots) != slot
    np.testing.assert_array_equal(redrawn[:, others], rows[:, others])
    assert (redrawn[:, slot] != rows[:, slot]).any()


def test_label_model_holds_classifiers_not_rows(label_synthesizer, mixed_frame):
    model = label_synthesizer._model.label_model
    arrays = [v for v in vars(model).values() if isinstance(v, np.ndarray)]
    assert arrays == []
    fits, codes = model.models[0]
    assert len(fits) == 5 and len(codes) <= 4  # the colours and the missing value


def test_a_model_pickled_before_label_columns_existed_samples_as_without_them(fitted):
    state, model_state = dict(fitted.__getstate__()), fitted._model.__getstate__()
    del state['label_columns'], model_state['label_model'], model_state['label_columns']
    old = TabGRAASynthesizer.__new__(TabGRAASynthesizer)
    old.__setstate__(state)
    old._model = type(fitted._model).__new__(type(fitted._model))
    old._model.__setstate__(model_state)
    assert old.get_parameters()['label_columns'] is None and old._model.label_model is None
    old.reset_sampling()
    fitted.reset_sampling()
    pd.testing.assert_frame_equal(old.sample(40), fitted.sample(40))


def test_a_number_label_column_samples_reproducibly_within_its_range(
        mixed_frame, mixed_metadata):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer = TabGRAASynthesizer(
            mixed_metadata, **tiny_kwargs(label_columns=['population']))
        synthesizer.fit(mixed_frame)
    synthesizer.reset_sampling()
    first = synthesizer.sample(200)
    synthesizer.reset_sampling()
    pd.testing.assert_frame_equal(first, synthesizer.sample(200))
    population = first['population']
    assert population.between(mixed_frame['population'].min(),
                              mixed_frame['population'].max()).all()
    # The regressor's residuals carry the spread: population is independent of the others, so
    # its redrawn values span most of the range rather than sitting at a prediction.
    assert population.std() > 0.5 * mixed_frame['population'].std()


def test_each_fit_learns_from_a_subsample_a_bootstrap_or_every_row(labelled, monkeypatch):
    table, codec, tokens, _ = labelled
    seen = record_fit_sizes(monkeypatch, HistGradientBoostingClassifier)
    LabelModel(codec, ['y'], n_models=2).fit(tokens)
    LabelModel(codec, ['y'], n_models=2, bootstrap=True).fit(tokens)
    LabelModel(codec, ['y'], n_models=1).fit(tokens)
    assert seen == [3200, 3200, 4000, 4000, 4000]  # 80% without replacement; n with; all


def test_boosting_settings_reach_every_fit_and_unknown_ones_are_named(labelled,
                                                                      numeric_labelled):
    _, codec, tokens, _ = labelled
    model = LabelModel(codec, ['y'], n_models=2, boosting={'learning_rate': 0.05}).fit(tokens)
    fits, _ = model.models[0]
    assert [fit.learning_rate for fit in fits] == [0.05, 0.05]
    assert [fit.n_iter_no_change for fit in fits] == [20, 20]  # the other defaults stay
    _, codec, tokens, _ = numeric_labelled
    model = LabelModel(codec, ['y'], n_models=2, boosting={'max_leaf_nodes': 7}).fit(tokens)
    assert [fit.max_leaf_nodes for fit in model.models[0].fits] == [7, 7]
    with pytest.raises(ValueError, match=r"boosting: \['learning_rat'\] are not settings"):
        LabelModel(codec, ['y'], boosting={'learning_rat': 0.05})
    with pytest.raises(ValueError, match='the seed comes from seed'):
        LabelModel(codec, ['y'], boosting={'random_state': 3})
    with pytest.raises(ValueError, match='categorical columns from the codec'):
        LabelModel(codec, ['y'], boosting={'categorical_features': None})
    with pytest.raises(ValueError, match='boosting must be a dict'):
        LabelModel(codec, ['y'], boosting=0.05)
