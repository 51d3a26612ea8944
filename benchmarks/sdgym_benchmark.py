"""SDGym 0.15.1 benchmark of TabGRAA beside CTGAN, TVAE, GaussianCopula and TabDDPM, fully offline.

    python benchmarks/sdgym_benchmark.py            # 5 tables x 8 synthesizers x seeds 0 1 2
    python benchmarks/sdgym_benchmark.py --quick    # smoke test: about a minute on 2 CPU cores
    python benchmarks/sdgym_benchmark.py --datasets adult magic --synthesizers TabGRAA --seeds 0
    python benchmarks/sdgym_benchmark.py --list     # the synthesizers and their settings
    tabgraa benchmark ...                           # the same, from the command line tool

Needs the ``bench`` extra (``pip install -e '.[bench]'``, which pins ``sdgym==0.15.1``). Nothing
is downloaded: the tables come from ``../shared/datasets`` (or ``--data-dir``; any folder of
``train.csv`` + ``metadata.json`` tables, with optional ``test.csv`` and ``dataset.json``).

How a run is organised, and why
-------------------------------
A *cell* is one synthesizer x one table x one seed. Every cell is its own
``sdgym.benchmark_single_table`` call with one synthesizer and one table. One call for the whole
grid would not do, for three reasons:

* ``benchmark_single_table`` returns its scores only when the whole call ends, so nothing could
  be appended, or resumed, cell by cell.
* SDGym scores the synthetic rows against the rows it trained on; our metrics
  (:func:`tabgraa_sdv.metrics.evaluate`) need the table's held-out ``test.csv``, which SDGym never
  sees. Each call therefore gets a fresh ``output_destination``, where SDGym writes the synthetic
  table it sampled (``.../<synthesizer>/<synthesizer>_synthetic_data.csv``); we read that file
  back and score it against ``test.csv``. SDGym's own scores (quality, diagnostic and privacy
  against the training rows, memory, sizes) are kept in the ``sdgym_*`` columns.
* SDGym's ``timeout`` runs a job in a *spawned* process and pickles the synthesizer class with
  the standard pickler, so classes made at run time (``create_synthesizer_variant``) fail there
  ("Can't pickle <class 'sdgym.synthesizers.generate.Variant:...'>"). We call SDGym with
  ``timeout=None`` and enforce our own limit instead: each cell runs in a child process
  (``python sdgym_benchmark.py _cell spec.json``) that is killed when it exceeds ``--timeout``.
  ``--in-process`` (used by ``--quick``) skips the child process and therefore the limit.

SDGym 0.15.1 always adds ``UniformSynthesizer`` to a call; it runs (a second or so) and its row is
dropped, unless ``Uniform`` is one of the chosen synthesizers.

Every synthesizer is handed to SDGym as a custom synthesizer (``create_single_table_synthesizer``)
whose fit function seeds ``random``, NumPy and torch with the cell's seed and then fits:
``TabGRAASynthesizer``; SDGym's own wrappers of SDV's CTGAN, TVAE and GaussianCopula (SDV
defaults); or SDGym's built-in ``TabDDPMSynthesizer``. (SDGym reseeds NumPy from entropy before
each job, and its built-in names cannot take a seed.) ``Real`` scores the training rows as if
they were synthetic: the reference row of each table.

Offline: the SDGym 0.15.1 local-dataset bug and the workaround
--------------------------------------------------------------
A local ``additional_datasets_folder`` is found, then looked up in the wrong place, then fetched
from S3:

* ``sdgym/benchmark.py`` ``_resolve_dataset`` (lines 396-405) records each local table as
  ``DatasetInfo(name='adult', dataset_path=Path('<folder>/single_table/adult'), bucket=None)``;
* ``_load_from_dataset_info`` (lines 913-921) passes ``dataset_name=dataset_info.name`` *and*
  ``datasets_path=dataset_info.dataset_path`` to ``_load_dataset_with_client``;
* ``sdgym/datasets.py`` ``_get_dataset_path_and_download`` (lines 138-160) then tries
  ``Path('adult')`` relative to the working directory and ``<folder>/single_table/adult/adult``,
  finds neither, turns ``bucket=None`` into ``s3://sdv-datasets-public`` and calls
  ``get_s3_client()`` + ``_download_dataset`` (line 153). Offline the failure is caught by
  ``_run_job`` and only shows up in the result's ``Error`` column; online it would silently
  benchmark SDV's public demo table of the same name instead of the local one.

:func:`local_datasets_offline` (a context manager around each call) replaces
``sdgym.benchmark._load_from_dataset_info`` so that a local additional table (``source ==
'additional'`` and ``bucket is None``) is read from the folder SDGym itself resolved, with SDGym's
own reader ``sdgym.datasets.get_data_and_metadata_from_path``; anything else goes to the original
function, which is restored on exit. ``_run_job`` looks the function up when it runs, in the
calling process (``timeout=None``), so the replacement takes effect. ``sdv_datasets=None`` keeps
``dataset_to_bucket`` (which lists the S3 buckets) out of the call. tests/test_sdgym_benchmark.py
runs the benchmark with every S3 client creation raising, so it fails if the workaround goes.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA_DIR = REPO.parent / 'shared' / 'datasets'
DEFAULT_RESULTS = HERE / 'results' / 'sdgym.csv'
DEFAULT_WORK = HERE / 'work'
DATASETS = ('adult', 'default', 'shoppers', 'magic', 'beijing')
SYNTHESIZERS = ('Real', 'TabGRAA', 'TabGRAA-SFT', 'CTGAN', 'TVAE', 'GaussianCopula', 'TabDDPM',
                'TabDDPM-10k', 'TabDDPM-AdultTuned')
OPTIONAL_SYNTHESIZERS = ('Uniform',)
SDGYM_VERSION = '0.15.1'
DEFAULT_TIMEOUT = 12 * 3600
QUICK_ROWS = 500

METRICS = ('quality_score', 'logistic_detection', 'tree_detection_auc', 'tstr_score', 'dcr_share',
           'mia_auc', 'alpha_precision', 'beta_recall')
SDGYM_COLUMNS = {  # SDGym result column -> our column
    'Quality_Score': 'sdgym_quality_score',
    'Diagnostic_Score': 'sdgym_diagnostic_score',
    'Privacy_Score': 'sdgym_privacy_score',
    'Adjusted_Quality_Score': 'sdgym_adjusted_quality_score',
    'Adjusted_Total_Time': 'sdgym_adjusted_total_time',
    'Evaluate_Time': 'sdgym_evaluate_seconds',
    'Peak_Memory_MB': 'sdgym_peak_memory_mb',
    'Synthesizer_Size_MB': 'sdgym_synthesizer_size_mb',
    'Dataset_Size_MB': 'sdgym_dataset_size_mb',
}
COLUMNS = (
    ['synthesizer', 'dataset', 'seed'] + list(METRICS)
    + ['fit_seconds', 'sample_seconds', 'eval_seconds', 'kept_round']
    + list(SDGYM_COLUMNS.values())
    + ['settings', 'mode', 'max_rows', 'train_rows', 'test_rows', 'synthetic_rows', 'machine',
       'threads', 'timestamp', 'git_commit', 'sdgym_version', 'sdv_version', 'error']
)
KEY = ('synthesizer', 'dataset', 'seed', 'settings', 'max_rows')

# The TabDDPM paper's tuned configuration for Adult (yandex-research/tab-ddpm,
# exp/adult/ddpm_cb_best/config.toml): MLP 256-1024x4-256, T=100, batch 4096, lr 2.01e-3.
TABDDPM_ADULT_TUNED = {
    'd_layers': [256, 1024, 1024, 1024, 1024, 256], 'dropout': 0.0, 'num_timesteps': 100,
    'steps': 30000, 'lr': 0.0020099410620098234, 'weight_decay': 0.0, 'batch_size': 4096,
}
# SDGym 0.15.1's TabDDPM defaults, spelled out so the settings column shows them.
TABDDPM_DEFAULT = {'d_layers': [256, 256], 'num_timesteps': 1000, 'steps': 1000, 'lr': 0.001,
                   'batch_size': 4096}
# The same with ten times the steps: SDGym's 1,000 leave TabDDPM collapsed on the mixed tables
# here (quality 0.38-0.63); 10,000 train it on all five (docs/benchmarks.md).
TABDDPM_10K_STEPS = 10000
TABDDPM_NAMES = ('TabDDPM', 'TabDDPM-10k', 'TabDDPM-AdultTuned')
TINY_TABGRAA = {'epochs': 2, 'batch_size': 128,
                'model_config': {'n_embd': 16, 'n_layer': 1, 'n_head': 1}}


class BenchmarkError(Exception):
    """A user-facing error (bad option, missing table, missing extra)."""


# ------------------------------------------------------------------------------ the workaround
@contextlib.contextmanager
def local_datasets_offline():
    """Within the block, SDGym reads local ``additional_datasets_folder`` tables from disk
    instead of falling back to S3 (SDGym 0.15.1 bug; see the module docstring)."""
    import sdgym.benchmark
    from sdgym.datasets import get_data_and_metadata_from_path

    original = sdgym.benchmark._load_from_dataset_info

    def load_from_dataset_info(dataset_info, modality, result_writer=None):
        path = dataset_info.dataset_path
        if dataset_info.source == 'additional' and dataset_info.bucket is None and path:
            return get_data_and_metadata_from_path(Path(path), modality)
        return original(dataset_info, modality, result_writer=result_writer)

    sdgym.benchmark._load_from_dataset_info = load_from_dataset_info
    try:
        yield
    finally:
        sdgym.benchmark._load_from_dataset_info = original


def require_sdgym():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)  # SDMetrics' deprecation notes
            import sdgym
    except ImportError as error:
        raise BenchmarkError(
            "SDGym is not installed; install the bench extra: pip install -e '.[bench]'"
        ) from error
    if sdgym.__version__ != SDGYM_VERSION:
        warnings.warn(f'This harness was written for SDGym {SDGYM_VERSION}; found '
                      f'{sdgym.__version__}. Check that the offline workaround still applies.')
    return sdgym


# ------------------------------------------------------------------------------------ tables
class Table:
    """One benchmark table: where its rows come from, its target and task."""

    def __init__(self, name, train, test, metadata, target=None, task=None, source=''):
        self.name, self.metadata, self.target, self.task = name, metadata, target, task
        self._train, self._test, self.source = train, test, source

    @classmethod
    def from_folder(cls, folder):
        folder = Path(folder)
        if not (folder / 'train.csv').is_file() or not (folder / 'metadata.json').is_file():
            raise BenchmarkError(f'{folder} needs train.csv and metadata.json.')
        info = {}
        if (folder / 'dataset.json').is_file():
            info = json.loads((folder / 'dataset.json').read_text())
        metadata = json.loads((folder / 'metadata.json').read_text())
        test = folder / 'test.csv'
        return cls(folder.name, lambda: pd.read_csv(folder / 'train.csv'),
                   (lambda: pd.read_csv(test)) if test.is_file() else None, metadata,
                   info.get('target'), info.get('task'), source=str(folder))

    @classmethod
    def bundled_adult_demo(cls):
        """4,000 rows of UCI Adult shipped with the package (train: the first 3,000 rows, test:
        the last 1,000, as in ``tabgraa demo``); needs no data folder, so ``--quick`` runs
        anywhere."""
        from tabgraa_sdv.cli import demo_paths

        csv, metadata_json = demo_paths()
        frame = lambda: pd.read_csv(csv)  # noqa: E731
        return cls('adult_demo', lambda: frame().iloc[:3000], lambda: frame().iloc[3000:],
                   json.loads(Path(metadata_json).read_text()), 'income',
                   'binary_classification', source='tabgraa_sdv/data/adult_demo.csv')

    def target_sdtype(self):
        if self.target is None:
            return None
        table = next(iter(self.metadata['tables'].values()))
        return table['columns'].get(self.target, {}).get('sdtype')

    def conditioning_target(self):
        """The target TabDDPM conditions on: categorical or boolean only (class-conditional, as
        in the paper); None for a numerical target (regression)."""
        return self.target if self.target_sdtype() in ('categorical', 'boolean') else None

    def categorical_bool_columns(self):
        """Columns read as booleans whose metadata says ``categorical`` (shoppers' Weekend and
        Revenue). SDGym 0.15.1's TabDDPM decodes such a column with ``astype(bool)`` on the
        strings 'True' and 'False', so every sampled value comes out True; declared
        ``boolean`` it maps them back. See :func:`synthesizer_spec`."""
        table = next(iter(self.metadata['tables'].values()))
        train = self._train()
        return [column for column, spec in table['columns'].items()
                if spec.get('sdtype') == 'categorical' and column in train
                and pd.api.types.is_bool_dtype(train[column])]

    def frames(self):
        """(train, test); without test.csv, a seeded 20% of train.csv is held out."""
        train = self._train().reset_index(drop=True)
        if self._test is not None:
            return train, self._test().reset_index(drop=True)
        test = train.sample(frac=0.2, random_state=0)
        return train.drop(index=test.index).reset_index(drop=True), test.reset_index(drop=True)


def resolve_tables(names, data_dir):
    tables = []
    for name in names:
        path = Path(name)
        if name == 'adult_demo':
            tables.append(Table.bundled_adult_demo())
        elif path.is_dir() and (path / 'train.csv').is_file():
            tables.append(Table.from_folder(path))
        elif (Path(data_dir) / name).is_dir():
            tables.append(Table.from_folder(Path(data_dir) / name))
        else:
            raise BenchmarkError(
                f'No table {name!r}: not a folder with train.csv and not in --data-dir '
                f'{data_dir}.')
    if len({table.name for table in tables}) != len(tables):
        raise BenchmarkError('Two tables share a name; give each folder a distinct name.')
    return tables


def prepare_table(table, work, max_rows=None, max_test_rows=None):
    """Write SDGym's local layout for one table and return its folder::

        <work>/datasets/<rows key>/<name>/                    additional_datasets_folder
            single_table/<name>/data.zip  (<name>.csv)        what SDGym trains on
            single_table/<name>/metadata.json
            test.csv, table.json                              for our metrics

    Training rows above ``max_rows`` (and test rows above ``max_test_rows``) are subsampled with
    seed 0, so every synthesizer and seed sees the same rows. Rebuilt only when its inputs change.
    """
    key = f'train-{max_rows or "all"}_test-{max_test_rows or "all"}'
    folder = Path(work).resolve() / 'datasets' / key / table.name
    table_dir = folder / 'single_table' / table.name
    manifest = {'source': table.source, 'name': table.name, 'max_rows': max_rows,
                'max_test_rows': max_test_rows, 'target': table.target, 'task': table.task,
                'metadata': table.metadata, 'layout_version': 1}
    if (folder / 'table.json').is_file() and (table_dir / 'data.zip').is_file():
        if json.loads((folder / 'table.json').read_text()) == manifest:
            return folder
    train, test = table.frames()
    if max_rows and len(train) > max_rows:
        train = train.sample(max_rows, random_state=0).sort_index().reset_index(drop=True)
    if max_test_rows and len(test) > max_test_rows:
        test = test.sample(max_test_rows, random_state=0).sort_index().reset_index(drop=True)
    staging = folder.with_name(folder.name + '.tmp')
    shutil.rmtree(staging, ignore_errors=True)
    (staging / 'single_table' / table.name).mkdir(parents=True)
    with zipfile.ZipFile(staging / 'single_table' / table.name / 'data.zip', 'w',
                         compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f'{table.name}.csv', train.to_csv(index=False))
    (staging / 'single_table' / table.name / 'metadata.json').write_text(
        json.dumps(table.metadata, indent=2))
    test.to_csv(staging / 'test.csv', index=False)
    (staging / 'table.json').write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def load_prepared(folder):
    """(train, test, metadata dict, manifest) of a prepared table, train read by SDGym's reader."""
    from sdgym.datasets import get_data_and_metadata_from_path

    folder = Path(folder)
    manifest = json.loads((folder / 'table.json').read_text())
    train, metadata = get_data_and_metadata_from_path(
        folder / 'single_table' / manifest['name'], 'single_table')
    return train, pd.read_csv(folder / 'test.csv'), metadata, manifest


