"""TextLM: a pretrained Hugging Face causal LM over a table's rows as text (GReaT), SDV-free.

Same interface as :class:`tabgraa_sdv.model.TabularLM` (``fit``, ``sample``,
``sample_token_rows``, ``sequence_log_probs``, ``set_random_state``, ``loss_values``,
``alignment_history``, ``align``), so the synthesizer and the TabGRAA aligner drive either.

* The backbone is any ``AutoModelForCausalLM`` name or local directory, with its own tokenizer.
* Rows are text (``text_codec.py``): "col is value, ..." with a random column order for a share of
  the training rows (``permutation_rate``), and decoding is grammar-constrained, so every sampled
  row is valid, from an untrained model too.
* Training and scoring use the constrained distribution the sampler draws from: at every token the
  softmax runs over the grammar's candidates only (forced tokens have probability 1), computed as
  ``hidden @ W[candidates].T`` rather than over the whole vocabulary.
* ``lora`` (a ``peft.LoraConfig`` or a dict of its fields) trains adapters instead of all weights,
  in SFT and in alignment; a pickled model then holds the adapters and the backbone's name, not a
  copy of the base weights, and is rebuilt from the backbone (offline from a local directory).
"""

import copy
import math
import os
import warnings

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from tabgraa_sdv.backbone import body
from tabgraa_sdv.devices import (DataParallel, generator_state, make_generator,
                                 resolve_device, restore_generator)
from tabgraa_sdv.sampling import cache_keyword, cached_forward, draw
from tabgraa_sdv.sft import default_epochs, split_rows
from tabgraa_sdv.text_codec import TextCodec

LORA_DEFAULTS = {'r': 8, 'lora_alpha': 16, 'lora_dropout': 0.0, 'target_modules': 'all-linear'}


# ------------------------------------------------------------------------------ the backbone
def as_lora_config(lora):
    """``None``, a ``peft.LoraConfig`` (copied) or a dict of its fields (defaults: r 8, alpha 16,
    no dropout, every linear layer but the output)."""
    if lora is None:
        return None
    from peft import LoraConfig

    if isinstance(lora, LoraConfig):
        return copy.deepcopy(lora)
    if isinstance(lora, dict):
        try:
            return LoraConfig(**{**LORA_DEFAULTS, **lora})
        except (TypeError, ValueError) as error:
            raise ValueError(f'lora is not a valid LoraConfig: {error}') from error
    raise ValueError(f'lora must be None, a dict or a peft.LoraConfig, got {lora!r}.')


def _hub_offline():
    try:
        from huggingface_hub import constants
        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover
        return False


def _from_pretrained(cls, name, **kwargs):
    """Local files first (a directory, or the hub cache), then the hub unless offline."""
    try:
        return cls.from_pretrained(name, local_files_only=True, **kwargs)
    except (OSError, ValueError):
        if os.path.isdir(name) or _hub_offline():
            raise
    return cls.from_pretrained(name, **kwargs)


