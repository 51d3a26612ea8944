"""TabGRAASynthesizer: SDV single-table glue around :class:`tabgraa_sdv.model.TabularLM`.

SDV's data processor (RDT) does the type work and hands the model a table of numbers and
categories; the model tokenizes, learns and samples it. Conditions are applied natively (as
sequence prefixes), so SDV's reject-sampling filter after ``_sample`` never drops a row.
"""

import numbers

import numpy as np
import pandas as pd
from rdt.transformers import FloatFormatter, UnixTimestampEncoder
from sdv.errors import NotFittedError
from sdv.single_table.base import BaseSingleTableSynthesizer

from tabgraa_sdv.model import TabularLM, resolve_device

BACKBONES = ('compact',)
# SDV groups transformed conditions with pandas' default dropna=True, which would silently drop a
# condition asking for a missing value; it travels through that groupby as this marker.
_MISSING = '__tabgraa_missing__'


def _is_missing_marker(value):
    return isinstance(value, str) and value == _MISSING


def _check_positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        allowed = 'a positive integer or None' if allow_none else 'a positive integer'
        raise ValueError(f'{name} must be {allowed}, got {value!r}.')


def _check_fraction(name, value, low_inclusive=True):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not (
        (0 <= value if low_inclusive else 0 < value) and value <= 1
    ):
        raise ValueError(f'{name} must be a number in [0, 1], got {value!r}.')