# ------------------------------------------------------------------------------ synthesizers
# Bumped when a change of code or defaults changes what the same TabGRAA settings fit, so that
# cells fitted before it run again and their rows are reported apart. 2: SFT's attention mask
# for rows in a permuted column order (commit d3757a5). 3: SFT's epoch bound from 1.5 M to 3 M
# row passes (tabgraa_sdv.sft.ROW_PASSES). 4: SFT with the rank embedding of numeric tokens
# (tabgraa_sdv.model.RANK_EMBEDDING). 5: SFT weighs the table's target column TARGET_WEIGHT
# times (TabGRAASynthesizer's column_weights), a setting of the harness, not a default.
# 6: on a classification table the target is also a label column (label_columns: redrawn
# from a bagged gradient-boosting p(target | other columns)), again a harness setting.
# 7: the target weight applies to a classification target only. On beijing's regression
# target (pm2.5, written as a bin and offset digits) revision 6's weight lost tree detection
# on all three seeds (docs/benchmarks.md); a classification table fits what revision 6 did.
# 8: the compact backbone's default dropout from 0.1 to 0 (tabgraa_sdv.backbone.compact_config;
# docs/backbone-compact.md, "Dropout"). 9: the resampler's classifier grows trees of up to 127
# leaves, not 31 (tabgraa_sdv.resampling.RESAMPLER_CLASSIFIER): it changes what the harness's
# resampling_factor=4 samples, not what it fits.
TABGRAA_CODE_REVISION = 9
# SFT-only probes (benchmarks/capacity_probe.py, column_weights 4) raised TSTR on all six
# magic and shoppers cells, by 0.004-0.045, with quality and tree detection about level
# (docs/backbone-compact.md, "Weighting the target"); 16 on magic gained no more TSTR and
# cost quality.
TARGET_WEIGHT = 4


