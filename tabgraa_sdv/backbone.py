"""The language model: a compact GPT-2 built from a config, and the slot-wise log-likelihood.

Sequence layout (columnar codec). A row of S slot tokens, in some column order, is fed as
``[BOS, t_0, ..., t_{S-2}]`` and must predict ``[t_0, ..., t_{S-1}]``. GPT-2's learned position
embedding at input position i is the *column marker* of the slot that position must predict
(``position_ids = slot order``), so the model always knows which column comes next, whatever the
order, without spending a sequence position on a marker token (that would double the sequence
length and the decoding steps). Logits are computed only over the predicted slot's token range:
the softmax the model is trained with is the constrained distribution it is sampled from.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from tabgraa_sdv.codec import BOS


def compact_config(vocab_size, n_slots, n_rows, n_embd=None, n_layer=None, n_head=None,
                   dropout=0.0):
    """A GPT-2 config sized to the table: wider and deeper only when there is data for it.

    No dropout by default: early stopping on held-out rows already guards against overfitting.
    In the capacity probe (docs/backbone-compact.md, "Dropout") going from 0.1 to none cut SFT's
    time to 0.41-0.78x and lowered tree detection in 8 of 9 table-seed pairs, at a cost in
    quality on one table (default).
    """
    if n_embd is None:
        n_embd = 64 if n_rows < 50_000 else 128
    if n_layer is None:
        n_layer = 2 if n_rows < 50_000 else 4
    if n_head is None:
        n_head = max(1, n_embd // 32)
    if n_embd % n_head:
        raise ValueError(f'n_embd ({n_embd}) must be divisible by n_head ({n_head}).')
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=max(1, n_slots),
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_inner=4 * n_embd,
        activation_function='gelu_pytorch_tanh',  # one fused op; GPT-2's 'gelu_new' is five
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=BOS,
        eos_token_id=BOS,
        tie_word_embeddings=True,
        attn_implementation='sdpa',
    )


def build_compact(config, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


class RankEmbedding(nn.Module):
    """GPT-2's token embedding plus a smooth function of each ordered token's rank, for SFT.

    A numeric column's tokens are quantile bins and offset digits; as free embeddings, each bin
    learns only from its own rows, and nothing tells the model that bin 41 lies between 40 and
    42. Here an ordered token's embedding is ``e_t + W_s · φ(r_t)``, ``r_t`` in ``[0, 1]`` its
    place in slot ``s`` (``codec.token_ranks``), ``φ`` sines and cosines of ``r_t`` at
    ``n_frequencies`` frequencies and ``W_s`` learned per slot (zero at the start). The same
    effective weights are the output embedding (GPT-2 ties them; see :func:`output_weight`).
    The extra term depends on the token only, so :func:`fold_rank_embedding` adds it into
    ``e`` after SFT, leaving a plain GPT-2.
    """

    def __init__(self, embedding, ranks, slot_start, slot_size, n_frequencies=16):
        super().__init__()
        self.embedding = embedding
        ranks = torch.as_tensor(ranks, dtype=torch.float32)
        ordered = torch.isfinite(ranks)
        angle = torch.nan_to_num(ranks)[:, None] * torch.arange(1, n_frequencies + 1) * math.pi
        features = torch.cat([angle.sin(), angle.cos()], dim=1) * ordered[:, None]
        self.register_buffer('features', features.to(embedding.weight), persistent=False)
        self.slots = [(int(start), int(size)) for start, size in zip(slot_start, slot_size)
                      if ordered[start:start + size].any()]
        self.projection = nn.Parameter(embedding.weight.new_zeros(
            len(self.slots), features.shape[1], embedding.weight.shape[1]))

    @property
    def weight(self):
        return self.embedding.weight

    def effective_weight(self):
        weight = self.embedding.weight
        parts, cursor = [], 0
        for projection, (start, size) in zip(self.projection, self.slots):
            if start > cursor:
                parts.append(weight.new_zeros(start - cursor, weight.shape[1]))
            parts.append(self.features[start:start + size] @ projection)
            cursor = start + size
        if cursor < weight.shape[0]:
            parts.append(weight.new_zeros(weight.shape[0] - cursor, weight.shape[1]))
        return weight + torch.cat(parts)

    def forward(self, input_ids):
        return F.embedding(input_ids, self.effective_weight())


def install_rank_embedding(model, ranks, slot_start, slot_size):
    """Give ``model`` (tied input/output embeddings) a :class:`RankEmbedding`."""
    base = _unwrap(model)
    base.set_input_embeddings(RankEmbedding(base.get_input_embeddings(), ranks, slot_start,
                                            slot_size))


@torch.no_grad()
def fold_rank_embedding(model):
    """Add a :class:`RankEmbedding`'s term into the token embedding and remove it: the model
    computes exactly what it did, as a plain GPT-2."""
    base = _unwrap(model)
    embedding = base.get_input_embeddings()
    if isinstance(embedding, RankEmbedding):
        embedding.embedding.weight.copy_(embedding.effective_weight())
        base.set_input_embeddings(embedding.embedding)


def _unwrap(model):
    return model.get_base_model() if hasattr(model, 'get_base_model') else model


def body(model):
    """The decoder stack without the LM head (works through peft wrappers)."""
    model = _unwrap(model)
    return getattr(model, model.base_model_prefix)


def output_weight(model):
    model = _unwrap(model)
    embedding = model.get_input_embeddings()
    if isinstance(embedding, RankEmbedding):  # tied: the output uses the effective weights too
        return embedding.effective_weight()
    return model.get_output_embeddings().weight


class SlotLayout:
    """Token ranges of the slots as tensors on the model's device."""

    def __init__(self, slot_start, slot_size, device):
        self.start = [int(s) for s in slot_start]
        self.size = [int(s) for s in slot_size]
        self.start_t = torch.as_tensor(slot_start, dtype=torch.long, device=device)
        self.n_slots = len(self.start)

    def slot_weights(self, weight):
        """Each slot's rows of ``weight`` (the output embedding): views from one
        ``torch.split`` (slots hold disjoint id ranges)."""
        ends = [start + size for start, size in zip(self.start, self.size)]
        cuts = sorted({0, weight.shape[0], *self.start, *ends})
        pieces = torch.split(weight, [b - a for a, b in zip(cuts, cuts[1:])])
        piece_at = {a: piece for a, piece in zip(cuts, pieces)}
        return [piece_at[start] for start in self.start]


