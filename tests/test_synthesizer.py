"""TabGRAASynthesizer through SDV's public API: sampling, conditions, save/load, parameters,
constraints, and the transformer choices the codec relies on."""

import inspect

import numpy as np
import pandas as pd
import pytest
from rdt.transformers import FloatFormatter, UnixTimestampEncoder
from sdv.cag import FixedCombinations, Inequality
from sdv.errors import NotFittedError
from sdv.metadata import Metadata
from sdv.sampling import Condition
from sdv.single_table import CTGANSynthesizer
from sdv.single_table.base import BaseSingleTableSynthesizer

from conftest import MIXED_SDTYPES, TINY_MODEL, metadata_for, tiny_kwargs
from tabgraa_sdv import TabGRAASynthesizer

NUMERIC = ['age', 'income', 'score', 'population']


# ----------------------------------------------------------------------------- sample
def test_sample_returns_metadata_columns_and_requested_length(fitted, mixed_frame):
    fitted.reset_sampling()
    for n_rows in (1, 37, 256):
        out = fitted.sample(n_rows)
        assert isinstance(out, pd.DataFrame)
        assert len(out) == n_rows
        assert list(out.columns) == list(MIXED_SDTYPES)
    assert out.dtypes.to_dict() == mixed_frame.dtypes.to_dict()


def test_sampled_values_are_in_the_training_domain(fitted_sample, mixed_frame):
    out = fitted_sample
    assert set(out['color'].dropna()) <= set(mixed_frame['color'].dropna())
    assert set(out['member']) <= {True, False}
    assert out['color'].isna().any()  # the categorical's missing value is a category
    for name in ['age', 'population', 'member', 'joined', 'income']:
        assert not out[name].isna().any(), name


def test_enforce_min_max_values_keeps_numbers_and_dates_in_range(fitted_sample, mixed_frame):
    for name in NUMERIC + ['joined']:
        values = fitted_sample[name].dropna()
        assert values.min() >= mixed_frame[name].min(), name
        assert values.max() <= mixed_frame[name].max(), name


def test_enforce_rounding_keeps_the_data_decimals(fitted_sample):
    def on_grid(values, decimals):
        scaled = values.dropna().to_numpy() * 10**decimals
        return np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-6)

    assert fitted_sample['age'].dtype == np.int64
    assert fitted_sample['population'].dtype == np.int64
    assert on_grid(fitted_sample['income'], 2) and not on_grid(fitted_sample['income'], 1)
    assert on_grid(fitted_sample['score'], 1) and not on_grid(fitted_sample['score'], 0)
    joined = fitted_sample['joined']
    assert (joined == joined.dt.normalize()).all()  # whole days, as in the data


def test_is_an_sdv_single_table_synthesizer_with_ctgans_api():
    assert issubclass(TabGRAASynthesizer, BaseSingleTableSynthesizer)
    public = {
        name for name in dir(CTGANSynthesizer)
        if not name.startswith('_') and callable(getattr(CTGANSynthesizer, name))
    }
    # CTGAN's plot helper (plotly) and its optional-dependency hook are CTGAN-specific.
    public -= {'get_loss_values_plot', 'raise_module_not_found_error'}
    missing = sorted(name for name in public if not hasattr(TabGRAASynthesizer, name))
    assert missing == []


# --------------------------------------------------------------------- reproducibility
def test_reset_sampling_repeats_and_consecutive_samples_differ(fitted):
    fitted.reset_sampling()
    first = fitted.sample(200)
    second = fitted.sample(200)
    fitted.reset_sampling()
    again = fitted.sample(200)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(second)


def test_save_load_gives_identical_samples(fitted, tmp_path):
    path = tmp_path / 'synthesizer.pkl'
    fitted.save(path)
    loaded = TabGRAASynthesizer.load(path)
    assert isinstance(loaded, TabGRAASynthesizer)
    assert loaded.get_parameters() == fitted.get_parameters()
    fitted.reset_sampling()
    loaded.reset_sampling()
    expected = fitted.sample(300)
    pd.testing.assert_frame_equal(loaded.sample(300), expected)
    pd.testing.assert_frame_equal(loaded.sample(50), fitted.sample(50))


def test_load_resumes_sampling_where_save_left_it(fitted, tmp_path):
    fitted.reset_sampling()
    fitted.sample(20)
    path = tmp_path / 'mid_stream.pkl'
    fitted.save(path)
    loaded = TabGRAASynthesizer.load(path)
    pd.testing.assert_frame_equal(loaded.sample(100), fitted.sample(100))