def synthesizer_spec(name, quick=False, target_column=None, ddpm_steps=None, device=None,
                     code_revision=TABGRAA_CODE_REVISION, tabgraa_options=None,
                     boolean_columns=()):
    """``{'kind', 'kwargs', 'settings'}`` of one synthesizer: what is fit, with what.
    ``boolean_columns`` (TabDDPM only): boolean columns the metadata calls categorical, handed
    to TabDDPM as ``boolean`` so that it decodes them (``Table.categorical_bool_columns``);
    named in the settings, so rows fitted without the workaround stay apart.
    ``code_revision`` labels TabGRAA's settings and gives the harness settings of that revision
    (the report reads earlier revisions' rows by them). ``tabgraa_options`` (checked by
    ``check_tabgraa_options``) override TabGRAA's harness settings; they are in the settings
    column, so such a probe's rows never mix with the harness's own."""
    if name == 'Real':
        return {'kind': 'real', 'kwargs': {}, 'settings': 'the real training rows'}
    if name == 'Uniform':
        return {'kind': 'uniform', 'kwargs': {},
                'settings': 'SDGym UniformSynthesizer (not seeded by SDGym)'}
    if name in ('TabGRAA', 'TabGRAA-SFT'):
        # anneal_epochs is the default, spelled out so that rows fitted before it existed
        # ('rounds=3') stay apart. resampling_factor=4 is not the default (it samples 4x
        # slower): it is the setting for realism, chosen on benchmarks/alignment.py's rows.
        kwargs = {'rounds': 3 if name == 'TabGRAA' else 0, 'anneal_epochs': 3,
                  'resampling_factor': 4}
        # column_weights={<the table's target>: TARGET_WEIGHT}; from revision 7 on a class only
        if code_revision >= 5:
            kwargs['target_weight'] = TARGET_WEIGHT
        if code_revision >= 6:  # label_columns=[<the table's target>] when it is a class
            kwargs['label_target'] = True
        if quick:
            kwargs.update(TINY_TABGRAA)
            if name == 'TabGRAA':
                kwargs.update({'pool_size': 128, 'group_size': 16})
        kwargs.update(tabgraa_options or {})
        if device:
            kwargs['device'] = device
        spec = _spec('tabgraa', kwargs, quick)
        spec['settings'] += f'; code revision {code_revision}'
        return spec
    if name in ('CTGAN', 'TVAE', 'GaussianCopula'):
        kwargs = {'epochs': 1} if quick and name != 'GaussianCopula' else {}
        spec = _spec('sdv', kwargs, quick, empty='SDV defaults')
        spec['sdv_name'] = f'{name}Synthesizer'
        return spec
    if name in TABDDPM_NAMES:  # the configurations are read here, so tests can shrink them
        kwargs = dict(TABDDPM_ADULT_TUNED if name == 'TabDDPM-AdultTuned' else TABDDPM_DEFAULT)
        if name == 'TabDDPM-10k':
            kwargs['steps'] = TABDDPM_10K_STEPS
        if quick:
            kwargs['steps'] = 5
            if name != 'TabDDPM-AdultTuned':
                kwargs['num_timesteps'] = 20
        if ddpm_steps and name != 'TabDDPM-10k':  # its steps are in its name
            kwargs['steps'] = ddpm_steps
        kwargs['target_column'] = target_column
        if device:
            kwargs['device'] = device
        spec = _spec('tabddpm', kwargs, quick)
        if boolean_columns:
            spec['boolean_columns'] = sorted(boolean_columns)
            spec['settings'] += f"; boolean_sdtype={json.dumps(spec['boolean_columns'])}"
        return spec
    raise BenchmarkError(
        f'Unknown synthesizer {name!r}; choose from {SYNTHESIZERS + OPTIONAL_SYNTHESIZERS}.')