class TabGRAASynthesizer(BaseSingleTableSynthesizer):
    """Synthetic rows from a compact causal language model over the table's tokens.

    Args:
        metadata (sdv.metadata.Metadata): single-table metadata.
        enforce_min_max_values (bool): clip numbers to the range seen in fit. Defaults to True.
        enforce_rounding (bool): round numbers as in the data. Defaults to True.
        locales (list): Faker locales for PII columns. Defaults to ``['en_US']``.
        epochs (int or None): most SFT epochs; None picks a bound from the data size, and
            early stopping on a 10% validation split ends training sooner. Defaults to None.
        batch_size (int): rows per SFT step. Defaults to 512.
        learning_rate (float): AdamW peak learning rate (cosine decay). Defaults to 3e-3.
        backbone (str): 'compact', a GPT-2 built from a config sized to the data.
        model_config (dict or None): overrides of the compact GPT-2 size: ``n_embd``,
            ``n_layer``, ``n_head``, ``dropout``. Defaults to None (sized to the data).
        permutation_rate (float): share of training rows in a random column order (the rest in
            the table's order, which unconditional sampling uses). Defaults to 0.5.
        temperature (float): sampling temperature. Defaults to 1.0.
        rounds (int): TabGRAA alignment rounds after SFT. Only 0 (SFT only) for now.
        verbose (bool): progress bars. Defaults to False.
        device (str or None): 'cpu', 'cuda', 'mps', or None for the best available.
        seed (int or None): seed of initialisation, data order and the validation split.
            Defaults to 0 (reproducible fits); None draws fresh entropy.
    """

    _model_sdtype_transformers = {'categorical': None, 'boolean': None}

    def __init__(self, metadata, enforce_min_max_values=True, enforce_rounding=True,
                 locales=['en_US'], epochs=None, batch_size=512, learning_rate=3e-3,
                 backbone='compact', model_config=None, permutation_rate=0.5, temperature=1.0,
                 rounds=0, verbose=False, device=None, seed=0):
        _check_positive_int('epochs', epochs, allow_none=True)
        _check_positive_int('batch_size', batch_size)
        if not isinstance(learning_rate, numbers.Real) or not learning_rate > 0:
            raise ValueError(f'learning_rate must be a positive number, got {learning_rate!r}.')
        if backbone not in BACKBONES:
            raise ValueError(
                f'backbone must be one of {BACKBONES}, got {backbone!r}. Pretrained Hugging Face '
                'backbones are not supported yet.'
            )
        if model_config is not None and not isinstance(model_config, dict):
            raise ValueError(f'model_config must be a dict or None, got {model_config!r}.')
        unknown = set(model_config or {}) - {'n_embd', 'n_layer', 'n_head', 'dropout'}
        if unknown:
            raise ValueError(
                f'model_config has unknown keys {sorted(unknown)}; allowed: n_embd, n_layer, '
                'n_head, dropout.'
            )
        _check_fraction('permutation_rate', permutation_rate)
        if not isinstance(temperature, numbers.Real) or not temperature > 0:
            raise ValueError(f'temperature must be a positive number, got {temperature!r}.')
        if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral) or rounds != 0:
            raise ValueError(
                f'rounds must be 0 (SFT only) for now, got {rounds!r}: TabGRAA alignment rounds '
                'are not implemented yet.'
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f'seed must be an integer or None, got {seed!r}.')
        resolve_device(device)  # fail early on a bad device name
        super().__init__(metadata, enforce_min_max_values=enforce_min_max_values,
                         enforce_rounding=enforce_rounding, locales=locales)
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.backbone = backbone
        self.model_config = model_config
        self.permutation_rate = permutation_rate
        self.temperature = temperature
        self.rounds = rounds
        self.verbose = verbose
        self.device = device
        self.seed = seed

    # ------------------------------------------------------------------ transformer defaults
    def _update_default_transformers(self):
        """RDT does the type work in a form the codec can tokenize exactly: categories and
        booleans pass through, numbers keep missing values (the codec has a token for them) and
        learn their rounding, datetimes become timestamps."""
        super()._update_default_transformers()
        self._data_processor._update_transformers_by_sdtypes('numerical', FloatFormatter(
            missing_value_replacement=None, missing_value_generation=None,
            learn_rounding_scheme=self.enforce_rounding,
            enforce_min_max_values=self.enforce_min_max_values,
        ))
        self._data_processor._update_transformers_by_sdtypes('datetime', UnixTimestampEncoder(
            missing_value_replacement=None, missing_value_generation=None,
            enforce_min_max_values=self.enforce_min_max_values,
        ))

    def add_constraints(self, constraints):
        # SDV rebuilds the data processor here, dropping the model's transformer defaults.
        super().add_constraints(constraints)
        self._update_default_transformers()

    # --------------------------------------------------------------------------- fit/sample
    def fit(self, data):
        if not isinstance(data, pd.DataFrame):
            raise ValueError(f'fit expects a pandas DataFrame, got {type(data).__name__}.')
        if len(data) == 0:
            raise ValueError('The data has no rows; fit needs at least one row.')
        super().fit(data)

    def _fit(self, processed_data):
        seed = self.seed if self.seed is not None else int(pd.Timestamp.now().value % 2**31)
        self._model = TabularLM(
            epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            permutation_rate=self.permutation_rate, model_config=self.model_config,
            device=self.device, seed=seed, verbose=self.verbose,
        )
        self._model.fit(processed_data)

    def _sample(self, num_rows, conditions=None):
        condition_frame = None
        if conditions:
            modelled = [c for c in conditions if c in self._model.codec.column_names]
            condition_frame = pd.DataFrame({
                c: [np.nan if _is_missing_marker(conditions[c]) else conditions[c]]
                for c in modelled
            })
        return self._model.sample(num_rows, condition_frame, temperature=self.temperature)

    # --------------------------------------------------------------------------- conditions
    def _normalize_conditions(self, condition_df):
        # RDT turns a Timestamp of unit 's' into seconds, not the nanoseconds it trained on.
        condition_df = condition_df.copy()
        for column in condition_df.columns:
            if self._data_processor.get_sdtypes().get(column) == 'datetime':
                values = condition_df[column]
                if not values.map(lambda v: isinstance(v, str) or pd.isna(v)).all():
                    condition_df[column] = pd.to_datetime(values).astype('datetime64[ns]')
        return condition_df

    def _transform_conditions(self, condition_df):
        transformed = super()._transform_conditions(self._normalize_conditions(condition_df))
        return transformed.astype(object).where(transformed.notna(), _MISSING)

    def _check_condition_values(self, condition_frame):
        """Raise a clear error for a value the model cannot produce (an unseen category, a number
        off the column's range or precision) before SDV's sampling loop hides it."""
        self._validate_fit_before_sample()
        transformed = self._data_processor.transform(
            self._normalize_conditions(condition_frame), is_condition=True)
        modelled = [c for c in transformed.columns if c in self._model.codec.column_names]
        self._model.codec.encode_columns(transformed, modelled)

    def sample_from_conditions(self, conditions, max_tries_per_batch=100, batch_size=None,
                               output_file_path=None):
        for frame in self._make_condition_dfs(conditions):
            self._validate_conditions_unseen_columns(frame)
            self._check_condition_values(frame)
        return super().sample_from_conditions(conditions, max_tries_per_batch, batch_size,
                                              output_file_path)

    def sample_remaining_columns(self, known_columns, max_tries_per_batch=100, batch_size=None,
                                 output_file_path=None):
        self._validate_known_columns(known_columns)
        self._check_condition_values(known_columns.copy())
        return super().sample_remaining_columns(known_columns, max_tries_per_batch, batch_size,
                                                output_file_path)

    # ------------------------------------------------------------------------------ results
    def get_loss_values(self):
        """SFT loss per epoch: columns ``Epoch``, ``Train Loss``, ``Validation Loss``."""
        if not self._fitted or self._model is None:
            raise NotFittedError('Loss values are not available yet. Please fit your synthesizer first.')
        return self._model.loss_values.rename(columns={
            'epoch': 'Epoch', 'train_loss': 'Train Loss', 'val_loss': 'Validation Loss'
        })
