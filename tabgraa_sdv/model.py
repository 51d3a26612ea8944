"""TabularLM: codec + compact GPT-2 + SFT + constrained sampling, with no SDV in sight.

``TabularLM.fit(df)`` learns the table; ``sample(n, conditions)`` returns a DataFrame in the same
representation. The SDV synthesizer is a thin wrapper around this object (its ``_model``).
"""

import copy
import warnings

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from tabgraa_sdv.backbone import (SlotLayout, build_compact, compact_config, fold_rank_embedding,
                                  install_rank_embedding, slot_log_probs)
from tabgraa_sdv.codec import ColumnarCodec
from tabgraa_sdv.devices import (DataParallel, generator_state, make_generator,
                                 resolve_device, restore_generator)
from tabgraa_sdv.labels import LabelModel
from tabgraa_sdv.resampling import MIN_RESAMPLING_ROWS, RESAMPLER_ROWS, RatioResampler
from tabgraa_sdv.sampling import DecodingPlan, sample_tokens
from tabgraa_sdv.sft import ANNEAL_EPOCHS, WEIGHT_DECAY, slot_orders, split_rows, train_sft


# SFT with a rank term in numeric tokens' embeddings (backbone.RankEmbedding) unless told not to.
# On magic it lowered the validation loss by 0.05 and the tree detection AUC by 0.043-0.065 on
# three seeds, and raised TSTR by 0.014-0.020 (docs/backbone-compact.md, "The rank embedding").
RANK_EMBEDDING = True
# Most tokens in a numeric slot: quantile bins of a binned column, the base of its offset digits.
# 128 helped magic (SFT-only, three seeds: quality +0.014, tree detection -0.022) but not
# shoppers, at 1.3-2.3x the SFT time; see docs/backbone-compact.md, "Fewer bins".
MAX_BASE = 256