# Set by the harness itself: rounds tells TabGRAA from TabGRAA-SFT, seed is the cell's, device
# has its own flag and column_weights/label_columns name a table's column (target_weight does).
HARNESS_OWNED = ('metadata', 'rounds', 'seed', 'device', 'column_weights', 'label_columns')


def check_tabgraa_options(text):
    """``--tabgraa-options``: a JSON object of TabGRAASynthesizer parameters (or
    ``target_weight``), with a clear error for anything else."""
    import inspect

    from tabgraa_sdv import TabGRAASynthesizer

    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise BenchmarkError(f'--tabgraa-options is not JSON ({error}): {text!r}') from None
    if not isinstance(options, dict):
        raise BenchmarkError(f'--tabgraa-options must be a JSON object, got {text!r}')
    allowed = set(inspect.signature(TabGRAASynthesizer.__init__).parameters) - {'self'}
    allowed = (allowed - set(HARNESS_OWNED)) | {'target_weight'}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise BenchmarkError(
            f'--tabgraa-options: {unknown} cannot be set here; choose from {sorted(allowed)} '
            f'(the harness sets {list(HARNESS_OWNED)} itself)')
    return options


def _spec(kind, kwargs, quick, empty='defaults'):
    text = '; '.join(f'{k}={json.dumps(v)}' for k, v in sorted(kwargs.items())) or empty
    return {'kind': kind, 'kwargs': kwargs, 'settings': ('quick: ' if quick else '') + text}


def seed_everything(seed):
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def tabgraa_kwargs(spec):
    """``TabGRAASynthesizer`` arguments of a cell, by the current revision's rules: the
    spec's, with ``target_weight`` turned into ``column_weights`` on the cell's target column
    and ``label_target`` into ``label_columns=[target]``, both only when the table's task is
    not regression (neither when the table names no target)."""
    kwargs = dict(spec['kwargs'])
    weight = kwargs.pop('target_weight', None)
    label = kwargs.pop('label_target', False)
    target = spec.get('target')
    if target is not None and spec.get('task') != 'regression':
        if weight is not None:
            kwargs['column_weights'] = {target: weight}
        if label:
            kwargs['label_columns'] = [target]
    return kwargs


def tabddpm_metadata(metadata, spec):
    """The SDV ``Metadata`` TabDDPM is given: a copy with the spec's ``boolean_columns``
    declared ``boolean``. The same model; only the decoding of those columns changes (see
    :func:`synthesizer_spec`)."""
    from sdv.metadata import Metadata

    if not spec.get('boolean_columns'):
        return metadata
    metadata = Metadata.load_from_dict(metadata.to_dict())  # the caller's stays as it is
    metadata.update_columns(spec['boolean_columns'], sdtype='boolean')
    return metadata


