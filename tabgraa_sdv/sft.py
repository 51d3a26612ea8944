"""Supervised fine-tuning: next-token training on encoded rows, with early stopping.

Each training row is fed in the canonical column order with probability ``1 - permutation_rate``
and in a random column order otherwise (GReaT's permutation trick), so any subset of columns can
later be given as a prefix. Unconditional sampling uses the canonical order, which therefore gets
the larger share of the training signal.
"""

import copy
import math

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from tabgraa_sdv.backbone import slot_log_probs
from tabgraa_sdv.devices import DataParallel


def slot_orders(n_rows, slot_column, slot_position, permutation_rate, generator, device):
    """Slot order of each row: ``[n_rows, n_slots]``, whole columns kept together."""
    slot_column = torch.as_tensor(slot_column, device=device)
    slot_position = torch.as_tensor(slot_position, device=device)
    n_columns = int(slot_column.max()) + 1
    ranks = torch.arange(n_columns, device=device).expand(n_rows, -1)
    if permutation_rate > 0:
        permute = torch.rand(n_rows, generator=generator, device=device) < permutation_rate
        if permute.any():
            random_ranks = torch.rand(int(permute.sum()), n_columns, generator=generator,
                                      device=device).argsort(dim=1).argsort(dim=1)
            ranks = ranks.clone()
            ranks[permute] = random_ranks
    width = int(slot_position.max()) + 1
    keys = ranks[:, slot_column] * width + slot_position[None, :]
    return keys.argsort(dim=1)


# Rows passed through SFT at most when the user gives no epoch count. Most tables stop early
# long before it; beijing ran all of 1.5 M passes with its validation loss still falling, and
# twice as many lowered that loss and raised its TSTR (docs/backbone-compact.md).
ROW_PASSES = 3_000_000


def default_epochs(n_rows, row_passes=ROW_PASSES):
    """Upper bound on epochs when the user gives none; early stopping usually ends sooner."""
    return int(np.clip(math.ceil(row_passes / max(n_rows, 1)), 10, 300))


def split_rows(n_rows, validation_fraction, seed):
    """Seeded train/validation split of row indices (no validation rows under 20 rows)."""
    index = np.random.default_rng(seed).permutation(n_rows)
    n_val = int(round(n_rows * validation_fraction)) if n_rows >= 20 else 0
    return index[n_val:], index[:n_val]


# After an early stop: this many epochs, the rate decaying from learning_rate * ANNEAL_FACTOR.
ANNEAL_EPOCHS, ANNEAL_FACTOR = 3, 1 / 3
# AdamW's decoupled weight decay in SFT and its anneal, on every parameter.
WEIGHT_DECAY = 0.01


def train_sft(model, train_tokens, val_tokens, layout, slot_column, slot_position, *,
              epochs=None, batch_size=512, learning_rate=3e-3, weight_decay=WEIGHT_DECAY,
              patience=4, permutation_rate=0.3, anneal_epochs=ANNEAL_EPOCHS, slot_weights=None,
              seed=0, device='cpu', verbose=False):
    """Train ``model`` in place on ``train_tokens`` (``[rows, slots]`` global ids, canonical order).

    Returns a list of dicts, one per epoch: ``epoch``, ``phase`` ('sft' or 'anneal'),
    ``train_loss``, ``val_loss`` (mean negative log-likelihood per token). With validation rows
    the best epoch's weights are restored at the end and training stops after ``patience``
    epochs without improvement; when it stopped early, :func:`anneal_sft` follows.
    ``slot_weights`` (``[slots]``, canonical order, or None for all 1) weight each slot's NLL in
    the training and validation losses, which are then means per unit of weight.
    In a multi-process launch every batch is split between the processes
    (:class:`~tabgraa_sdv.devices.DataParallel`); all of them draw the same batches and orders.
    """
    run = _EpochRunner(model, train_tokens, val_tokens, layout, slot_column, slot_position,
                       batch_size, permutation_rate, seed, device, slot_weights)
    max_epochs = epochs if epochs is not None else default_epochs(len(run.train_data))
    optimizer, scheduler = run.optimizer(learning_rate, weight_decay, max_epochs)
    history = []
    best_loss, best_state, best_epoch = math.inf, None, 0
    bar = tqdm(total=max_epochs, desc='SFT', unit='epoch', disable=not verbose)
    for epoch in range(1, max_epochs + 1):
        record = run.epoch(epoch, 'sft', optimizer, scheduler)
        history.append(record)
        bar.update(1)
        bar.set_postfix(train=f"{record['train_loss']:.4f}", val=f"{record['val_loss']:.4f}")
        if run.n_val:
            if record['val_loss'] < best_loss - 1e-4:
                best_loss, best_epoch = record['val_loss'], epoch
                best_state = copy.deepcopy(model.state_dict())
            elif epoch - best_epoch >= patience:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    if anneal_epochs and run.n_val and history[-1]['epoch'] < max_epochs:
        history += anneal_sft(model, train_tokens, val_tokens, layout, slot_column,
                              slot_position, best_loss, first_epoch=len(history) + 1,
                              epochs=anneal_epochs, learning_rate=learning_rate * ANNEAL_FACTOR,
                              batch_size=batch_size, weight_decay=weight_decay,
                              permutation_rate=permutation_rate, slot_weights=slot_weights,
                              seed=seed, device=device, verbose=verbose)
    model.eval()
    return history