class TabularLM:
    """A causal language model over the rows of one table.

    Args mirror :class:`tabgraa_sdv.TabGRAASynthesizer`'s model parameters, plus
    ``weight_decay`` (SFT's AdamW decay; 0.1 did not change magic's fit, see
    docs/backbone-compact.md, "Learning rate and weight decay without dropout").
    """

    def __init__(self, epochs=None, batch_size=512, learning_rate=3e-3, permutation_rate=0.3,
                 model_config=None, max_base=MAX_BASE, sample_batch_size=4096, device=None, seed=0,
                 verbose=False, anneal_epochs=ANNEAL_EPOCHS, resampling_factor=1,
                 rank_embedding=RANK_EMBEDDING, column_weights=None, label_columns=None,
                 weight_decay=WEIGHT_DECAY):
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.label_columns = list(label_columns or [])
        self.column_weights = dict(column_weights or {})
        self.rank_embedding = rank_embedding
        self.resampling_factor = resampling_factor
        self.anneal_epochs = anneal_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.permutation_rate = permutation_rate
        self.model_config = dict(model_config or {})
        self.max_base = max_base
        self.sample_batch_size = sample_batch_size
        self.device = resolve_device(device)
        self.seed = seed
        self.verbose = verbose
        self.codec = None
        self.model = None
        self.history = []
        self.alignment_history = []
        self.resampler = None
        self.label_model = None
        self._generator = None

    # ----------------------------------------------------------------------------- fitting
    def fit(self, data, alignment=None):
        """SFT on ``data``; then, if ``alignment`` (a dict of :class:`Aligner` options with
        ``rounds > 0``, plus ``reward``/``user_reward``) is given, TabGRAA rounds."""
        if len(data) == 0:
            raise ValueError('The training data has no rows.')
        self.codec = ColumnarCodec(max_base=self.max_base).fit(data)
        tokens = self.codec.encode(data)
        # Built (and its columns checked) before training, fitted after alignment.
        label_model = (LabelModel(self.codec, self.label_columns, seed=self.seed)
                       if self.label_columns else None)
        self.label_model = None
        config = compact_config(self.codec.vocab_size, self.codec.n_slots, len(data),
                                **self.model_config)
        self.model = build_compact(config, seed=self.seed).to(self.device)
        if self.rank_embedding:
            install_rank_embedding(self.model, self.codec.token_ranks(), self.codec.slot_start,
                                   self.codec.slot_size)
        self.layout = SlotLayout(self.codec.slot_start, self.codec.slot_size, self.device)
        train_index, val_index = split_rows(len(tokens), 0.1, self.seed)
        self.history = train_sft(
            self.model, tokens[train_index], tokens[val_index], self.layout,
            self.codec.slot_column, self.codec.slot_position,
            epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
            permutation_rate=self.permutation_rate, anneal_epochs=self.anneal_epochs,
            weight_decay=self.weight_decay, slot_weights=self.slot_weights(), seed=self.seed,
            device=self.device, verbose=self.verbose,
        )
        fold_rank_embedding(self.model)  # a plain GPT-2 from here on
        self.alignment_history = []
        from tabgraa_sdv.alignment import align_after_sft

        align_after_sft(self, tokens, train_index, val_index, alignment)
        # The labels' classifiers learn from every real row, like the resampler's; neither
        # enters the language model's loss.
        self.label_model = label_model.fit(tokens) if label_model is not None else None
        self.fit_resampler(tokens)
        return self

    def slot_weights(self):
        """SFT's weight of each slot (``[n_slots]``): its column's in ``column_weights``, else 1;
        None when no column is weighted, so the loss is the plain mean NLL per token."""
        if not self.column_weights:
            return None
        names = self.codec.column_names
        unknown = sorted(set(self.column_weights) - set(names))
        if unknown:
            raise ValueError(
                f'column_weights names {unknown}, which the model does not write (its columns: '
                f'{names}); weight only the table\'s modelled columns.'
            )
        column_weight = np.array([float(self.column_weights.get(name, 1.0)) for name in names])
        return column_weight[self.codec.slot_column]

    def fit_resampler(self, tokens):
        """With ``resampling_factor > 1``: the classifier of :class:`RatioResampler`, from the
        real token rows (at most ``RESAMPLER_ROWS``) and as many rows of the fitted model.
        Resets the sampler's random state, as ``fit`` leaves it."""
        self.resampler = None
        if self.resampling_factor > 1 and len(tokens) < MIN_RESAMPLING_ROWS:
            warnings.warn(
                f'Only {len(tokens)} rows: too few to train the resampling classifier, so rows '
                f'are sampled without resampling (resampling_factor needs {MIN_RESAMPLING_ROWS}).'
            )
        elif self.resampling_factor > 1:
            n = min(len(tokens), RESAMPLER_ROWS)
            real = tokens[np.random.default_rng(self.seed).choice(len(tokens), n, replace=False)]
            self.set_random_state(self.seed + 2)  # apart from the alignment pools' stream
            # The classifier learns the ratio against the rows it will choose among: with
            # label columns, those carry redrawn labels.
            model_rows = self.relabel(self.sample_token_rows(n), self._generator)
            self.resampler = RatioResampler(self.codec, self.resampling_factor, self.seed).fit(
                real, model_rows)
        self.set_random_state(self.seed)

    def relabel(self, tokens, generator, fixed_slots=()):
        """``tokens`` with the label columns redrawn (see ``labels.py``); unchanged without."""
        if self.label_model is None:
            return tokens
        return self.label_model.redraw(tokens, generator, fixed_slots)

    def align(self, train_tokens, holdout_tokens, reward='logodds', user_reward=None,
              record=False, **options):
        """TabGRAA rounds after SFT (see ``alignment.py``). ``train_tokens`` feed the reward
        classifier, ``holdout_tokens`` (never seen by it) the detection AUC that picks the
        round to keep. Returns the :class:`Aligner` (its ``history``)."""
        from tabgraa_sdv.alignment import align_lm

        return align_lm(self, self.codec, train_tokens, holdout_tokens, reward=reward,
                        user_reward=user_reward, record=record, **options)

    def alignment_lora_config(self, rank):
        """LoRA adapters for alignment: every projection of the compact GPT-2 (Conv1D)."""
        from peft import LoraConfig

        return LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=['c_attn', 'c_proj', 'c_fc'],
                          fan_in_fan_out=True, lora_dropout=0.0, bias='none')

    def sample_token_rows(self, num_rows, temperature=1.0):
        """Unconditional token rows ``[num_rows, n_slots]`` from the current model."""
        if self._generator is None:
            self.set_random_state(self.seed)
        plan = DecodingPlan(self.codec, self.device)
        return DataParallel(self.device).sample(num_rows, self._generator, lambda rows, generator:
            sample_tokens(self.model, plan, rows.stop - rows.start, temperature=temperature,
                          batch_size=self.sample_batch_size, generator=generator,
                          device=self.device))

    # ---------------------------------------------------------------------------- sampling
    def set_random_state(self, random_state):
        """Seed the sampler (an int), restore a saved generator state, or ``None`` for entropy."""
        self._generator = make_generator(random_state, self.device)

    def sample(self, num_rows, conditions=None, temperature=1.0):
        """Sample ``num_rows`` rows. ``conditions`` is a DataFrame of ``num_rows`` rows (or one
        row, broadcast) holding the values some columns must take; they are put first in each
        sequence, so the output carries exactly those values."""
        if self.model is None:
            raise ValueError('The model is not fitted yet; call fit first.')
        prefix_slots, prefix_tokens = (), None
        if conditions is not None and conditions.shape[1]:
            conditions = conditions.reset_index(drop=True)
            if len(conditions) == 1 and num_rows != 1:
                conditions = conditions.loc[np.zeros(num_rows, dtype=int)].reset_index(drop=True)
            if len(conditions) != num_rows:
                raise ValueError(
                    f'conditions has {len(conditions)} rows but {num_rows} rows were requested.'
                )
            columns = list(conditions.columns)
            prefix_slots = self.codec.slots_of(columns)
            prefix_tokens = self.codec.encode_columns(conditions, columns) + \
                self.codec.slot_start[prefix_slots][None, :]
        plan = DecodingPlan(self.codec, self.device)
        if self._generator is None:
            self.set_random_state(self.seed)
        parallel = DataParallel(self.device)
        factor = self.resampler.factor if self.resampler is not None else 1

        def draw(rows, generator):
            # One batch of output rows at a time (the same draws as one call over all of them).
            # With a resampler each output row gets `factor` candidates (its prefix repeated)
            # and keeps one, so the candidates held at once stay bounded by the batch size.
            chunks = [np.empty((0, plan.n_slots), dtype=np.int64)]
            for begin in range(rows.start, rows.stop, self.sample_batch_size):
                chunk = slice(begin, min(rows.stop, begin + self.sample_batch_size))
                tokens = sample_tokens(
                    self.model, plan, factor * (chunk.stop - chunk.start),
                    prefix_slots=prefix_slots, prefix_tokens=None if prefix_tokens is None
                    else np.tile(prefix_tokens[chunk], (factor, 1)),
                    temperature=temperature, batch_size=self.sample_batch_size,
                    generator=generator, device=self.device)
                tokens = self.relabel(tokens, generator, prefix_slots)
                chunks.append(tokens if factor == 1 else self.resampler.choose(tokens, generator))
                bar.update(chunk.stop - chunk.start)
            return np.concatenate(chunks)

        with tqdm(total=num_rows, desc='Sampling', unit='row', disable=not (
                self.verbose and parallel.is_main and num_rows >= 50_000)) as bar:
            tokens = parallel.sample(num_rows, self._generator, draw)
        return self.codec.decode(tokens)

    # ---------------------------------------------------------------------- log-likelihood
    def log_prob(self, data, batch_size=4096, model=None):
        """Sequence log-likelihood of each row (canonical column order): ``[rows]`` array."""
        tokens = torch.as_tensor(self.codec.encode(data), device=self.device)
        model = self.model if model is None else model
        order = slot_orders(len(tokens), self.codec.slot_column, self.codec.slot_position, 0.0,
                            None, self.device)
        out = []
        with torch.no_grad():
            model.eval()
            for begin in range(0, len(tokens), batch_size):
                out.append(slot_log_probs(model, tokens[begin:begin + batch_size],
                                          order[begin:begin + batch_size], self.layout).sum(1))
        return torch.cat(out).cpu().numpy()

    def sequence_log_probs(self, tokens, model=None, grad=False, batch_size=4096):
        """Sequence log-likelihood (canonical column order) of token rows under ``model`` (the
        current one by default): a ``[rows]`` tensor, differentiable when ``grad``."""
        model = self.model if model is None else model
        tokens = torch.as_tensor(tokens, device=self.device)
        order = slot_orders(len(tokens), self.codec.slot_column, self.codec.slot_position, 0.0,
                            None, self.device)
        if grad:
            return slot_log_probs(model, tokens, order, self.layout).sum(1)
        with torch.no_grad():
            return torch.cat([slot_log_probs(model, tokens[i:i + batch_size],
                                             order[i:i + batch_size], self.layout).sum(1)
                              for i in range(0, len(tokens), batch_size)])

    @property
    def loss_values(self):
        return pd.DataFrame(self.history, columns=['epoch', 'phase', 'train_loss', 'val_loss'])

    def to(self, device):
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.layout = SlotLayout(self.codec.slot_start, self.codec.slot_size, self.device)
        self._generator = None
        return self

    def __getstate__(self):
        # Generators don't pickle; the sampler state is kept as (device type, state tensor).
        state = dict(self.__dict__)
        generator = state.pop('_generator', None)
        state['_generator_state'] = generator_state(generator)
        state['device'] = str(self.device)
        state.pop('layout', None)
        if self.model is not None and self.device.type != 'cpu':
            # Saved on an accelerator, loadable anywhere: pickle CPU weights.
            state['model'] = copy.deepcopy(self.model).cpu()
        return state

    def __setstate__(self, state):
        saved_generator = state.pop('_generator_state', None)
        # Models pickled before resampling or label columns existed sample without them.
        state = {'resampler': None, 'resampling_factor': 1, 'rank_embedding': False,
                 'label_model': None, 'label_columns': [], **state}
        self.__dict__.update(state)
        self.device = torch.device(state['device'])
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            self.device = torch.device('cpu')
        if self.model is not None:
            self.model.to(self.device)
            self.layout = SlotLayout(self.codec.slot_start, self.codec.slot_size, self.device)
        self._generator = restore_generator(saved_generator, self.device)