# ------------------------------------------------------------------------- conditions
@pytest.mark.parametrize('values', [
    {'color': 'red'},
    {'color': None},
    {'color': np.nan},
    {'score': np.nan},
    {'score': 55.5},
    {'income': 1234.56},
    {'age': 30, 'member': True},
    {'member': False},
    {'population': 4_321_001},
    {'joined': pd.Timestamp('2021-03-04')},
    {'joined': '2021-03-04'},
    {'color': 'blue', 'score': np.nan, 'joined': pd.Timestamp('2021-03-04')},
], ids=lambda v: '-'.join(f'{k}={v[k]}' for k in v))
def test_sample_from_conditions_is_exact(fitted, mixed_frame, values):
    # 'joined' has < 256 distinct days over ~1000, so the codec keeps just those days; the
    # date used here is one of them.
    assert (mixed_frame['joined'] == pd.Timestamp('2021-03-04')).any()
    out = fitted.sample_from_conditions([Condition(values, num_rows=23)])
    assert len(out) == 23
    assert list(out.columns) == list(MIXED_SDTYPES)
    for name, value in values.items():
        column = out[name]
        if pd.isna(value):
            assert column.isna().all(), name
        elif name == 'joined':
            assert (column == pd.Timestamp(value)).all(), name
        else:
            assert (column == value).all(), name
    # The other columns are still drawn from the training domain.
    assert out['age'].between(mixed_frame['age'].min(), mixed_frame['age'].max()).all()


def test_several_conditions_give_exactly_the_requested_counts(fitted):
    conditions = [
        Condition({'color': 'red'}, num_rows=20),
        Condition({'color': 'blue'}, num_rows=7),
        Condition({'color': None}, num_rows=5),
        Condition({'age': 61}, num_rows=4),
    ]
    out = fitted.sample_from_conditions(conditions)
    assert len(out) == 36
    counts = out['color'].value_counts(dropna=False)
    assert counts['red'] >= 20 and counts['blue'] >= 7 and out['color'].isna().sum() >= 5
    assert (out['age'] == 61).sum() >= 4
    first = out.iloc[:32]
    assert first['color'].value_counts(dropna=False).to_dict() == {'red': 20, 'blue': 7, np.nan: 5}
    assert (out.iloc[32:]['age'] == 61).all()


def test_sample_remaining_columns_keeps_every_known_value(fitted, mixed_frame):
    known = mixed_frame[['color', 'age', 'joined', 'score']].iloc[:40].copy()
    before = known.copy(deep=True)
    out = fitted.sample_remaining_columns(known)
    pd.testing.assert_frame_equal(known, before)  # the user's frame is untouched
    assert len(out) == 40
    assert list(out.columns) == list(MIXED_SDTYPES)
    pd.testing.assert_frame_equal(out[list(known.columns)].reset_index(drop=True),
                                  before.reset_index(drop=True))
    for name in ['income', 'member', 'population']:
        assert not out[name].isna().any()


def test_sample_remaining_columns_with_missing_values_in_known_columns(fitted):
    known = pd.DataFrame({'color': [None, 'red', None, 'green'],
                          'score': [np.nan, np.nan, 42.0, 61.3]})
    out = fitted.sample_remaining_columns(known)
    assert len(out) == 4
    pd.testing.assert_frame_equal(out[['color', 'score']].reset_index(drop=True), known)


# ------------------------------------------------------------------------- parameters
def test_get_parameters_has_every_init_parameter_with_its_value(mixed_metadata):
    signature = inspect.signature(TabGRAASynthesizer.__init__).parameters
    # Non-default values where we know a valid one; any other parameter at its default.
    values = {name: p.default for name, p in signature.items() if name not in (
        'self', 'metadata')}
    chosen = {
        'enforce_min_max_values': False, 'enforce_rounding': False, 'locales': ['fr_FR'],
        'epochs': 3, 'batch_size': 64, 'learning_rate': 1e-3, 'backbone': 'compact',
        'model_config': {'n_embd': 32, 'n_layer': 2, 'n_head': 4, 'dropout': 0.0},
        'rank_embedding': True, 'permutation_rate': 0.25, 'temperature': 0.7, 'verbose': True, 'device': 'cpu',
        'seed': 123,
    }
    assert set(chosen) <= set(values)
    values.update(chosen)
    parameters = TabGRAASynthesizer(mixed_metadata, **values).get_parameters()
    assert parameters == values
    assert 'metadata' not in parameters