def anneal_sft(model, train_tokens, val_tokens, layout, slot_column, slot_position, best_loss, *,
               first_epoch=1, epochs=3, learning_rate=1e-3, batch_size=512,
               weight_decay=WEIGHT_DECAY, permutation_rate=0.3, slot_weights=None, seed=0,
               device='cpu', verbose=False):
    """A few more epochs with the learning rate decaying to zero, from the early-stopped weights.

    Early stopping ends SFT while the cosine schedule, planned for many more epochs, is still
    near its peak rate; a short decay to zero settles the weights (Magic, seed 0: validation
    loss 4.3151 -> 4.3003; docs/alignment.md, "The SFT anneal"). The weights are kept only if
    the validation loss beats ``best_loss`` (the early-stopped model's); otherwise they are
    restored. Its own random streams (``seed + 1``) make it reproducible on its own.
    """
    # Dropout draws from torch's global stream: fork it and seed it, so the anneal gives the same
    # weights whatever ran before it (and leaves the caller's stream as it was).
    forked = [device] if torch.device(device).type == 'cuda' else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed + 1)
        run = _EpochRunner(model, train_tokens, val_tokens, layout, slot_column, slot_position,
                           batch_size, permutation_rate, seed + 1, device, slot_weights)
        optimizer, scheduler = run.optimizer(learning_rate, weight_decay, epochs)
        best_state = copy.deepcopy(model.state_dict())
        history = []
        for epoch in tqdm(range(first_epoch, first_epoch + epochs), desc='SFT anneal',
                          unit='epoch', disable=not verbose):
            history.append(run.epoch(epoch, 'anneal', optimizer, scheduler))
            if history[-1]['val_loss'] < best_loss - 1e-4:
                best_loss, best_state = history[-1]['val_loss'], copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return history


class _EpochRunner:
    """One pass over the training rows in shuffled batches, then the validation loss."""

    def __init__(self, model, train_tokens, val_tokens, layout, slot_column, slot_position,
                 batch_size, permutation_rate, seed, device, slot_weights=None):
        self.model, self.layout = model, layout
        self.slot_weights = (None if slot_weights is None else
                             torch.as_tensor(slot_weights, dtype=torch.float32, device=device))
        self.slot_column, self.slot_position = slot_column, slot_position
        self.permutation_rate, self.device = permutation_rate, device
        self.parallel = DataParallel(device)
        self.parallel.broadcast_module(model)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.train_data = torch.as_tensor(train_tokens, dtype=torch.long, device=device)
        self.val_data = torch.as_tensor(val_tokens, dtype=torch.long, device=device)
        self.n_val = len(self.val_data)
        self.val_orders = self._orders(self.n_val) if self.n_val else None
        self.batch_size = max(1, min(batch_size, len(self.train_data)))

    def _orders(self, n_rows):
        return slot_orders(n_rows, self.slot_column, self.slot_position, self.permutation_rate,
                           self.generator, self.device)

    def optimizer(self, learning_rate, weight_decay, epochs):
        """AdamW with warmup then cosine decay to zero over ``epochs``."""
        total_steps = epochs * math.ceil(len(self.train_data) / self.batch_size)
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=learning_rate,
                                      weight_decay=weight_decay)
        return optimizer, get_cosine_schedule_with_warmup(
            optimizer, num_warmup_steps=min(100, total_steps // 10),
            num_training_steps=total_steps)

    def epoch(self, epoch, phase, optimizer, scheduler):
        model, parallel, train_data = self.model, self.parallel, self.train_data
        model.train()
        permutation = torch.randperm(len(train_data), generator=self.generator,
                                     device=self.device)
        total, count = 0.0, 0
        for begin in range(0, len(train_data), self.batch_size):
            batch = train_data[permutation[begin:begin + self.batch_size]]
            order = self._orders(len(batch))
            batch_weight = weight_of(batch, self.slot_weights)
            mine = parallel.shard(len(batch))
            optimizer.zero_grad(set_to_none=True)
            if mine.stop > mine.start:
                # This process's share of the batch's summed NLL over all the batch's tokens:
                # summed over processes, the mean over the whole batch.
                nll = -weighted(slot_log_probs(model, batch[mine], order[mine], self.layout),
                                self.slot_weights).sum()
                (nll / batch_weight).backward()
                total += nll.item()
            parallel.sum_gradients(model.parameters())
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            count += batch_weight
        record = {'epoch': epoch, 'phase': phase, 'train_loss': parallel.sum(total) / count,
                  'val_loss': math.nan}
        if self.n_val:
            record['val_loss'] = evaluate_nll(model, self.val_data, self.val_orders, self.layout,
                                              self.batch_size, parallel, self.slot_weights)
        return record


def weighted(slot_values, slot_weights):
    """``[rows, slots]`` per-slot values times the slots' weights (None: unweighted)."""
    return slot_values if slot_weights is None else slot_values * slot_weights[None, :]


def weight_of(tokens, slot_weights):
    """Total weight of the slots of ``tokens`` (``[rows, slots]``): their count when
    unweighted, so the loss stays the plain mean NLL per token."""
    if slot_weights is None:
        return tokens.numel()
    return len(tokens) * float(slot_weights.sum())


@torch.no_grad()
def evaluate_nll(model, tokens, orders, layout, batch_size, parallel=None, slot_weights=None):
    """Mean NLL per token (per unit of weight, with ``slot_weights``) of ``tokens``, split
    between the processes of a launch."""
    model.eval()
    parallel = parallel or DataParallel(tokens.device)
    mine = parallel.shard(len(tokens))
    tokens, orders = tokens[mine], orders[mine]
    total = 0.0
    for begin in range(0, len(tokens), batch_size):
        total -= weighted(slot_log_probs(model, tokens[begin:begin + batch_size],
                                         orders[begin:begin + batch_size], layout),
                          slot_weights).sum().item()
    return parallel.sum(total) / parallel.sum(weight_of(tokens, slot_weights))