def make_sdgym_synthesizer(name, spec, seed):
    """An SDGym custom synthesizer class (``Custom:<name>``) for one cell."""
    from sdgym.synthesizers import create_single_table_synthesizer

    kind, kwargs = spec['kind'], dict(spec['kwargs'])

    def get_trained_synthesizer(data, metadata):
        from sdv.metadata import Metadata

        seed_everything(seed)
        if isinstance(metadata, dict):  # SDGym hands custom synthesizers the metadata dict
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                metadata = Metadata.load_from_dict(metadata)
        if kind == 'tabgraa':
            from tabgraa_sdv import TabGRAASynthesizer

            synthesizer = TabGRAASynthesizer(metadata, seed=seed, **tabgraa_kwargs(spec))
            synthesizer.fit(data)
            # The per-round history, for the cell's kept_round: whether TabGRAA's scores differ
            # from TabGRAA-SFT's because a round was kept is otherwise guesswork.
            path = alignment_history_path(spec)
            path.parent.mkdir(parents=True, exist_ok=True)
            synthesizer.get_alignment_history().to_csv(path, index=False)
            return synthesizer
        if kind == 'sdv':  # SDGym's own wrapper of the SDV class
            from sdgym.synthesizers.sdv import create_sdv_synthesizer_class

            synthesizer = create_sdv_synthesizer_class(spec['sdv_name'])()
        elif kind == 'tabddpm':  # SDGym's built-in TabDDPM
            from sdgym.synthesizers import TabDDPMSynthesizer

            synthesizer = TabDDPMSynthesizer()
            kwargs['seed'] = seed
            metadata = tabddpm_metadata(metadata, spec)
        else:
            raise ValueError(f'not an SDGym custom synthesizer kind: {kind!r}')
        synthesizer._MODEL_KWARGS = kwargs  # an instance attribute: the class stays untouched
        synthesizer._fit(data, metadata)
        return synthesizer

    def sample_from_synthesizer(synthesizer, n_samples):
        if hasattr(synthesizer, '_internal_synthesizer'):
            return synthesizer.sample_from_synthesizer(synthesizer, n_samples)
        return synthesizer.sample(n_samples)

    return create_single_table_synthesizer(name, get_trained_synthesizer, sample_from_synthesizer)


# ---------------------------------------------------------------------------------- one cell
def run_cell(spec):
    """Fit, sample and score one cell; returns its result row (a dict). ``spec`` is plain JSON:
    synthesizer, kind, kwargs, settings, seed, table_folder, output_dir, metric_rows, threads,
    sdgym_scores."""
    from threadpoolctl import threadpool_limits

    import torch

    threads = spec['threads']
    torch.set_num_threads(threads)
    row = {'synthesizer': spec['synthesizer'], 'seed': spec['seed'], 'settings': spec['settings'],
           'machine': machine_description(), 'threads': threads, 'error': ''}
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        require_sdgym()
        train, test, metadata, manifest = load_prepared(spec['table_folder'])
        row.update({'dataset': manifest['name'], 'train_rows': len(train),
                    'test_rows': len(test)})
        if spec['kind'] == 'real':
            synthetic = train
        else:
            synthetic, sdgym_row = run_sdgym(spec)
            row.update(sdgym_row)
            row['kept_round'] = kept_round(spec)
            if synthetic is None:
                return row
        row['synthetic_rows'] = len(synthetic)
        start = time.perf_counter()
        try:
            from sdv.metadata import Metadata

            from tabgraa_sdv.metrics import evaluate

            scores = evaluate(train, test, synthetic, Metadata.load_from_dict(metadata),
                              target=manifest['target'], task=manifest['task'],
                              max_rows=spec['metric_rows'], seed=spec['seed'])
            row.update(scores)
        except Exception as error:  # keep SDGym's numbers; say what failed
            row['error'] = f'evaluate: {type(error).__name__}: {error}'
        row['eval_seconds'] = time.perf_counter() - start
    return row


def alignment_history_path(spec):
    return Path(spec['output_dir']) / 'alignment_history.csv'


def kept_round(spec):
    """The alignment round a TabGRAA cell kept (0: the SFT model), or None (no rounds ran)."""
    path = alignment_history_path(spec)
    if spec['kind'] != 'tabgraa' or not path.exists():
        return None
    return kept_round_of(pd.read_csv(path))


def kept_round_of(history):
    """The round an alignment history kept (0: the SFT model), or None (no round marked)."""
    if 'kept' not in history:
        return None
    kept = history.loc[history['kept'].astype(bool), 'round']
    return int(kept.iloc[0]) if len(kept) else None


def run_sdgym(spec):
    """One ``benchmark_single_table`` call; (synthetic rows or None, our columns from SDGym's)."""
    sdgym = require_sdgym()
    output = Path(spec['output_dir'])
    shutil.rmtree(output, ignore_errors=True)
    if spec['kind'] == 'uniform':
        synthesizers, custom, sdgym_name = ['UniformSynthesizer'], None, 'UniformSynthesizer'
    else:
        custom = [make_sdgym_synthesizer(spec['synthesizer'], spec, spec['seed'])]
        synthesizers, sdgym_name = [], f"Custom:{spec['synthesizer']}"
    scores_wanted = set(spec['sdgym_scores'])
    with local_datasets_offline():
        scores = sdgym.benchmark_single_table(
            synthesizers=synthesizers, custom_synthesizers=custom, sdv_datasets=None,
            additional_datasets_folder=str(spec['table_folder']),
            compute_quality_score='quality' in scores_wanted,
            compute_diagnostic_score='diagnostic' in scores_wanted,
            compute_privacy_score='privacy' in scores_wanted,
            timeout=None, output_destination=str(output), show_progress=False)
    found = scores[scores['Synthesizer'] == sdgym_name]
    if found.empty:
        return None, {'error': f'SDGym returned no row for {sdgym_name}'}
    result = found.iloc[0]
    row = {'fit_seconds': result.get('Train_Time'), 'sample_seconds': result.get('Sample_Time')}
    row.update({ours: result.get(theirs) for theirs, ours in SDGYM_COLUMNS.items()})
    error = result.get('Error')
    if isinstance(error, str) or (error is not None and not pd.isna(error)):
        return None, dict(row, error=f'sdgym: {str(error).strip()}')
    files = [path for path in output.rglob('*_synthetic_data.csv')
             if path.parent.name == sdgym_name]
    if len(files) != 1:
        return None, dict(row, error=f'expected one synthetic data file for {sdgym_name} under '
                                     f'{output}, found {len(files)}')
    synthetic = pd.read_csv(files[0], low_memory=False)
    if not spec.get('keep_outputs'):
        for pickle in output.rglob('*.pkl'):  # fitted synthesizers; can be large
            pickle.unlink()
    return synthetic, row


