"""Shared fixtures: small frames built in code, their metadata, and one fitted synthesizer.

Every fit in the suite is tiny (a few hundred rows, ``epochs<=2``, a one-layer 16-wide GPT-2) and
seeded, so the whole suite runs in well under a few minutes on two CPU cores and is repeatable.
"""

import copy
import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sdv.metadata import Metadata

from tabgraa_sdv import TabGRAASynthesizer

# A one-layer, 16-wide GPT-2: enough to exercise every code path, fast on a laptop CPU.
TINY_MODEL = {'n_embd': 16, 'n_layer': 1, 'n_head': 1}

torch.set_num_threads(1)  # tiny models: threads only add overhead, and the CPU may be shared

# Where the suite's models fit and sample. The CPU by default (CI has no GPU);
# TABGRAA_TEST_DEVICE=cuda runs the same tests through the CUDA code paths on a GPU machine.
TEST_DEVICE = os.environ.get('TABGRAA_TEST_DEVICE', 'cpu')


def tiny_kwargs(**overrides):
    """Synthesizer arguments for a tiny, seeded fit (a fresh dict each call)."""
    kwargs = {'epochs': 2, 'batch_size': 128, 'model_config': dict(TINY_MODEL), 'seed': 0,
              'device': TEST_DEVICE, 'rounds': 0}
    kwargs.update(overrides)
    return kwargs


def make_mixed_frame(n_rows=300, seed=0):
    """Ints, floats with decimals, a categorical with missing values, a bool, a datetime, a
    numeric column with NaN and a wide-range integer column (binned, with offset digits)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        'age': rng.integers(18, 80, n_rows),
        'income': np.round(rng.gamma(2.0, 1000.0, n_rows), 2),
        'color': rng.choice(np.array(['red', 'green', 'blue', None], dtype=object), n_rows,
                            p=[0.4, 0.3, 0.2, 0.1]),
        'member': rng.random(n_rows) < 0.3,
        'joined': pd.Timestamp('2020-01-01') + pd.to_timedelta(rng.integers(0, 1000, n_rows),
                                                               unit='D'),
        'score': np.where(rng.random(n_rows) < 0.2, np.nan,
                          np.round(rng.normal(50.0, 10.0, n_rows), 1)),
        'population': rng.integers(1_000_000, 9_000_000, n_rows),
    })


MIXED_SDTYPES = {
    'age': 'numerical',
    'income': 'numerical',
    'color': 'categorical',
    'member': 'boolean',
    'joined': 'datetime',
    'score': 'numerical',
    'population': 'numerical',
}


def metadata_for(sdtypes, table='table', primary_key=None):
    """Single-table metadata from ``{column: sdtype}`` (no detection, so no surprises)."""
    columns = {}
    for name, sdtype in sdtypes.items():
        columns[name] = {'sdtype': sdtype}
        if sdtype == 'datetime':
            columns[name]['datetime_format'] = '%Y-%m-%d'
    table_dict = {'columns': columns}
    if primary_key is not None:
        table_dict['primary_key'] = primary_key
    return Metadata.load_from_dict({'tables': {table: table_dict}})


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield


@pytest.fixture(scope='session')
def mixed_frame():
    """The training frame of the shared synthesizer. Tests must not modify it."""
    return make_mixed_frame()


@pytest.fixture(scope='session')
def mixed_metadata():
    return metadata_for(MIXED_SDTYPES)


@pytest.fixture(scope='session')
def fitted(mixed_frame, mixed_metadata):
    """One fitted synthesizer shared by many tests. Tests that compare samples call
    ``reset_sampling()`` first; none refits or reconfigures it."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_kwargs())
        synthesizer.fit(mixed_frame)
    return synthesizer


@pytest.fixture(scope='session')
def fitted_sample(fitted):
    """500 rows sampled right after a reset, shared by the read-only checks."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fitted.reset_sampling()
        return fitted.sample(500)


def check_save_load_samples_the_same(synthesizer, path, n_rows):
    """Save ``synthesizer`` to ``path`` and load it: after ``reset_sampling()`` both draw the
    same ``n_rows`` rows. Returns the loaded synthesizer."""
    synthesizer.save(path)
    loaded = TabGRAASynthesizer.load(path)
    synthesizer.reset_sampling()
    loaded.reset_sampling()
    pd.testing.assert_frame_equal(loaded.sample(n_rows), synthesizer.sample(n_rows))
    return loaded


def check_loads_on_the_cpu_as_if_saved_on_a_gpu(lm):
    """Unpickle ``lm``'s state as written on a GPU machine (weights are always pickled as CPU
    tensors): it lands on CUDA when there is one, else on the CPU, where it samples as ``lm``."""
    state = lm.__getstate__()
    state['device'] = 'cuda:0'
    # a CUDA generator's state (Philox seed and offset), which a CPU generator cannot take
    state['_generator_state'] = ('cuda', torch.zeros(16, dtype=torch.uint8))
    clone = type(lm).__new__(type(lm))
    clone.__setstate__(copy.deepcopy(state))
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert clone.device.type == expected
    if expected == 'cpu':
        assert clone._generator is None  # the stream starts again from the seed
        lm.set_random_state(3)
        clone.set_random_state(3)
        pd.testing.assert_frame_equal(clone.sample(50), lm.sample(50))
    return state


def write_bool_table(folder, rows):
    """A benchmark table folder with a bool column and a bool target, both declared
    categorical (as shoppers' Weekend and Revenue): train.csv, test.csv (the same rows),
    metadata.json and dataset.json."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({'x': rng.normal(size=rows), 'flag': rng.random(rows) < 0.3,
                          'label': rng.random(rows) < 0.5})
    folder.mkdir(parents=True)
    frame.to_csv(folder / 'train.csv', index=False)
    frame.to_csv(folder / 'test.csv', index=False)
    columns = {'x': {'sdtype': 'numerical'}, 'flag': {'sdtype': 'categorical'},
               'label': {'sdtype': 'categorical'}}
    (folder / 'metadata.json').write_text(json.dumps(
        {'METADATA_SPEC_VERSION': 'V1', 'tables': {folder.name: {'columns': columns}}}))
    (folder / 'dataset.json').write_text(json.dumps(
        {'target': 'label', 'task': 'binary_classification'}))
    return folder
