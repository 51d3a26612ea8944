"""TabGRAASynthesizer: SDV single-table glue around :class:`tabgraa_sdv.model.TabularLM` (the
compact backbone) or :class:`tabgraa_sdv.pretrained.TextLM` (a pretrained Hugging Face backbone).

SDV's data processor (RDT) does the type work and hands the model a table of numbers and
categories; the model tokenizes, learns and samples it. Conditions are applied natively (as
sequence prefixes), so SDV's reject-sampling filter after ``_sample`` never drops a row.
"""

import math
import numbers
import os
import re

import numpy as np
import pandas as pd
from rdt.transformers import FloatFormatter, UnixTimestampEncoder
from sdv.errors import NotFittedError
from sdv.single_table.base import BaseSingleTableSynthesizer

from tabgraa_sdv.alignment import ADAPTERS, OBJECTIVES
from tabgraa_sdv.devices import DataParallel, resolve_device
from tabgraa_sdv.model import MAX_BASE, RANK_EMBEDDING, TabularLM
from tabgraa_sdv.pretrained import TextLM, as_lora_config
from tabgraa_sdv.rewards import REWARDS
from tabgraa_sdv.sft import ANNEAL_EPOCHS

BACKBONES = ('compact',)  # or a Hugging Face model name / local directory
# A Hugging Face hub id: "name" or "owner/name" (letters, digits, '-', '_', '.').
_HUB_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$')
# SDV groups transformed conditions with pandas' default dropna=True, which would silently drop a
# condition asking for a missing value; it travels through that groupby as this marker.
_MISSING = '__tabgraa_missing__'


def _is_missing_marker(value):
    return isinstance(value, str) and value == _MISSING


def _check_int(name, value, allow_none=False, minimum=1):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = {0: 'a non-negative integer', 1: 'a positive integer'}.get(
            minimum, f'an integer >= {minimum}')
        allowed += ' or None' if allow_none else ''
        raise ValueError(f'{name} must be {allowed}, got {value!r}.')


def _check_backbone(backbone):
    """'compact', an existing local model directory, or something that can be a hub id."""
    if isinstance(backbone, str) and backbone == 'compact':
        return
    if not isinstance(backbone, (str, os.PathLike)) or not os.fspath(backbone):
        raise ValueError(
            f"backbone must be 'compact' or the name or local directory of a Hugging Face causal "
            f"language model (e.g. 'distilgpt2'), got {backbone!r}."
        )
    path = os.path.expanduser(os.fspath(backbone))
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, 'config.json')):
            raise ValueError(
                f'backbone directory {os.fspath(backbone)!r} holds no config.json: save a model '
                'and its tokenizer there with save_pretrained.'
            )
        return
    # A hub id starts with a letter or digit and has at most one '/': './x', '/x', '~/x',
    # 'a/b/c' and 'C:\\x' are paths, and these do not exist.
    if isinstance(backbone, os.PathLike) or not _HUB_ID.match(os.fspath(backbone)):
        raise ValueError(
            f'backbone {os.fspath(backbone)!r} is neither an existing local directory nor a '
            "Hugging Face model name ('distilgpt2', 'owner/name')."
        )


def _check_metadata_columns(name, named, columns):
    """Each of ``named`` (a parameter's column names) is a column of the metadata."""
    for column in named:
        if column not in columns:
            raise ValueError(
                f'{name} names {column!r}, which is not a column of the metadata '
                f'(columns: {columns}).'
            )


def _check_column_weights(column_weights, columns):
    """None, or a dict from columns of the table to positive finite numbers."""
    if column_weights is None:
        return
    if not isinstance(column_weights, dict):
        raise ValueError(
            f'column_weights must be a dict of column name to weight, or None; got '
            f'{column_weights!r}.'
        )
    _check_metadata_columns('column_weights', column_weights, columns)
    for column, weight in column_weights.items():
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not (
                0 < weight < math.inf):
            raise ValueError(
                f'column_weights[{column!r}] must be a positive finite number, got {weight!r}.'
            )


