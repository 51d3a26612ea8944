"""Bad or unusual input: each case gives correct output or a clear error naming what is wrong,
and nothing the user passed is modified."""

import numpy as np
import pandas as pd
import pytest
from sdv.errors import InvalidDataError, SamplingError, SynthesizerInputError
from sdv.sampling import Condition

from conftest import MIXED_SDTYPES, metadata_for, tiny_kwargs
from tabgraa_sdv import TabGRAASynthesizer

CLEAR_ERRORS = (ValueError, InvalidDataError, SynthesizerInputError)


def small_frame(n_rows=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        'a': rng.integers(0, 10, n_rows),
        'b': rng.choice(['x', 'y', 'z'], n_rows),
        'f': np.round(rng.uniform(0, 5, n_rows), 1),
    })


SMALL_SDTYPES = {'a': 'numerical', 'b': 'categorical', 'f': 'numerical'}


def fit(frame, sdtypes, **overrides):
    synthesizer = TabGRAASynthesizer(metadata_for(sdtypes), **tiny_kwargs(**overrides))
    synthesizer.fit(frame)
    return synthesizer


# ---------------------------------------------------------------------------- the data
def test_empty_frame_raises_a_clear_error():
    frame = small_frame().iloc[:0]
    synthesizer = TabGRAASynthesizer(metadata_for(SMALL_SDTYPES), **tiny_kwargs())
    with pytest.raises(CLEAR_ERRORS, match='no rows'):
        synthesizer.fit(frame)


def test_fit_rejects_a_non_dataframe():
    synthesizer = TabGRAASynthesizer(metadata_for(SMALL_SDTYPES), **tiny_kwargs())
    with pytest.raises(CLEAR_ERRORS, match='DataFrame'):
        synthesizer.fit(small_frame().to_numpy())


def test_data_not_matching_the_metadata_names_the_column():
    synthesizer = TabGRAASynthesizer(metadata_for(SMALL_SDTYPES), **tiny_kwargs())
    frame = small_frame()
    frame['a'] = 'not a number'
    with pytest.raises(InvalidDataError, match="'a'"):
        synthesizer.fit(frame)


def test_infinite_values_raise_naming_the_column():
    frame = small_frame()
    frame.loc[3, 'f'] = np.inf
    synthesizer = TabGRAASynthesizer(metadata_for(SMALL_SDTYPES), **tiny_kwargs())
    with pytest.raises(CLEAR_ERRORS, match="'f'"):
        synthesizer.fit(frame)


@pytest.mark.parametrize('sdtype, values', [
    ('numerical', np.full(60, np.nan)),
    ('categorical', np.full(60, None, dtype=object)),
    ('datetime', pd.Series([pd.NaT] * 60, dtype='datetime64[ns]')),
], ids=['numerical', 'categorical', 'datetime'])
def test_all_missing_column_fits_and_samples_missing(sdtype, values):
    frame = small_frame()
    frame['empty'] = values
    synthesizer = fit(frame, {**SMALL_SDTYPES, 'empty': sdtype})
    out = synthesizer.sample(40)
    assert len(out) == 40 and list(out.columns) == list(frame.columns)
    assert out['empty'].isna().all()
    assert set(out['b']) <= {'x', 'y', 'z'}
    assert out['a'].between(0, 9).all()
    # A condition asking for the only value it ever had works too.
    conditioned = synthesizer.sample_from_conditions([Condition({'empty': None}, num_rows=5)])
    assert len(conditioned) == 5 and conditioned['empty'].isna().all()


def test_single_row_fits_and_reproduces_it():
    frame = small_frame().iloc[[4]].reset_index(drop=True)
    synthesizer = fit(frame, SMALL_SDTYPES)
    out = synthesizer.sample(10)
    assert len(out) == 10
    expected = pd.concat([frame] * 10, ignore_index=True)
    pd.testing.assert_frame_equal(out, expected)  # a single row is all the model can produce
    assert len(synthesizer.get_loss_values()) == 2
    assert synthesizer.get_loss_values()['Validation Loss'].isna().all()  # no validation split