def machine_description():
    import torch

    text = (f'{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, '
            f'torch {torch.__version__}')
    # The CPU kernels torch dispatches to (AVX2, AVX512, ...): recorded so that two runs of one
    # cell whose sampled rows differ a little (docs/benchmarks.md) can be checked against them.
    capability = getattr(torch.backends.cpu, 'get_cpu_capability', lambda: None)()
    if capability:
        text += f', {capability} kernels'
    text += cpu_identity()
    if torch.cuda.is_available():
        text += f', {torch.cuda.get_device_name(0)}'
    return text


def cpu_identity(cpuinfo='/proc/cpuinfo'):
    """', <model name> (family/model/stepping), <cache>[, AMX]' from Linux's cpuinfo ('' where
    there is none). Recorded because MKL, which runs torch's CPU matrix products, picks its
    kernels by processor and, with its conditional numerical reproducibility off (MKL's
    default; ``MKL_VERBOSE=1`` prints ``CNR:OFF``), results may differ in the last bits between
    processors (docs/benchmarks.md)."""
    try:
        first = Path(cpuinfo).read_text().split('\n\n', 1)[0]
    except OSError:
        return ''
    fields = dict(line.split(':', 1) for line in first.splitlines() if ':' in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    if 'model name' not in fields:
        return ''
    text = (f", {fields['model name']} ({fields.get('cpu family', '?')}/{fields.get('model', '?')}"
            f"/{fields.get('stepping', '?')}), {fields.get('cache size', '? KB')} cache")
    return text + (', AMX' if 'amx_tile' in fields.get('flags', '').split() else '')


def git_commit(repo=REPO):
    """Short commit of the checkout ``repo`` (this one by default), '+dirty' with local edits."""
    try:
        out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
                             text=True, cwd=repo, timeout=10)
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                               capture_output=True, text=True, cwd=repo, timeout=10)
        return (out.stdout.strip() or 'unknown') + ('+dirty' if dirty.stdout.strip() else '')
    except (OSError, subprocess.SubprocessError):
        return 'unknown'


def package_versions(packages):
    """``{package: installed version}``, ``''`` for a package that is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in packages:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = ''
    return out


def versions():
    return {f'{package}_version': v for package, v in package_versions(('sdgym', 'sdv')).items()}


# ------------------------------------------------------------------------------ results file
def read_results(path):
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path, keep_default_na=False, na_values=[''], dtype={'error': str,
                                                                          'max_rows': str})


def cell_key(row):
    return tuple('' if row.get(k) is None or (isinstance(row.get(k), float) and
                                             math.isnan(row.get(k))) else str(row.get(k))
                 for k in KEY)


def finished_cells(results, retry_failed=False):
    """Keys of cells already in the results; with ``retry_failed``, only of cells whose latest
    row has no error."""
    done = set()
    latest = {}
    for row in results.to_dict('records'):
        latest[cell_key(row)] = row
    for key, row in latest.items():
        error = row.get('error')
        failed = isinstance(error, str) and error.strip() != ''
        if not (retry_failed and failed):
            done.add(key)
    return done


def append_row(path, row):
    """Append one row (the fixed columns, in order); rewrites the file if its header differs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{column: row.get(column) for column in COLUMNS}], columns=COLUMNS)
    if path.is_file() and path.stat().st_size > 0:
        header = pd.read_csv(path, nrows=0).columns.tolist()
        if header != COLUMNS:
            old = read_results(path)
            frame = pd.concat([old, frame], ignore_index=True)[COLUMNS]
            temporary = path.with_suffix('.tmp')
            frame.to_csv(temporary, index=False)
            temporary.replace(path)
            return
        frame.to_csv(path, mode='a', header=False, index=False)
    else:
        frame.to_csv(path, index=False)