def load_backbone(name, weights_only=True):
    """Tokenizer and model of ``name`` (model from its config alone if not ``weights_only``),
    with a clear error when they cannot be loaded."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = _from_pretrained(AutoTokenizer, name)
        if weights_only:
            model = _from_pretrained(AutoModelForCausalLM, name, dtype=torch.float32)
        else:
            config = _from_pretrained(AutoConfig, name)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    except Exception as error:  # noqa: BLE001 - every loading failure gets the same advice
        raise ValueError(
            f'Could not load the backbone {name!r} ({type(error).__name__}: '
            f'{str(error).splitlines()[0] if str(error) else ""}). Pass the name of a Hugging '
            'Face causal language model, or, offline, a local directory holding one: save it '
            'once with model.save_pretrained(path) and tokenizer.save_pretrained(path).'
        ) from error
    return tokenizer, model


def _output_layer(model):
    if hasattr(model, 'get_base_model'):
        model = model.get_base_model()
    return model.get_output_embeddings()


def candidate_logits(model, hidden, candidates):
    """Logits ``[n, K]`` of the candidate token ids ``[n, K]`` (-1 = none: ``-inf``)."""
    valid = candidates >= 0
    head = _output_layer(model)
    if type(head) is torch.nn.Linear:  # only the rows of the candidates
        union = torch.unique(candidates[valid])
        index = torch.searchsorted(union, candidates.clamp(min=0)).clamp(max=len(union) - 1)
        bias = head.bias[union] if head.bias is not None else None
        logits = F.linear(hidden, head.weight[union], bias).gather(1, index)
    else:  # a wrapped output layer (e.g. with its own adapter): the full vocabulary
        logits = head(hidden).gather(1, candidates.clamp(min=0))
    return logits.float().masked_fill(~valid, float('-inf'))


def constrained_log_probs(model, ids, sets, set_table):
    """Per-row sums of the constrained log-probability of ``ids[:, 1:]`` and the number of
    tokens that were a choice. ``sets``/``set_table`` as from :meth:`TextCodec.sequences`."""
    hidden = body(model)(input_ids=ids[:, :-1], use_cache=False).last_hidden_state
    target_sets, targets = sets[:, 1:], ids[:, 1:]
    rows, steps = (target_sets > 0).nonzero(as_tuple=True)
    sums = torch.zeros(len(ids), device=ids.device)
    if len(rows) == 0:
        return sums + hidden.sum() * 0, 0
    candidates = set_table[target_sets[rows, steps]]
    logits = candidate_logits(model, hidden[rows, steps], candidates)
    chosen = (candidates == targets[rows, steps][:, None]).float().argmax(dim=1)
    log_probs = F.log_softmax(logits, dim=-1).gather(1, chosen[:, None]).squeeze(1)
    return sums.index_add(0, rows, log_probs), len(rows)


@torch.no_grad()
def sample_text_rows(model, codec, n_rows, order, conditions=None, temperature=1.0,
                     batch_size=256, generator=None, device='cpu', progress=None):
    """Columnar token rows ``[n_rows, slots]`` drawn token by token under the grammar, with a
    KV cache. ``conditions``: column index -> local codes ``[n_rows, its slots]``."""
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature!r}.')
    out = np.empty((n_rows, codec.grid.n_slots), dtype=np.int64)
    decoder = body(model)
    keyword = cache_keyword(decoder)
    was_training = model.training
    model.eval()
    try:
        for begin in range(0, n_rows, batch_size):
            end = min(n_rows, begin + batch_size)
            rows = codec.decoder(order, end - begin, {
                c: codes[begin:end] for c, codes in (conditions or {}).items()})
            inputs = torch.full((end - begin, 1), codec.bos, dtype=torch.long, device=device)
            cache = None
            while True:
                hidden, cache = cached_forward(decoder, keyword, cache, input_ids=inputs)
                forced, free, candidates = rows.next_options()
                tokens = torch.as_tensor(forced, dtype=torch.long, device=device)
                if free:
                    width = max(len(c) for c in candidates)
                    table = np.full((len(free), width), -1, dtype=np.int64)
                    for i, c in enumerate(candidates):
                        table[i, :len(c)] = c
                    table = torch.as_tensor(table, device=device)
                    free_index = torch.as_tensor(free, device=device)
                    logits = candidate_logits(model, hidden[free_index], table)
                    if temperature != 1.0:
                        logits = logits / temperature
                    choice = draw(logits, generator)
                    tokens[free_index] = table.gather(1, choice[:, None]).squeeze(1)
                rows.advance(tokens.tolist())
                if rows.finished:
                    break
                inputs = tokens[:, None]
            out[begin:end] = rows.grid_tokens()
            if progress is not None:
                progress.update(end - begin)
    finally:
        model.train(was_training)
    return out


def column_orders(n_rows, n_columns, permutation_rate, rng):
    """Column order of each row: the table's order, or (with ``permutation_rate``) random."""
    orders = np.tile(np.arange(n_columns), (n_rows, 1))
    permute = rng.random(n_rows) < permutation_rate
    if permute.any():
        orders[permute] = rng.random((int(permute.sum()), n_columns)).argsort(axis=1)
    return orders