def test_constant_columns_stay_constant():
    frame = small_frame()
    frame['const_num'] = 7
    frame['const_cat'] = 'same'
    frame['const_float'] = 2.5
    synthesizer = fit(frame, {**SMALL_SDTYPES, 'const_num': 'numerical',
                              'const_cat': 'categorical', 'const_float': 'numerical'})
    out = synthesizer.sample(50)
    assert (out['const_num'] == 7).all() and out['const_num'].dtype == frame['const_num'].dtype
    assert (out['const_cat'] == 'same').all()
    assert (out['const_float'] == 2.5).all()


def test_very_high_cardinality_categorical_fits_and_samples():
    n_rows = 20_000
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({
        'key': [f'user_{i:05d}' for i in rng.permutation(n_rows)],
        'v': rng.integers(0, 5, n_rows),
    })
    synthesizer = fit(frame, {'key': 'categorical', 'v': 'numerical'}, epochs=1,
                      batch_size=1024)
    assert synthesizer._model.codec.slot_size[0] == n_rows
    out = synthesizer.sample(200)
    assert len(out) == 200
    assert out['key'].isin(frame['key']).all()
    assert out['key'].nunique() > 150  # a near-uniform draw over 20,000 keys
    conditioned = synthesizer.sample_from_conditions([Condition({'key': 'user_00042'},
                                                                num_rows=3)])
    assert (conditioned['key'] == 'user_00042').all() and len(conditioned) == 3
    with pytest.raises(ValueError, match="'key'"):
        synthesizer.sample_from_conditions([Condition({'key': 'user_99999'}, num_rows=1)])


def test_model_config_that_does_not_divide_raises_naming_it():
    synthesizer = TabGRAASynthesizer(metadata_for(SMALL_SDTYPES), **tiny_kwargs(
        model_config={'n_embd': 15, 'n_head': 2}))
    with pytest.raises(ValueError, match='n_embd'):
        synthesizer.fit(small_frame())


# ----------------------------------------------------------------------- the parameters
@pytest.mark.parametrize('name, value', [
    ('epochs', 0),
    ('epochs', -3),
    ('epochs', 2.5),
    ('epochs', True),
    ('anneal_epochs', -1),
    ('anneal_epochs', 1.5),
    ('anneal_epochs', True),
    ('batch_size', 0),
    ('batch_size', -1),
    ('batch_size', 64.0),
    ('batch_size', None),
    ('learning_rate', 0),
    ('learning_rate', -1e-3),
    ('temperature', 0),
    ('temperature', -1.0),
    ('temperature', 'hot'),
    ('permutation_rate', -0.1),
    ('permutation_rate', 1.5),
    ('permutation_rate', True),
    ('resampling_factor', 0),
    ('resampling_factor', 2.0),
    ('resampling_factor', True),
    ('resampling_factor', None),
    ('rank_embedding', 1),
    ('rank_embedding', 'yes'),
    ('max_base', 1),
    ('max_base', 2.5),
    ('max_base', True),
    ('column_weights', [('color', 2.0)]),
    ('column_weights', {'no_such_column': 2.0}),
    ('column_weights', {'color': 0}),
    ('column_weights', {'color': -1.0}),
    ('column_weights', {'color': float('inf')}),
    ('column_weights', {'color': float('nan')}),
    ('column_weights', {'color': True}),
    ('column_weights', {'color': '2'}),
    ('label_columns', 'color'),
    ('label_columns', ['no_such_column']),
    ('label_columns', ['color', 'color']),
    ('label_columns', {'color': 1}),
    ('rounds', -1),
    ('rounds', 1.5),
    ('rounds', True),
    ('backbone', './no/such/model'),  # a path that does not exist (pretrained names are valid)
    ('backbone', '/no/such/model'),
    ('backbone', 'not a model name'),
    ('backbone', 3),
    ('backbone', None),
    ('lora', {'r': 4}),  # LoRA is for pretrained backbones, not 'compact'
    ('model_config', {'n_embd': 16, 'width': 3}),
    ('model_config', [16, 1, 1]),
    ('device', 'not-a-device'),
    ('seed', 1.5),
    ('seed', 'zero'),
])
def test_bad_parameter_raises_value_error_naming_it(mixed_metadata, name, value):
    with pytest.raises(ValueError, match=name):
        TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(**{name: value}))