def test_get_parameters_defaults_match_the_signature(mixed_metadata):
    signature = inspect.signature(TabGRAASynthesizer.__init__).parameters
    defaults = {name: p.default for name, p in signature.items() if name not in (
        'self', 'metadata')}
    assert TabGRAASynthesizer(mixed_metadata).get_parameters() == defaults


@pytest.mark.parametrize('rank_embedding', [None, True, False])
def test_rank_embedding_reaches_the_model(mixed_frame, mixed_metadata, rank_embedding):
    from tabgraa_sdv.model import RANK_EMBEDDING

    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, rank_embedding=rank_embedding))
    synthesizer.fit(mixed_frame)
    expected = RANK_EMBEDDING if rank_embedding is None else rank_embedding
    assert synthesizer._model.rank_embedding is expected
    assert synthesizer.get_parameters()['rank_embedding'] is rank_embedding
    assert len(synthesizer.sample(20)) == 20


@pytest.mark.parametrize('max_base', [None, 8])
def test_max_base_reaches_the_codec(mixed_frame, mixed_metadata, max_base):
    from tabgraa_sdv.model import MAX_BASE

    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(epochs=1, max_base=max_base))
    synthesizer.fit(mixed_frame)
    codec = synthesizer._model.codec
    assert codec.max_base == (MAX_BASE if max_base is None else max_base)
    assert synthesizer.get_parameters()['max_base'] == max_base
    # population spans a wide integer range: binned, its digits' base bounded by max_base
    population = next(column for column in codec.columns if column.name == 'population')
    assert population.base <= codec.max_base
    sample = synthesizer.sample(50)
    values = sample['population'].dropna()
    assert values.between(mixed_frame['population'].min(), mixed_frame['population'].max()).all()


def test_column_weights_weight_every_slot_of_their_column(mixed_frame, mixed_metadata):
    weights = {'color': 4.0, 'population': 0.5}
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(epochs=1,
                                                                   column_weights=weights))
    synthesizer.fit(mixed_frame)
    assert synthesizer.get_parameters()['column_weights'] == weights
    lm = synthesizer._model
    slot_weights = lm.slot_weights()
    names = np.array(lm.codec.column_names)[lm.codec.slot_column]
    assert (names == 'population').sum() > 1  # a number of several slots: all are weighted
    expected = np.array([weights.get(name, 1.0) for name in names])
    np.testing.assert_array_equal(slot_weights, expected)
    assert len(synthesizer.sample(20)) == 20
    # by default no column is weighted
    assert TabGRAASynthesizer(mixed_metadata, **tiny_kwargs()).column_weights is None


def test_column_weights_of_a_column_the_model_does_not_write_raise_naming_it():
    from tabgraa_sdv.model import TabularLM

    frame = pd.DataFrame({'x': np.arange(40.0), 'c': ['a', 'b'] * 20})
    with pytest.raises(ValueError, match="column_weights names \\['y'\\]"):
        TabularLM(epochs=1, model_config=dict(TINY_MODEL), device='cpu',
                  column_weights={'y': 2.0}).fit(frame)


def test_get_metadata_returns_the_metadata(fitted, mixed_metadata):
    metadata = fitted.get_metadata()
    assert isinstance(metadata, Metadata)
    table = next(iter(metadata.to_dict()['tables'].values()))
    expected = next(iter(mixed_metadata.to_dict()['tables'].values()))
    assert table['columns'] == expected['columns']


def test_get_loss_values_has_one_row_per_epoch(fitted):
    loss = fitted.get_loss_values()
    assert list(loss.columns) == ['Epoch', 'Phase', 'Train Loss', 'Validation Loss']
    assert loss['Epoch'].tolist() == [1, 2]
    assert loss['Phase'].tolist() == ['sft', 'sft']  # two epochs run in full: no anneal
    assert np.isfinite(loss[['Train Loss', 'Validation Loss']].to_numpy()).all()
    assert (loss[['Train Loss', 'Validation Loss']].to_numpy() > 0).all()


def test_get_loss_values_before_fit_raises(mixed_metadata):
    with pytest.raises(NotFittedError):
        TabGRAASynthesizer(mixed_metadata, **tiny_kwargs()).get_loss_values()