def slot_log_probs(model, tokens, order, layout):
    """Log-probability of every slot token: ``[batch, n_slots]`` in canonical slot order.

    Args:
        tokens: ``[B, S]`` global token ids in canonical slot order.
        order: ``[B, S]`` slot index at each sequence position (a permutation per row).
    """
    batch, n_slots = tokens.shape
    sequence = tokens.gather(1, order)
    bos = torch.full((batch, 1), BOS, dtype=tokens.dtype, device=tokens.device)
    inputs = torch.cat([bos, sequence[:, :-1]], dim=1)
    # An explicit all-ones mask: with neither a mask nor a cache, transformers reads position
    # ids that do not count up by one as packed sequences and masks attention across them, so a
    # row in a permuted column order would attend only within runs of consecutive slots. The
    # sampler (KV cache, no such check) attends causally over the whole row; so must training.
    embedding = _unwrap(model).get_input_embeddings()
    if isinstance(embedding, RankEmbedding):
        # Tied input and output: compute the effective weights once a call, not once a side.
        weight = embedding.effective_weight()
        feed = {'inputs_embeds': F.embedding(inputs, weight)}
    else:
        weight = output_weight(model)
        feed = {'input_ids': inputs}
    hidden = body(model)(**feed, position_ids=order, attention_mask=torch.ones_like(inputs),
                         use_cache=False).last_hidden_state
    # Regroup the hidden states by the slot they predict.
    position_of_slot = order.argsort(dim=1)
    hidden = hidden.gather(1, position_of_slot[..., None].expand(-1, -1, hidden.shape[-1]))
    # unbind and split, not indexing per slot: their backward builds one gradient tensor, where
    # each index's backward would zero-fill a whole one and add it to the others.
    slot_hidden = hidden.unbind(1)
    weights = layout.slot_weights(weight)
    local = tokens - layout.start_t[None, :]
    out = []
    for s in range(n_slots):
        logits = slot_hidden[s] @ weights[s].T
        out.append(F.log_softmax(logits.float(), dim=-1).gather(1, local[:, s:s + 1]))
    return torch.cat(out, dim=1)