# ------------------------------------------------------------------------------- the model
class TextLM:
    """A pretrained causal LM fine-tuned on a table's rows as text.

    Args:
        backbone (str): Hugging Face model name or local directory (model and tokenizer).
        lora (None, dict or peft.LoraConfig): train LoRA adapters instead of all weights.
        epochs, batch_size, learning_rate, permutation_rate, device, seed, verbose: as for
            :class:`~tabgraa_sdv.model.TabularLM`.
        micro_batch_size (int): rows per forward pass (gradients are accumulated up to
            ``batch_size``), which bounds memory.
        sample_batch_size (int): rows decoded together (KV cache memory grows with it).
    """

    def __init__(self, backbone, lora=None, epochs=None, batch_size=64, learning_rate=5e-5,
                 permutation_rate=0.3, micro_batch_size=32, sample_batch_size=256,
                 max_base=256, device=None, seed=0, verbose=False):
        self.backbone = os.fspath(backbone)
        self.lora = as_lora_config(lora)
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.permutation_rate = permutation_rate
        self.micro_batch_size = micro_batch_size
        self.sample_batch_size = sample_batch_size
        self.max_base = max_base
        self.device = resolve_device(device)
        self.seed = seed
        self.verbose = verbose
        self.codec = None
        self.model = None
        self.tokenizer = None
        self.history = []
        self.alignment_history = []
        self._generator = None
        self._table = None

    # ---------------------------------------------------------------------------- fitting
    def prepare(self, data):
        """Load the backbone and build the text codec for ``data``, without training."""
        if len(data) == 0:
            raise ValueError('The training data has no rows.')
        self.tokenizer, model = load_backbone(self.backbone)
        self.codec = TextCodec(max_base=self.max_base).fit(data, self.tokenizer)
        limit = getattr(model.config, 'max_position_embeddings', None) or \
            getattr(model.config, 'n_positions', None)
        if limit is not None and self.codec.max_length > limit:
            raise ValueError(
                f'A row of this table can take {self.codec.max_length} tokens, more than the '
                f'{limit} positions of backbone {self.backbone!r}; use fewer or shorter columns.'
            )
        vocabulary = _output_layer(model).weight.shape[0]
        if max(self.codec.bos, self.codec.eos) >= vocabulary:
            raise ValueError(f'The tokenizer of {self.backbone!r} does not match its model.')
        torch.manual_seed(self.seed)
        if self.lora is not None:
            from peft import get_peft_model

            model = get_peft_model(model, copy.deepcopy(self.lora))
        self.model = model.to(self.device).eval()
        self._table = None
        self.history, self.alignment_history = [], []
        return self

    def fit(self, data, alignment=None):
        """SFT on ``data``; then, if ``alignment`` (a dict of :class:`Aligner` options with
        ``rounds > 0``, plus ``reward``/``user_reward``) is given, TabGRAA rounds."""
        if self.lora is None and self.learning_rate > 1e-3:
            warnings.warn(
                f'learning_rate {self.learning_rate:g} is high for fine-tuning all the weights of '
                'a pretrained model (GReaT uses 5e-5); lower it, or train LoRA adapters (lora=).'
            )
        self.prepare(data)
        tokens = self.codec.encode(data)
        train_index, val_index = split_rows(len(tokens), 0.1, self.seed)
        self.history = self._train_sft(tokens[train_index], tokens[val_index])
        from tabgraa_sdv.alignment import align_after_sft

        align_after_sft(self, tokens, train_index, val_index, alignment)
        self.set_random_state(self.seed)
        return self

    def _set_table(self):
        table = self.codec.set_table()
        if self._table is None or self._table.shape != table.shape:
            self._table = torch.as_tensor(table, device=self.device)
        return self._table

    def _batch(self, value_ids, orders):
        ids, sets = self.codec.sequences(value_ids, orders)
        return (torch.as_tensor(ids, device=self.device),
                torch.as_tensor(sets, device=self.device), self._set_table())

    def _nll_step(self, value_ids, orders, parallel, train=True):
        """Summed negative log-likelihood of this process's share of a batch, and the number of
        chosen tokens in the whole batch; with ``train``, the gradient of their ratio (the
        batch's mean per token) accumulates over micro-batches, which bounds memory."""
        mine = parallel.shard(len(value_ids))
        value_ids, orders = value_ids[mine], orders[mine]
        chunks = [self._batch(value_ids[i:i + self.micro_batch_size],
                              orders[i:i + self.micro_batch_size])
                  for i in range(0, len(value_ids), self.micro_batch_size)]
        n_free = int(parallel.sum(sum(int((sets[:, 1:] > 0).sum()) for _, sets, _ in chunks)))
        total = 0.0
        if n_free == 0:
            return total, 0
        for ids, sets, table in chunks:
            with torch.set_grad_enabled(train):
                nll = -constrained_log_probs(self.model, ids, sets, table)[0].sum()
            if train:
                (nll / n_free).backward()
            total += nll.item()
        return total, n_free

    def _train_sft(self, train_tokens, val_tokens, weight_decay=0.01, patience=4):
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        parallel = DataParallel(self.device)
        n_columns = self.codec.n_columns
        train_ids = self.codec.value_ids(train_tokens)
        val_ids = self.codec.value_ids(val_tokens) if len(val_tokens) else None
        val_orders = column_orders(len(val_tokens), n_columns, self.permutation_rate, rng)
        # The pretrained backbone keeps the bound it was measured with (1.5 M row passes).
        max_epochs = self.epochs if self.epochs is not None else default_epochs(
            len(train_ids), row_passes=1_500_000)
        batch_size = max(1, min(self.batch_size, len(train_ids)))
        steps = max_epochs * math.ceil(len(train_ids) / batch_size)
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        parallel.broadcast_module(self.model)
        optimizer = torch.optim.AdamW(parameters, lr=self.learning_rate, weight_decay=weight_decay)
        scheduler = get_cosine_schedule_with_warmup(
            optimizer, num_warmup_steps=min(100, steps // 10), num_training_steps=steps)
        history, best = [], (math.inf, None, 0)
        bar = tqdm(total=max_epochs, desc='SFT', unit='epoch',
                   disable=not (self.verbose and parallel.is_main))
        for epoch in range(1, max_epochs + 1):
            self.model.train()
            permutation = rng.permutation(len(train_ids))
            total, count = 0.0, 0
            for begin in range(0, len(permutation), batch_size):
                batch = train_ids[permutation[begin:begin + batch_size]]
                orders = column_orders(len(batch), n_columns, self.permutation_rate, rng)
                optimizer.zero_grad(set_to_none=True)
                nll, n = self._nll_step(batch, orders, parallel)
                if n:
                    parallel.sum_gradients(parameters)
                    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
                    optimizer.step()
                scheduler.step()
                total += nll
                count += n
            record = {'epoch': epoch, 'train_loss': parallel.sum(total) / max(count, 1),
                      'val_loss': math.nan}
            if val_ids is not None:
                self.model.eval()
                losses = [self._nll_step(val_ids[i:i + batch_size], val_orders[i:i + batch_size],
                                         parallel, train=False)
                          for i in range(0, len(val_ids), batch_size)]
                n_val = sum(n for _, n in losses)
                record['val_loss'] = parallel.sum(sum(l for l, _ in losses)) / n_val \
                    if n_val else 0.0
            history.append(record)
            bar.update(1)
            bar.set_postfix(train=f"{record['train_loss']:.4f}", val=f"{record['val_loss']:.4f}")
            if val_ids is not None:
                if record['val_loss'] < best[0] - 1e-4:
                    state = {k: v.detach().clone() for k, v in self.model.state_dict().items()
                             if k in trainable}
                    best = (record['val_loss'], state, epoch)
                elif epoch - best[2] >= patience:
                    break
        bar.close()
        if best[1] is not None:
            self.model.load_state_dict(best[1], strict=False)
        self.model.eval()
        return history

    def align(self, train_tokens, holdout_tokens, reward='logodds', user_reward=None,
              record=False, **options):
        """TabGRAA rounds (see :meth:`tabgraa_sdv.model.TabularLM.align`)."""
        from tabgraa_sdv.alignment import align_lm

        return align_lm(self, self.codec.grid, train_tokens, holdout_tokens, reward=reward,
                        user_reward=user_reward, record=record, **options)

    def alignment_lora_config(self, rank):
        """Adapters for aligning a fully fine-tuned backbone: every linear layer but the
        output. (With ``lora=``, alignment trains the SFT adapters on instead.)"""
        from peft import LoraConfig

        return LoraConfig(r=rank, lora_alpha=2 * rank, target_modules='all-linear',
                          lora_dropout=0.0, bias='none')

    # ---------------------------------------------------------------------------- sampling
    def set_random_state(self, random_state):
        """Seed the sampler (an int), restore a saved generator state, or ``None`` for entropy."""
        self._generator = make_generator(random_state, self.device)

    def _check_fitted(self):
        if self.model is None:
            raise ValueError('The model is not fitted yet; call fit first.')

    def sample_token_rows(self, num_rows, temperature=1.0):
        """Unconditional columnar token rows ``[num_rows, slots]`` from the current model."""
        self._check_fitted()
        if self._generator is None:
            self.set_random_state(self.seed)
        return DataParallel(self.device).sample(num_rows, self._generator, lambda rows, generator:
            sample_text_rows(self.model, self.codec, rows.stop - rows.start,
                             range(self.codec.n_columns), temperature=temperature,
                             batch_size=self.sample_batch_size, generator=generator,
                             device=self.device))

    def sample(self, num_rows, conditions=None, temperature=1.0):
        """Sample ``num_rows`` rows; ``conditions`` as for :meth:`TabularLM.sample` (the
        condition columns are written first, so the rows carry exactly those values)."""
        self._check_fitted()
        order, forced = list(range(self.codec.n_columns)), {}
        if conditions is not None and conditions.shape[1]:
            conditions = conditions.reset_index(drop=True)
            if len(conditions) == 1 and num_rows != 1:
                conditions = conditions.loc[np.zeros(num_rows, dtype=int)].reset_index(drop=True)
            if len(conditions) != num_rows:
                raise ValueError(
                    f'conditions has {len(conditions)} rows but {num_rows} rows were requested.'
                )
            names = self.codec.column_names
            for name in conditions.columns:
                if name not in names:
                    raise ValueError(f"Unknown column '{name}'. Known columns: {names}.")
                c = names.index(name)
                forced[c] = self.codec.grid.encode_columns(conditions, [name])
            order = list(forced) + [c for c in order if c not in forced]
        if self._generator is None:
            self.set_random_state(self.seed)
        parallel = DataParallel(self.device)
        with tqdm(total=num_rows, desc='Sampling', unit='row', disable=not (
                self.verbose and parallel.is_main and num_rows >= 50_000)) as bar:
            tokens = parallel.sample(num_rows, self._generator, lambda rows, generator:
                sample_text_rows(self.model, self.codec, rows.stop - rows.start, order,
                                 conditions={c: codes[rows] for c, codes in forced.items()},
                                 temperature=temperature, batch_size=self.sample_batch_size,
                                 generator=generator, device=self.device, progress=bar))
        return self.codec.decode(tokens)

    # ---------------------------------------------------------------------- log-likelihood
    def sequence_log_probs(self, tokens, model=None, grad=False, batch_size=None):
        """Constrained log-likelihood (the table's column order) of columnar token rows: a
        ``[rows]`` tensor, differentiable when ``grad``."""
        model = self.model if model is None else model
        value_ids = self.codec.value_ids(tokens)
        orders = np.tile(np.arange(self.codec.n_columns), (len(value_ids), 1))
        step = len(value_ids) if grad else min(batch_size or self.sample_batch_size,
                                               self.sample_batch_size)
        out = []
        with torch.set_grad_enabled(grad):
            for begin in range(0, len(value_ids), max(step, 1)):
                ids, sets, table = self._batch(value_ids[begin:begin + step],
                                               orders[begin:begin + step])
                out.append(constrained_log_probs(model, ids, sets, table)[0])
        return torch.cat(out) if out else torch.zeros(0, device=self.device)

    def log_prob(self, data):
        """Sequence log-likelihood of each row of ``data``: ``[rows]`` array."""
        self._check_fitted()
        self.model.eval()
        return self.sequence_log_probs(self.codec.encode(data)).cpu().numpy()

    def to_text(self, data, order=None):
        """The rows of ``data`` as the text the model reads (for inspection)."""
        self._check_fitted()
        value_ids = self.codec.value_ids(self.codec.encode(data))
        order = np.arange(self.codec.n_columns) if order is None else np.asarray(order)
        ids, _ = self.codec.sequences(value_ids, np.tile(order, (len(value_ids), 1)))
        special = {self.codec.bos, self.codec.eos}
        return [self.tokenizer.decode([t for t in row if t not in special]) for row in ids]

    @property
    def loss_values(self):
        return pd.DataFrame(self.history, columns=['epoch', 'train_loss', 'val_loss'])

    def to(self, device):
        self.device = resolve_device(device)
        self.model.to(self.device)
        self._table = None
        self._generator = None
        return self

    # --------------------------------------------------------------------------- pickling
    @property
    def uses_adapters(self):
        from tabgraa_sdv.alignment import is_peft_model

        return self.model is not None and is_peft_model(self.model)

    def __getstate__(self):
        """The backbone's name and the trained weights only: the LoRA adapters when there are
        any, else the fine-tuned weights (once; tied weights share one tensor), on the CPU."""
        state = dict(self.__dict__)
        generator = state.pop('_generator', None)
        state['_generator_state'] = generator_state(generator)
        state['device'] = str(self.device)
        for key in ('model', 'tokenizer', '_table'):
            state.pop(key, None)
        state['_weights'], state['_adapter_config'] = None, None
        if self.model is not None:
            if self.uses_adapters:
                from peft import get_peft_model_state_dict

                weights = get_peft_model_state_dict(self.model)
                state['_adapter_config'] = copy.deepcopy(self.model.peft_config['default'])
            else:
                weights = self.model.state_dict()
            on_cpu = {}  # one CPU tensor per storage, so tied weights are stored once
            state['_weights'] = {
                k: on_cpu.setdefault((v.device, v.data_ptr(), v.shape), v.detach().cpu())
                for k, v in weights.items()
            }
        return state

    def __setstate__(self, state):
        weights = state.pop('_weights', None)
        adapter_config = state.pop('_adapter_config', None)
        saved_generator = state.pop('_generator_state', None)
        self.__dict__.update(state)
        self.model, self.tokenizer, self._table, self._generator = None, None, None, None
        self.device = torch.device(state['device'])
        if self.device.type == 'cuda' and not torch.cuda.is_available():
            self.device = torch.device('cpu')
        if self.device.type == 'mps' and not (getattr(torch.backends, 'mps', None) is not None
                                              and torch.backends.mps.is_available()):
            self.device = torch.device('cpu')
        if weights is not None:
            if adapter_config is not None:
                from peft import get_peft_model, set_peft_model_state_dict

                self.tokenizer, model = load_backbone(self.backbone)
                model = get_peft_model(model, adapter_config)
                set_peft_model_state_dict(model, weights)
            else:
                self.tokenizer, model = load_backbone(self.backbone, weights_only=False)
                model.load_state_dict(weights)
            self.model = model.to(self.device).eval()
        self._generator = restore_generator(saved_generator, self.device)