# ------------------------------------------------------------------------------ orchestration
class Runner:
    """Runs the planned cells, in-process or one child process per cell, and appends rows."""

    def __init__(self, args, plan, commit):
        self.args, self.plan, self.commit = args, plan, commit
        self.lock = threading.Lock()
        self.children = set()
        self.finished = 0
        self.started = time.time()
        self.stopping = False

    def say(self, text):
        with self.lock:
            print(text, flush=True)

    def run(self):
        lanes = {}
        for cell in self.plan:
            lanes.setdefault(cell['table_name'], []).append(cell)
        lanes = list(lanes.values())
        if self.args.jobs <= 1:
            for lane in lanes:
                self.run_lane(lane)
            return
        pending = list(lanes)
        threads = []

        def worker():
            while not self.stopping:
                with self.lock:
                    if not pending:
                        return
                    lane = pending.pop(0)
                self.run_lane(lane)

        for _ in range(min(self.args.jobs, len(lanes))):
            thread = threading.Thread(target=worker, daemon=True)
            thread.start()
            threads.append(thread)
        try:
            while any(thread.is_alive() for thread in threads):
                for thread in threads:
                    thread.join(0.5)
        except KeyboardInterrupt:
            self.stopping = True
            self.kill_children()
            raise

    def run_lane(self, lane):
        for cell in lane:
            if self.stopping:
                return
            self.say(f"[start] {cell['synthesizer']} on {cell['table_name']}, seed "
                     f"{cell['seed']}")
            start = time.time()
            try:
                row = self.run_in_process(cell) if self.args.in_process else self.run_child(cell)
            except KeyboardInterrupt:
                self.stopping = True
                raise
            except Exception as error:  # the harness itself failed; keep going
                row = {'synthesizer': cell['synthesizer'], 'seed': cell['seed'],
                       'settings': cell['settings'],
                       'error': f'harness: {type(error).__name__}: {error}'}
            row.update({'dataset': cell['table_name'], 'mode': cell['mode'],
                        'max_rows': cell['max_rows'], 'timestamp': _now(),
                        'git_commit': self.commit, **versions()})
            with self.lock:
                append_row(self.args.results, row)
                self.finished += 1
                done = self.finished
            self.say(self.progress_line(row, done, time.time() - start))

    def progress_line(self, row, done, seconds):
        elapsed = time.time() - self.started
        eta = elapsed / done * (len(self.plan) - done)
        head = (f"[{done}/{len(self.plan)}] {row['synthesizer']} on {row['dataset']}, seed "
                f"{row['seed']}: {seconds:.1f} s")
        tail = f'(elapsed {_duration(elapsed)}, ~{_duration(eta)} left)'
        if row.get('error'):
            return f'{head}  ERROR {str(row["error"])[:300]}  {tail}'
        parts = [f'{metric} {row[metric]:.3f}' for metric in ('quality_score',
                 'tree_detection_auc', 'tstr_score') if _finite(row.get(metric))]
        if _finite(row.get('fit_seconds')):
            parts.insert(0, f"fit {row['fit_seconds']:.1f} s")
        return f"{head}  {', '.join(parts)}  {tail}"

    def run_in_process(self, cell):
        return run_cell(cell)

    def run_child(self, cell):
        folder = Path(cell['output_dir'])
        folder.mkdir(parents=True, exist_ok=True)
        spec_path, result_path = folder / 'spec.json', folder / 'result.json'
        result_path.unlink(missing_ok=True)
        spec_path.write_text(json.dumps(dict(cell, output_dir=str(folder / 'sdgym')), indent=2))
        log_path = folder / 'cell.log'
        env = dict(os.environ)
        for name in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
            env[name] = str(cell['threads'])
        timeout = self.args.timeout or None
        with open(log_path, 'w') as log:
            child = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), '_cell', str(spec_path),
                 str(result_path)], stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=str(REPO), start_new_session=True)
            with self.lock:
                self.children.add(child)
            try:
                child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(child)
                child.wait()
                return {'synthesizer': cell['synthesizer'], 'seed': cell['seed'],
                        'settings': cell['settings'], 'threads': cell['threads'],
                        'error': f'timeout: the cell ran past --timeout {self.args.timeout} s'}
            finally:
                with self.lock:
                    self.children.discard(child)
        if not result_path.is_file():
            lines = log_path.read_text(errors='replace').strip().splitlines()[-3:]
            return {'synthesizer': cell['synthesizer'], 'seed': cell['seed'],
                    'settings': cell['settings'],
                    'error': f'worker exited with status {child.returncode}: '
                             f"{' | '.join(lines)} (log: {log_path})"}
        return json.loads(result_path.read_text())

    def kill_children(self):
        with self.lock:
            children = list(self.children)
        for child in children:
            _kill_group(child)