def _check_label_columns(label_columns, columns):
    """None, or a list (or tuple) of distinct column names of the table."""
    if label_columns is None:
        return
    if isinstance(label_columns, str):
        raise ValueError(
            f'label_columns must be a list of column names, or None; got the string '
            f'{label_columns!r}. For one column write [{label_columns!r}].'
        )
    if not isinstance(label_columns, (list, tuple)):
        raise ValueError(
            f'label_columns must be a list of column names, or None; got {label_columns!r}.'
        )
    _check_metadata_columns('label_columns', label_columns, columns)
    if len(set(label_columns)) != len(label_columns):
        raise ValueError(f'label_columns names a column twice: {list(label_columns)}.')


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
        anneal_epochs (int or None): compact backbone: when early stopping ends SFT (while the
            rate is still high), this many more epochs with the rate decaying from
            learning_rate / 3 to zero, kept only if the validation loss improves; 0 skips them.
            Defaults to None: 3 for the compact backbone (pretrained backbones have none).
        backbone (str): 'compact' (the default), a GPT-2 built from a config sized to the data
            over a columnar vocabulary; or the name or local directory of any Hugging Face causal
            language model (e.g. 'distilgpt2', the paper's), fine-tuned on the rows as text
            ("age is 42, color is red", GReaT) with grammar-constrained decoding (see
            docs/backbone-pretrained.md). Offline, pass a local directory.
        model_config (dict or None): overrides of the compact GPT-2 size: ``n_embd``,
            ``n_layer``, ``n_head``, ``dropout``. Defaults to None (sized to the data).
        rank_embedding (bool or None): compact backbone: during SFT, a numeric token's
            embedding adds a learned smooth function of its place in the column's order (its
            quantile bin or offset digit), so neighbouring bins share what they learn; added
            into the plain embedding after SFT. Defaults to None: on for the compact backbone
            (docs/backbone-compact.md, "The rank embedding"); pretrained backbones have none.
        max_base (int or None): most tokens of a numeric column's slot: a column with more
            distinct values is written as a quantile bin (at most ``max_base`` of them) and
            offset digits of base at most ``max_base``; fewer bins give each bin more rows to
            learn from, at the cost of more digits per number and a longer SFT (128 is worth
            trying on tables of many continuous columns; docs/backbone-compact.md, "Fewer
            bins"). Pretrained backbones use it only to find a column's grid. Defaults to None
            (256).
        column_weights (dict or None): compact backbone: weights of columns' terms in the SFT
            loss (and its validation loss), ``{column: weight}``; the others weigh 1. A column
            of one token (a category, a class) is a small share of a row's loss beside numbers
            written in several tokens; weighting the column a downstream model predicts makes
            SFT spend more on its conditional (docs/backbone-compact.md, "Weighting the
            target"). Defaults to None (every token alike).
        label_columns (list or None): compact backbone: columns a downstream model will
            predict (a classification or regression target). After the language model writes
            a row, each is redrawn from ``p(column | the other columns)`` estimated on the
            training rows: by a bagged gradient-boosting classifier for a column written as
            one token (categorical, boolean, or a number of few values), by a bagged
            gradient-boosting regressor plus a residual of the data's for a number written in
            several tokens (a missing value stays missing). Conditions given at sampling are
            kept. Raises train-on-synthetic utility where the language model's own
            conditional is weaker (docs/backbone-compact.md, "Label columns"). Adds the
            models' fit to ``fit`` and their predictions to sampling. Defaults to None.
        lora (None, dict or peft.LoraConfig): pretrained backbones only: train LoRA adapters
            instead of all weights, in SFT and alignment (a dict holds LoraConfig fields;
            defaults r=8, lora_alpha=16, every linear layer). Saving then stores the adapters
            and the backbone's name, not the base weights. Defaults to None (all weights).
        permutation_rate (float): share of training rows in a random column order (the rest in
            the table's order, which unconditional sampling uses). Defaults to 0.3.
        temperature (float): sampling temperature. Defaults to 1.0.
        resampling_factor (int): candidate rows drawn per sampled row; with 2 or more, ``fit``
            ends by training a classifier to tell real rows from the model's, and sampling keeps
            one candidate per row with probability proportional to the estimated density ratio
            p_data / p_model (compact backbone only; see ``resampling.py``). 4 lowered the
            detection AUC on all five benchmark tables (docs/alignment.md), but sampling costs
            ``resampling_factor`` times as much. Defaults to 1 (off).
        rounds (int): most TabGRAA alignment rounds after SFT; 0 is SFT only. The round with
            the best held-out detection AUC is kept (round 0, the SFT model, included) and
            rounds stop after ``patience`` rounds without improvement. Defaults to 3.
            (See docs/alignment.md for the measurements behind the alignment defaults.)
        objective (str): 'tabgraa' (group-relative, the default), 'dpo', 'kto', 'npo',
            'sft_more' (the same number of steps of supervised training on the real rows), or
            'distill' (the same number of steps of training on the model's own pool, resampled
            with weights ``exp(reward / beta)``).
        reward (str or callable): 'logodds' (the default: log P(real|x) / P(synthetic|x), an
            estimate of log p_data / p_model), 'classifier' (the paper's 1 - |P(real|x) - 0.5|),
            'realism', 'dcr', 'histogram' (classifier-free log p_data / p_model from one- and
            two-column frequencies), or ``reward(real_df, synthetic_df) -> array`` of one
            finite float per synthetic row.
        pool_size (int): rows generated and scored per round. Defaults to 8192.
        group_size (int): (high, low) pairs per alignment step. Defaults to 64.
        beta (float): strength of the implicit KL penalty to the SFT model. Defaults to 1.0.
        alignment_learning_rate (float): AdamW learning rate of the alignment steps (2e-5).
        quantile (float): share of the pool in each of the high and low groups, in (0, 0.5].
        adapter (str): 'lora' (peft LoRA adapters; the reference is the same weights with the
            adapters disabled) or 'full' (all weights, against a frozen copy).
        patience (int): rounds without a better detection AUC before stopping.
        verbose (bool): progress bars. Defaults to False.
        device (str or None): 'cpu', 'cuda', 'mps', or None for the best available.
        seed (int or None): seed of initialisation, data order and the validation split.
            Defaults to 0 (reproducible fits); None draws fresh entropy.
    """

    _model_sdtype_transformers = {'categorical': None, 'boolean': None}

    def __setstate__(self, state):
        # A synthesizer pickled before resampling_factor existed sampled without resampling.
        # One pickled before rank_embedding existed was fitted without it.
        # One pickled before max_base existed was fitted with 256.
        # One pickled before column_weights existed weighted every column alike.
        # One pickled before label_columns existed redrew no column.
        self.__dict__.update({'resampling_factor': 1, 'rank_embedding': False, 'max_base': 256,
                              'column_weights': None, 'label_columns': None, **state})

    def __init__(self, metadata, enforce_min_max_values=True, enforce_rounding=True,
                 locales=['en_US'], epochs=None, batch_size=512, learning_rate=3e-3,
                 anneal_epochs=None, backbone='compact', model_config=None, rank_embedding=None,
                 max_base=None, column_weights=None, label_columns=None, lora=None,
                 permutation_rate=0.3, temperature=1.0, resampling_factor=1, rounds=3,
                 objective='tabgraa', reward='logodds', pool_size=8192, group_size=64, beta=1.0,
                 alignment_learning_rate=2e-5, quantile=0.5, adapter='lora', patience=2,
                 verbose=False, device=None, seed=0):
        _check_int('epochs', epochs, allow_none=True)
        _check_int('batch_size', batch_size)
        _check_int('anneal_epochs', anneal_epochs, allow_none=True, minimum=0)
        if not isinstance(learning_rate, numbers.Real) or not learning_rate > 0:
            raise ValueError(f'learning_rate must be a positive number, got {learning_rate!r}.')
        _check_backbone(backbone)
        compact = isinstance(backbone, str) and backbone == 'compact'
        if not compact and model_config is not None:
            raise ValueError(
                'model_config sizes the compact backbone; it does not apply to a pretrained '
                f'backbone ({backbone!r}). Leave it None.'
            )
        if not compact and anneal_epochs is not None:
            raise ValueError(
                'anneal_epochs applies to the compact backbone\'s SFT; a pretrained backbone '
                f'({backbone!r}) fine-tunes with its own schedule. Leave it None.'
            )
        if rank_embedding is not None and not isinstance(rank_embedding, bool):
            raise ValueError(f'rank_embedding must be True, False or None, got {rank_embedding!r}.')
        if not compact and rank_embedding is not None:
            raise ValueError(
                'rank_embedding applies to the compact backbone\'s numeric tokens; a pretrained '
                f'backbone ({backbone!r}) reads numbers as text. Leave it None.'
            )
        _check_int('max_base', max_base, allow_none=True, minimum=2)
        if column_weights is not None and not compact:
            raise ValueError(
                'column_weights weights the compact backbone\'s SFT loss; a pretrained backbone '
                f'({backbone!r}) trains on text. Leave it None.'
            )
        if label_columns is not None and not compact:
            raise ValueError(
                'label_columns redraws tokens of the compact backbone\'s columnar rows; a '
                f'pretrained backbone ({backbone!r}) writes text. Leave it None.'
            )
        _check_int('resampling_factor', resampling_factor)
        if not compact and resampling_factor != 1:
            raise ValueError(
                'resampling_factor applies to the compact backbone; a pretrained backbone '
                f'({backbone!r}) samples without resampling. Leave it 1.'
            )
        if lora is not None:
            if compact:
                raise ValueError(
                    "lora applies to pretrained backbones; the compact backbone trains all its "
                    "weights (alignment adapters are set with adapter='lora')."
                )
            as_lora_config(lora)  # fail early on a bad config
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
        _check_int('rounds', rounds, minimum=0)
        if objective not in OBJECTIVES:
            raise ValueError(f'objective must be one of {OBJECTIVES}, got {objective!r}.')
        if not callable(reward) and reward not in REWARDS:
            raise ValueError(
                f'reward must be one of {REWARDS} or a callable reward(real_df, synthetic_df), '
                f'got {reward!r}.'
            )
        _check_int('pool_size', pool_size)
        _check_int('group_size', group_size)
        _check_int('patience', patience)
        for name, value in (('beta', beta), ('alignment_learning_rate', alignment_learning_rate)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f'{name} must be a positive number, got {value!r}.')
        if isinstance(quantile, bool) or not isinstance(quantile, numbers.Real) or not (
                0 < quantile <= 0.5):
            raise ValueError(f'quantile must be a number in (0, 0.5], got {quantile!r}.')
        if adapter not in ADAPTERS:
            raise ValueError(f'adapter must be one of {ADAPTERS}, got {adapter!r}.')
        if rounds and 2 * group_size > pool_size * quantile * 2:
            raise ValueError(
                f'group_size ({group_size}) needs at least {group_size} rows in each of the high '
                f'and low groups, but pool_size * quantile is {pool_size * quantile:g}; raise '
                'pool_size or lower group_size.'
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            raise ValueError(f'seed must be an integer or None, got {seed!r}.')
        resolve_device(device)  # fail early on a bad device name
        super().__init__(metadata, enforce_min_max_values=enforce_min_max_values,
                         enforce_rounding=enforce_rounding, locales=locales)
        _check_column_weights(column_weights, list(self._get_table_metadata().columns))
        _check_label_columns(label_columns, list(self._get_table_metadata().columns))
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.anneal_epochs = anneal_epochs
        self.backbone = backbone
        self.model_config = model_config
        self.rank_embedding = rank_embedding
        self.max_base = max_base
        self.column_weights = column_weights
        self.label_columns = label_columns
        self.lora = lora
        self.permutation_rate = permutation_rate
        self.temperature = temperature
        self.resampling_factor = resampling_factor
        self.rounds = rounds
        self.objective = objective
        self.reward = reward
        self.pool_size = pool_size
        self.group_size = group_size
        self.beta = beta
        self.alignment_learning_rate = alignment_learning_rate
        self.quantile = quantile
        self.adapter = adapter
        self.patience = patience
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
        max_base = MAX_BASE if self.max_base is None else int(self.max_base)
        if isinstance(self.backbone, str) and self.backbone == 'compact':
            self._model = TabularLM(
                epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                permutation_rate=self.permutation_rate, model_config=self.model_config,
                anneal_epochs=ANNEAL_EPOCHS if self.anneal_epochs is None else self.anneal_epochs,
                resampling_factor=self.resampling_factor,
                rank_embedding=RANK_EMBEDDING if self.rank_embedding is None
                else self.rank_embedding,
                max_base=max_base, column_weights=self.column_weights,
                label_columns=self.label_columns, device=self.device,
                seed=seed, verbose=self.verbose,
            )
        else:
            self._model = TextLM(
                os.path.expanduser(os.fspath(self.backbone)), lora=self.lora,
                epochs=self.epochs, batch_size=self.batch_size,
                learning_rate=self.learning_rate, permutation_rate=self.permutation_rate,
                max_base=max_base, device=self.device, seed=seed, verbose=self.verbose,
            )
        alignment = None
        if self.rounds:
            alignment = {
                'rounds': self.rounds, 'objective': self.objective, 'pool_size': self.pool_size,
                'group_size': self.group_size, 'beta': self.beta,
                'learning_rate': self.alignment_learning_rate, 'quantile': self.quantile,
                'adapter': self.adapter, 'patience': self.patience,
                'reward': self.reward if isinstance(self.reward, str) else 'callable',
                'user_reward': self._user_reward() if callable(self.reward) else None,
            }
        self._model.fit(processed_data, alignment=alignment)

    def _user_reward(self):
        """The user's reward sees rows as the user knows them (reverse-transformed)."""
        reverse = self._data_processor.reverse_transform
        user_reward = self.reward

        def reward(real_processed, synthetic_processed):
            return user_reward(reverse(real_processed), reverse(synthetic_processed))

        return reward

    def _sample(self, num_rows, conditions=None):
        condition_frame = None
        if conditions:
            modelled = [c for c in conditions if c in self._model.codec.column_names]
            condition_frame = pd.DataFrame({
                c: [np.nan if _is_missing_marker(conditions[c]) else conditions[c]]
                for c in modelled
            })
        return self._model.sample(num_rows, condition_frame, temperature=self.temperature)

    def save(self, filepath):
        """Save the synthesizer with cloudpickle (SDV's format). In a multi-process launch
        (``accelerate launch``), process 0 writes the file and the others wait for it."""
        model = getattr(self, '_model', None)
        parallel = DataParallel(model.device if model is not None else 'cpu')
        if parallel.is_main:
            super().save(filepath)
        parallel.barrier()

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
        """SFT loss per epoch: columns ``Epoch``, ``Train Loss``, ``Validation Loss`` (and, for the
        compact backbone, ``Phase``: 'sft', or 'anneal' for the epochs after an early stop)."""
        if not self._fitted or self._model is None:
            raise NotFittedError('Loss values are not available yet. Please fit your synthesizer first.')
        return self._model.loss_values.rename(columns={
            'epoch': 'Epoch', 'phase': 'Phase', 'train_loss': 'Train Loss',
            'val_loss': 'Validation Loss'})

    def get_alignment_history(self):
        """One row per alignment round (round 0 = the SFT model): ``round``, ``reward_mean``,
        ``reward_high_mean``, ``reward_low_mean``, ``loss``, ``detection_auc`` (held-out real rows
        vs the round's pool; 0.5 is ideal), its standard error ``detection_auc_se`` and
        ``detection_auc_paired_se`` (of its difference to the best earlier round, paired over
        the held-out rows), ``holdout_fidelity`` (the pool's one- and two-column histograms
        against the held-out rows; 1 is identical), ``dcr_share``, ``distinct_share``,
        ``mean_entropy`` and ``kept`` (the round whose weights the synthesizer holds)."""
        if not self._fitted or self._model is None:
            raise NotFittedError('No alignment history yet. Please fit your synthesizer first.')
        columns = ['round', 'reward_mean', 'reward_high_mean', 'reward_low_mean', 'loss',
                   'detection_auc', 'detection_auc_se', 'detection_auc_paired_se',
                   'holdout_fidelity', 'dcr_share', 'distinct_share', 'mean_entropy', 'kept']
        return pd.DataFrame(self._model.alignment_history, columns=columns)

    def plot_alignment_history(self):
        """Matplotlib figure: mean reward (all, high, low groups) and detection AUC per round."""
        import matplotlib.pyplot as plt

        history = self.get_alignment_history()
        figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
        for column, label in (('reward_mean', 'pool'), ('reward_high_mean', 'high group'),
                              ('reward_low_mean', 'low group')):
            left.plot(history['round'], history[column], marker='o', label=label)
        left.set(xlabel='round', ylabel='reward', title='Reward of the scored pool')
        left.legend()
        right.plot(history['round'], history['detection_auc'], marker='o')
        kept = history[history['kept']]
        right.scatter(kept['round'], kept['detection_auc'], s=120, facecolors='none',
                      edgecolors='red', label='kept')
        right.axhline(0.5, color='grey', linestyle=':')
        right.set(xlabel='round', ylabel='AUC', title='Held-out detection AUC (0.5 ideal)')
        right.legend()
        figure.tight_layout()
        return figure