def test_default_transformers_keep_missing_values_for_the_codec(fitted):
    transformers = fitted.get_transformers()
    for name in NUMERIC:
        assert isinstance(transformers[name], FloatFormatter), name
        assert transformers[name].missing_value_replacement is None, name
        assert transformers[name].missing_value_generation is None, name
    assert isinstance(transformers['joined'], UnixTimestampEncoder)
    assert transformers['joined'].missing_value_replacement is None
    assert transformers['color'] is None and transformers['member'] is None


def test_same_seed_fits_the_same_model(mixed_frame, mixed_metadata, fitted):
    """A second fit with the same seed samples exactly what the shared fit samples."""
    other = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs())
    other.fit(mixed_frame)
    pd.testing.assert_frame_equal(other.get_loss_values(), fitted.get_loss_values())
    fitted.reset_sampling()
    other.reset_sampling()
    pd.testing.assert_frame_equal(other.sample(200), fitted.sample(200))


# ------------------------------------------------------------------------ constraints
@pytest.fixture(scope='module')
def constrained():
    rng = np.random.default_rng(6)
    n_rows = 300
    low = rng.integers(0, 50, n_rows)
    frame = pd.DataFrame({
        'low': low,
        'high': low + rng.integers(0, 20, n_rows),
        'city': rng.choice(['Paris', 'Lyon', 'Nice'], n_rows),
        'z': np.where(rng.random(n_rows) < 0.3, np.nan, np.round(rng.normal(size=n_rows), 3)),
    })
    frame['country'] = frame['city'].map({'Paris': 'FR-75', 'Lyon': 'FR-69', 'Nice': 'FR-06'})
    metadata = metadata_for({'low': 'numerical', 'high': 'numerical', 'city': 'categorical',
                             'z': 'numerical', 'country': 'categorical'})
    synthesizer = TabGRAASynthesizer(metadata, **tiny_kwargs())
    synthesizer.add_constraints([
        Inequality(low_column_name='low', high_column_name='high'),
        FixedCombinations(column_names=['city', 'country']),
    ])
    synthesizer.fit(frame)
    return synthesizer, frame


def test_add_constraints_keeps_our_transformer_choices(constrained):
    synthesizer, _ = constrained
    transformers = synthesizer.get_transformers()
    numeric = {name: t for name, t in transformers.items() if isinstance(t, FloatFormatter)}
    assert 'z' in numeric and len(numeric) >= 2  # z, and the inequality's columns
    for name, transformer in numeric.items():
        assert transformer.missing_value_replacement is None, name
        assert transformer.missing_value_generation is None, name


def test_sampled_data_satisfies_the_constraints(constrained):
    synthesizer, frame = constrained
    synthesizer.reset_sampling()
    out = synthesizer.sample(300)
    assert len(out) == 300
    assert list(out.columns) == list(frame.columns)
    assert (out['low'] <= out['high']).all()
    pairs = set(zip(frame['city'], frame['country']))
    assert set(zip(out['city'], out['country'])) <= pairs
    assert out['z'].isna().any() and out['z'].notna().any()


def test_conditions_work_with_constraints(constrained):
    synthesizer, frame = constrained
    out = synthesizer.sample_from_conditions([Condition({'city': 'Nice'}, num_rows=15),
                                              Condition({'low': 10}, num_rows=10)])
    assert len(out) == 25
    assert (out.iloc[:15]['city'] == 'Nice').all()
    assert (out.iloc[:15]['country'] == 'FR-06').all()
    assert (out.iloc[15:]['low'] == 10).all()
    assert (out['low'] <= out['high']).all()


def test_preprocess_then_fit_processed_data(mixed_frame, mixed_metadata):
    """The two-step fit CTGAN users rely on."""
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(epochs=1))
    processed = synthesizer.preprocess(mixed_frame.iloc[:120])
    synthesizer.fit_processed_data(processed)
    out = synthesizer.sample(30)
    assert len(out) == 30 and list(out.columns) == list(MIXED_SDTYPES)
    assert set(synthesizer._model.codec.column_names) == set(processed.columns)
    assert len(synthesizer.get_loss_values()) == 1


def test_tiny_model_config_is_used(fitted):
    config = fitted._model.model.config
    assert (config.n_embd, config.n_layer, config.n_head) == (
        TINY_MODEL['n_embd'], TINY_MODEL['n_layer'], TINY_MODEL['n_head'])