def _kill_group(child):
    """Kill a child started with ``start_new_session`` and whatever it started."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _finite(value):
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _duration(seconds):
    seconds = int(seconds)
    if seconds < 60:
        return f'{seconds} s'
    if seconds < 3600:
        return f'{seconds // 60} min {seconds % 60:02d} s'
    return f'{seconds // 3600} h {seconds % 3600 // 60:02d} min'


def _now():
    return pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')


def build_plan(args, tables):
    """Every (synthesizer, table, seed) cell asked for, in run order (table by table)."""
    explicit = args.synthesizers is not None
    names = list(args.synthesizers) if explicit else list(SYNTHESIZERS)
    plan = []
    for table in tables:
        folder = prepare_table(table, args.work, args.max_rows, args.max_test_rows)
        target_column = table.conditioning_target()
        bool_columns = table.categorical_bool_columns()
        for name in names:
            if name == 'TabDDPM-AdultTuned' and not explicit and 'adult' not in table.name:
                continue  # tuned on Adult; on other tables only when asked for by name
            spec = synthesizer_spec(name, quick=args.quick, target_column=target_column,
                                    ddpm_steps=args.ddpm_steps, device=args.device,
                                    tabgraa_options=args.tabgraa_options,
                                    boolean_columns=bool_columns)
            # A probe's cells get their own work folders beside the harness's cells.
            probe = '_options' if args.tabgraa_options and spec['kind'] == 'tabgraa' else ''
            for seed in args.seeds:
                plan.append(dict(
                    spec, synthesizer=name, seed=seed, table_name=table.name, target=table.target,
                    task=table.task,
                    table_folder=str(folder), mode='quick' if args.quick else 'full',
                    max_rows='' if args.max_rows is None else str(args.max_rows),
                    metric_rows=args.metric_rows, threads=args.threads,
                    sdgym_scores=args.sdgym_scores,
                    output_dir=str(Path(args.work).resolve() / 'runs' / table.name / name /
                                   f'seed{seed}{probe}'),
                ))
    return plan


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog='sdgym_benchmark', description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Synthesizers: ' + ', '.join(SYNTHESIZERS + OPTIONAL_SYNTHESIZERS)
               + '. See docs/benchmarks.md.')
    parser.add_argument('--datasets', nargs='+', metavar='NAME_OR_FOLDER',
                        help=f'table names in --data-dir, or folders (default: '
                             f'{" ".join(DATASETS)}; '
                             'with --quick: adult_demo, the Adult sample bundled with the package)')
    parser.add_argument('--data-dir', default=str(DEFAULT_DATA_DIR),
                        help='folder of tables (default: ../shared/datasets)')
    parser.add_argument('--synthesizers', nargs='+', metavar='NAME',
                        help='default: all but Uniform; TabDDPM-AdultTuned runs on adult only '
                             'unless named here')
    parser.add_argument('--seeds', nargs='+', type=int, default=None,
                        help='default: 0 1 2 (with --quick: 0)')
    parser.add_argument('--max-rows', type=int, default=None,
                        help='subsample the training rows to at most this many (seed 0)')
    parser.add_argument('--max-test-rows', type=int, default=None,
                        help='subsample the test rows to at most this many (seed 0)')
    parser.add_argument('--metric-rows', type=int, default=5000,
                        help='rows per table for the distance-based metrics (default 5000)')
    parser.add_argument('--results', default=None,
                        help='results CSV (default benchmarks/results/sdgym.csv; with --quick a '
                             'file in a new temporary folder)')
    parser.add_argument('--work', default=None,
                        help='work folder: SDGym layouts, per-cell outputs and logs (default '
                             'benchmarks/work, git-ignored; with --quick a temporary folder)')
    parser.add_argument('--jobs', type=int, default=1,
                        help='tables run in parallel child processes (default 1; keep 1 on a '
                             '2-core machine)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch/BLAS threads per cell (default: CPU cores // jobs; '
                             'with --quick 1)')
    parser.add_argument('--timeout', type=int, default=None,
                        help=f'seconds per cell before its child process is killed (default '
                             f'{DEFAULT_TIMEOUT}; 0: no limit)')
    parser.add_argument('--in-process', action='store_true',
                        help='run cells in this process: no child processes, so no --timeout '
                             'and no --jobs (the default of --quick)')
    parser.add_argument('--ddpm-steps', type=int, default=None,
                        help='training steps of TabDDPM and TabDDPM-AdultTuned (default: 1000 '
                             'for TabDDPM, 30000 for TabDDPM-AdultTuned, as in the paper; '
                             'TabDDPM-10k keeps its 10000); recorded in the settings column')
    parser.add_argument('--tabgraa-options', default=None, metavar='JSON',
                        help='TabGRAASynthesizer parameters over the harness settings of both '
                             'TabGRAA rows, e.g. \'{"learning_rate": 0.001}\'; recorded in the '
                             'settings column, so these cells are reported apart')
    parser.add_argument('--device', default=None,
                        help="device for TabGRAA and TabDDPM ('cpu', 'cuda'; default: best)")
    parser.add_argument('--sdgym-scores', nargs='*', default=['quality', 'diagnostic', 'privacy'],
                        choices=['quality', 'diagnostic', 'privacy'],
                        help="SDGym's own scores to compute (default: all three, SDGym's default)")
    parser.add_argument('--retry-failed', action='store_true',
                        help='run again the cells whose latest row has an error (default: skip)')
    parser.add_argument('--quick', action='store_true',
                        help=f'smoke test: the bundled Adult sample, {QUICK_ROWS} training and '
                             f'{QUICK_ROWS} test rows, seed 0, tiny budgets, in-process, results '
                             'in a temporary file')
    parser.add_argument('--list', action='store_true',
                        help='print the synthesizers and their settings, then exit')
    parser.add_argument('--dry-run', action='store_true',
                        help='prepare the tables and print the cells that would run')
    args = parser.parse_args(argv)

    if args.quick:
        args.datasets = args.datasets or ['adult_demo']
        args.seeds = args.seeds if args.seeds is not None else [0]
        args.max_rows = args.max_rows or QUICK_ROWS
        args.max_test_rows = args.max_test_rows or QUICK_ROWS
        args.metric_rows = min(args.metric_rows, QUICK_ROWS)
        args.threads = args.threads or 1
        if args.jobs <= 1 and args.timeout is None:
            args.in_process = True
        if args.results is None or args.work is None:
            scratch = Path(tempfile.mkdtemp(prefix='tabgraa-sdgym-quick-'))
            args.results = args.results or str(scratch / 'sdgym_quick.csv')
            args.work = args.work or str(scratch / 'work')
    args.timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    if args.tabgraa_options is not None:
        try:
            args.tabgraa_options = check_tabgraa_options(args.tabgraa_options)
        except BenchmarkError as error:
            parser.error(str(error))
    args.datasets = args.datasets or list(DATASETS)
    args.seeds = args.seeds if args.seeds is not None else [0, 1, 2]
    args.results = args.results or str(DEFAULT_RESULTS)
    args.work = args.work or str(DEFAULT_WORK)
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    if args.jobs < 1 or args.threads < 1:
        parser.error('--jobs and --threads must be at least 1')
    if args.in_process and args.jobs > 1:
        parser.error('--jobs > 1 runs cells in child processes; drop --in-process')
    if args.synthesizers is not None:
        unknown = set(args.synthesizers) - set(SYNTHESIZERS + OPTIONAL_SYNTHESIZERS)
        if unknown:
            parser.error(f'unknown synthesizers {sorted(unknown)}; choose from '
                         f'{list(SYNTHESIZERS + OPTIONAL_SYNTHESIZERS)}')
    return args


def list_synthesizers(quick=False, ddpm_steps=None, tabgraa_options=None):
    lines = []
    for name in SYNTHESIZERS + OPTIONAL_SYNTHESIZERS:
        spec = synthesizer_spec(name, quick=quick, target_column='<target>',
                                ddpm_steps=ddpm_steps, tabgraa_options=tabgraa_options)
        lines.append(f"{name:20s} {spec['settings']}")
    return '\n'.join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['_cell']:  # a child process running one cell
        spec = json.loads(Path(argv[1]).read_text())
        row = run_cell(spec)
        Path(argv[2]).write_text(json.dumps(row, default=_json_default))
        return 0
    try:
        return _main(argv)
    except BenchmarkError as error:
        print(f'sdgym_benchmark: error: {error}', file=sys.stderr)
        return 2


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


def _main(argv):
    args = parse_args(argv)
    if args.list:
        print(list_synthesizers(args.quick, args.ddpm_steps, args.tabgraa_options))
        return 0
    require_sdgym()
    tables = resolve_tables(args.datasets, args.data_dir)
    plan = build_plan(args, tables)
    results = read_results(args.results)
    done = finished_cells(results, retry_failed=args.retry_failed)
    todo = [cell for cell in plan if cell_key(cell | {'dataset': cell['table_name']}) not in done]
    mode = 'quick' if args.quick else 'full'
    where = 'in this process (no time limit)' if args.in_process else (
        f'child processes, {args.jobs} at a time, '
        + (f'{args.timeout} s limit per cell' if args.timeout else 'no time limit'))
    print(f'SDGym benchmark ({mode}): {len(plan)} cells, {len(plan) - len(todo)} already in '
          f'{args.results}, {len(todo)} to run; {args.threads} thread(s) per cell, {where}.',
          flush=True)
    if args.dry_run:
        for cell in todo:
            print(f"  {cell['synthesizer']:20s} {cell['table_name']:12s} seed {cell['seed']}  "
                  f"{cell['settings']}")
        return 0
    if not todo:
        return 0
    start = time.time()
    runner = Runner(args, todo, git_commit())
    try:
        runner.run()
    except KeyboardInterrupt:
        runner.kill_children()
        print(f'interrupted; finished cells are in {args.results}; run again to resume.',
              file=sys.stderr)
        return 130
    print(f'done: {len(todo)} cells in {_duration(time.time() - start)}; results in '
          f'{args.results}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