@pytest.mark.parametrize('name, value', [
    ('enforce_min_max_values', 'yes'),
    ('enforce_rounding', 1),
])
def test_bad_sdv_parameter_raises_naming_it(mixed_metadata, name, value):
    with pytest.raises(CLEAR_ERRORS, match=name):
        TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(**{name: value}))


# ----------------------------------------------------------------------- the conditions
@pytest.mark.parametrize('values, column', [
    ({'nope': 1}, 'nope'),
    ({'color': 'purple'}, 'color'),
    ({'age': 200}, 'age'),
    ({'age': 5}, 'age'),
    ({'age': 30.5}, 'age'),
    ({'age': np.nan}, 'age'),
    ({'score': 55.55}, 'score'),
    ({'score': 1e6}, 'score'),
    ({'income': 1.001}, 'income'),
    ({'population': 4_321_000.5}, 'population'),  # was: SDV's "Unable to sample any rows"
    ({'joined': pd.Timestamp('2031-01-01')}, 'joined'),
    ({'joined': pd.Timestamp('2021-03-04 12:00')}, 'joined'),
    ({'joined': pd.Timestamp('2020-06-15')}, 'joined'),  # a day the codec never saw
], ids=lambda v: str(v))
def test_condition_the_model_cannot_meet_raises_naming_the_column(fitted, values, column):
    with pytest.raises(CLEAR_ERRORS, match=f"'{column}'"):
        fitted.sample_from_conditions([Condition(values, num_rows=3)])


@pytest.mark.parametrize('known, column', [
    (pd.DataFrame({'nope': [1, 2]}), 'nope'),
    (pd.DataFrame({'color': ['red', 'purple']}), 'color'),
    (pd.DataFrame({'age': [30, 300]}), 'age'),
    (pd.DataFrame({'score': [50.0, 50.05]}), 'score'),
])
def test_known_columns_the_model_cannot_meet_raise_naming_the_column(fitted, known, column):
    before = known.copy(deep=True)
    with pytest.raises(CLEAR_ERRORS, match=f"'{column}'"):
        fitted.sample_remaining_columns(known)
    pd.testing.assert_frame_equal(known, before)


def test_sample_before_fit_raises():
    synthesizer = TabGRAASynthesizer(metadata_for(SMALL_SDTYPES), **tiny_kwargs())
    with pytest.raises(SamplingError, match='not been fitted'):
        synthesizer.sample(5)
    with pytest.raises(SamplingError, match='not been fitted'):
        synthesizer.sample_from_conditions([Condition({'a': 1}, num_rows=2)])


# ------------------------------------------------------------------------ no mutation
def test_nothing_the_user_passed_is_mutated(mixed_frame, mixed_metadata):
    frame = mixed_frame.copy(deep=True)
    frame_before = frame.copy(deep=True)
    metadata_before = mixed_metadata.to_dict()
    model_config = {'n_embd': 16, 'n_layer': 1, 'n_head': 1}
    locales = ['en_US']
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs(
        epochs=1, model_config=model_config, locales=locales))
    synthesizer.fit(frame)
    pd.testing.assert_frame_equal(frame, frame_before)
    assert frame.dtypes.to_dict() == frame_before.dtypes.to_dict()

    synthesizer.sample(20)
    known = frame[['color', 'score', 'joined']].iloc[:15].copy()
    known_before = known.copy(deep=True)
    conditions = [Condition({'color': None, 'age': 40}, num_rows=4)]
    condition_values_before = dict(conditions[0].column_values)
    synthesizer.sample_remaining_columns(known)
    synthesizer.sample_from_conditions(conditions)

    pd.testing.assert_frame_equal(known, known_before)
    pd.testing.assert_frame_equal(frame, frame_before)
    assert conditions[0].column_values == condition_values_before
    assert mixed_metadata.to_dict() == metadata_before
    assert model_config == {'n_embd': 16, 'n_layer': 1, 'n_head': 1}
    assert locales == ['en_US']
    assert list(frame.columns) == list(MIXED_SDTYPES)
