"""SFT's early stopping and the anneal that follows it (tabgraa_sdv/sft.py)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_MODEL
from tabgraa_sdv.backbone import build_compact, compact_config
from tabgraa_sdv.model import TabularLM
from tabgraa_sdv.sft import anneal_sft, evaluate_nll, slot_orders, train_sft


@pytest.fixture(scope='module')
def setup():
    """A codec and layout (from a one-epoch fit) and the table's tokens, split 270 / 30."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({'x': np.round(rng.normal(0, 1, 300), 1),
                          'c': rng.choice(['a', 'b', 'c'], 300)})
    lm = TabularLM(epochs=1, batch_size=64, model_config=dict(TINY_MODEL), device='cpu',
                   anneal_epochs=0).fit(frame)
    tokens = lm.codec.encode(frame)
    return lm, tokens[:270], tokens[270:]


def fresh_model(lm):
    # With dropout, which draws from torch's global random stream.
    config = compact_config(lm.codec.vocab_size, lm.codec.n_slots, 300,
                            **{**TINY_MODEL, 'dropout': 0.1})
    return build_compact(config, seed=0)


def train(setup, **options):
    lm, train_tokens, val_tokens = setup
    model = fresh_model(lm)
    options = {'epochs': 60, 'batch_size': 32, 'learning_rate': 3e-2, 'patience': 1, **options}
    history = train_sft(model, train_tokens, val_tokens, lm.layout, lm.codec.slot_column,
                        lm.codec.slot_position, **options)
    return model, history


def val_nll(setup, model):
    lm, _, val_tokens = setup
    val = torch.as_tensor(val_tokens)
    orders = slot_orders(len(val), lm.codec.slot_column, lm.codec.slot_position, 0.0,
                         torch.Generator().manual_seed(0), 'cpu')
    return evaluate_nll(model, val, orders, lm.layout, 64)


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))


def test_anneal_follows_an_early_stop(setup):
    _, history = train(setup, anneal_epochs=2)
    phases = [row['phase'] for row in history]
    n_sft = phases.count('sft')
    assert n_sft < 60, 'the setup must stop early for this test to mean anything'
    assert phases == ['sft'] * n_sft + ['anneal'] * 2
    assert [row['epoch'] for row in history] == list(range(1, n_sft + 3))
    assert all(math.isfinite(row['val_loss']) for row in history)


def test_no_anneal_after_a_full_schedule_or_when_switched_off(setup):
    _, history = train(setup, epochs=2, anneal_epochs=2)
    assert [row['phase'] for row in history] == ['sft', 'sft']
    _, history = train(setup, anneal_epochs=0)
    assert {row['phase'] for row in history} == {'sft'}


def test_train_sft_with_anneal_is_early_stopped_sft_then_anneal_sft(setup):
    """The anneal has its own random stream, so annealing an early-stopped model afterwards
    gives the same weights as training with the anneal (the alignment benchmark once annealed
    SFT models it had cached before the anneal existed this way)."""
    lm, train_tokens, val_tokens = setup
    together, history = train(setup, anneal_epochs=2)
    apart, first = train(setup, anneal_epochs=0)
    torch.rand(17)  # whatever ran in between must not matter
    best = min(row['val_loss'] for row in first)
    rest = anneal_sft(apart, train_tokens, val_tokens, lm.layout, lm.codec.slot_column,
                      lm.codec.slot_position, best, first_epoch=len(first) + 1, epochs=2,
                      learning_rate=3e-2 / 3, batch_size=32)
    assert first + rest == history
    assert same_weights(together, apart)


def test_anneal_keeps_the_early_stopped_weights_unless_validation_improves(setup):
    lm, train_tokens, val_tokens = setup
    model, history = train(setup, anneal_epochs=0)
    before = fresh_model(lm)
    before.load_state_dict(model.state_dict())
    anneal_sft(model, train_tokens, val_tokens, lm.layout, lm.codec.slot_column,
               lm.codec.slot_position, -math.inf, epochs=2, learning_rate=1e-2)
    assert same_weights(model, before)  # nothing beats -inf: the weights come back
    records = anneal_sft(model, train_tokens, val_tokens, lm.layout, lm.codec.slot_column,
                         lm.codec.slot_position, math.inf, epochs=2, learning_rate=1e-2)
    best = min(row['val_loss'] for row in records)
    assert not same_weights(model, before)
    assert val_nll(setup, model) == pytest.approx(best, rel=0.05)


def reference_slot_log_probs(model, tokens, order, layout):
    """The slot-wise log-likelihood spelled out: one index of the hidden states and one slice of
    the output embedding per slot (what slot_log_probs computes with unbind and split). With
    ``use_cache=True``, as in the sampler, transformers never masks by position ids."""
    from tabgraa_sdv.backbone import body, output_weight
    from tabgraa_sdv.codec import BOS

    inputs = torch.cat([torch.full((len(tokens), 1), BOS), tokens.gather(1, order)[:, :-1]], 1)
    hidden = body(model)(input_ids=inputs, position_ids=order, use_cache=True).last_hidden_state
    hidden = hidden.gather(1, order.argsort(1)[..., None].expand(-1, -1, hidden.shape[-1]))
    weight = output_weight(model)
    columns = []
    for s, (start, size) in enumerate(zip(layout.start, layout.size)):
        log_p = torch.log_softmax(hidden[:, s] @ weight[start:start + size].T, dim=-1)
        columns.append(log_p.gather(1, tokens[:, s:s + 1] - start))
    return torch.cat(columns, dim=1)


def test_slot_log_probs_and_their_gradients_match_the_per_slot_reference(setup):
    from tabgraa_sdv.backbone import slot_log_probs

    lm, train_tokens, _ = setup
    tokens = torch.as_tensor(train_tokens[:50])
    order = slot_orders(len(tokens), lm.codec.slot_column, lm.codec.slot_position, 0.5,
                        torch.Generator().manual_seed(3), 'cpu')
    model = fresh_model(lm).eval()
    results = []
    for function in (slot_log_probs, reference_slot_log_probs):
        model.zero_grad()
        values = function(model, tokens, order, lm.layout)
        values.sum().backward()
        results.append((values.detach(), [p.grad.clone() for p in model.parameters()]))
    (values, grads), (expected, expected_grads) = results
    assert values.shape == tokens.shape and (values < 0).all()
    # Same operations, one gradient buffer instead of one per slot: equal to the last bit.
    assert torch.equal(values, expected)
    assert all(torch.equal(g, e) for g, e in zip(grads, expected_grads))


def test_permuted_rows_are_scored_as_the_sampler_decodes_them(setup):
    """Training's log-likelihood of rows in a random column order is the one step-by-step
    cached decoding gives (the sampler's and conditional sampling's view of the model). A row
    whose position ids do not count up by one once attended to nothing before itself in
    training, because transformers took it for packed sequences (regression)."""
    from tabgraa_sdv.backbone import body, output_weight, slot_log_probs
    from tabgraa_sdv.codec import BOS
    from tabgraa_sdv.sampling import cache_keyword, cached_forward

    lm, train_tokens, _ = setup
    tokens = torch.as_tensor(train_tokens[:20])
    order = slot_orders(len(tokens), lm.codec.slot_column, lm.codec.slot_position, 1.0,
                        torch.Generator().manual_seed(1), 'cpu')
    assert (order != torch.arange(tokens.shape[1])).any(dim=1).any()
    model = fresh_model(lm).eval()
    with torch.no_grad():
        trained = slot_log_probs(model, tokens, order, lm.layout)
        inputs = torch.cat([torch.full((len(tokens), 1), BOS), tokens.gather(1, order)], 1)
        weight, decoded, cache = output_weight(model), torch.empty_like(trained), None
        decoder = body(model)
        keyword = cache_keyword(decoder)
        for step in range(tokens.shape[1]):
            hidden, cache = cached_forward(decoder, keyword, cache,
                                           input_ids=inputs[:, step:step + 1],
                                           position_ids=order[:, step:step + 1])
            for row, slot in enumerate(order[:, step].tolist()):
                start, size = lm.layout.start[slot], lm.layout.size[slot]
                log_p = torch.log_softmax(hidden[row] @ weight[start:start + size].T, dim=-1)
                decoded[row, slot] = log_p[tokens[row, slot] - start]
    torch.testing.assert_close(trained, decoded, rtol=1e-5, atol=1e-5)


def test_rank_embedding_trains_then_folds_into_a_plain_tied_gpt2_computing_the_same(setup):
    from tabgraa_sdv.backbone import (RankEmbedding, fold_rank_embedding, install_rank_embedding,
                                      slot_log_probs)

    lm, train_tokens, _ = setup
    model = fresh_model(lm)
    install_rank_embedding(model, lm.codec.token_ranks(), lm.codec.slot_start, lm.codec.slot_size)
    embedding = model.get_input_embeddings()
    assert isinstance(embedding, RankEmbedding) and len(embedding.slots) >= 1
    # Its per-slot projections start at zero, so the model starts as the plain one did.
    tokens = torch.as_tensor(train_tokens[:64])
    order = slot_orders(64, lm.codec.slot_column, lm.codec.slot_position, 0.5,
                        torch.Generator().manual_seed(0), 'cpu')
    model.eval()
    before_training = slot_log_probs(fresh_model(lm).eval(), tokens, order, lm.layout)
    assert torch.allclose(slot_log_probs(model, tokens, order, lm.layout), before_training)
    train_sft(model, train_tokens, train_tokens[:30], lm.layout, lm.codec.slot_column,
              lm.codec.slot_position, epochs=2, batch_size=64, anneal_epochs=0)
    assert embedding.projection.abs().sum() > 0  # it learned a rank term
    trained = slot_log_probs(model, tokens, order, lm.layout)
    fold_rank_embedding(model)
    assert type(model.get_input_embeddings()) is torch.nn.Embedding
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert torch.allclose(slot_log_probs(model, tokens, order, lm.layout), trained, atol=1e-5)


def test_fit_with_rank_embedding_leaves_a_plain_model_that_samples():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({'x': np.round(rng.normal(0, 1, 300), 1),
                          'c': rng.choice(['a', 'b', 'c'], 300)})
    fitted = TabularLM(epochs=2, batch_size=64, model_config=dict(TINY_MODEL), device='cpu',
                       rank_embedding=True, seed=0).fit(frame)
    assert type(fitted.model.get_input_embeddings()) is torch.nn.Embedding
    sample = fitted.sample(50)
    assert list(sample.columns) == ['x', 'c'] and sample['x'].between(frame.x.min(),
                                                                       frame.x.max()).all()


def test_slot_weights_weight_each_slots_nll_in_the_validation_loss(setup):
    from tabgraa_sdv.backbone import slot_log_probs

    lm, _, val_tokens = setup
    model = fresh_model(lm).eval()
    val = torch.as_tensor(val_tokens)
    orders = slot_orders(len(val), lm.codec.slot_column, lm.codec.slot_position, 0.0,
                         torch.Generator().manual_seed(0), 'cpu')
    weights = torch.arange(1, val.shape[1] + 1, dtype=torch.float32)
    with torch.no_grad():
        nll = -slot_log_probs(model, val, orders, lm.layout)
    expected = float((nll * weights).sum() / (len(val) * weights.sum()))
    assert evaluate_nll(model, val, orders, lm.layout, 7, slot_weights=weights) == \
        pytest.approx(expected, rel=1e-6)
    # all ones is the plain mean per token
    assert evaluate_nll(model, val, orders, lm.layout, 7, slot_weights=torch.ones(val.shape[1])) \
        == pytest.approx(evaluate_nll(model, val, orders, lm.layout, 7), rel=1e-6)


def test_slot_weights_reach_the_gradient(setup):
    """With every slot but one weighing 1e-3, training leaves those slots fitted worse than
    unweighted training of the same length does: the weights reach the gradient."""
    from tabgraa_sdv.backbone import slot_log_probs

    lm, _, val_tokens = setup
    last = val_tokens.shape[1] - 1  # column 'c', one slot
    weights = np.full(val_tokens.shape[1], 1e-3)
    weights[last] = 1.0
    val = torch.as_tensor(val_tokens)
    orders = slot_orders(len(val), lm.codec.slot_column, lm.codec.slot_position, 0.0,
                         torch.Generator().manual_seed(0), 'cpu')
    per_slot = {}
    for name, slot_weights in (('plain', None), ('weighted', weights)):
        model, history = train(setup, epochs=3, anneal_epochs=0, slot_weights=slot_weights)
        with torch.no_grad():
            per_slot[name] = -slot_log_probs(model.eval(), val, orders, lm.layout).mean(0)
    others = slice(0, last)
    assert per_slot['weighted'][others].sum() > per_slot['plain'][others].sum()
    assert all(math.isfinite(row['val_loss']) for row in history)


def test_weight_decay_reaches_the_sft_and_anneal_optimizers(setup, monkeypatch):
    seen = []
    adamw = torch.optim.AdamW

    def recording_adamw(params, **kwargs):
        seen.append(kwargs['weight_decay'])
        return adamw(params, **kwargs)

    monkeypatch.setattr(torch.optim, 'AdamW', recording_adamw)
    train(setup, anneal_epochs=1, weight_decay=0.123)
    assert seen == [0.123, 0.123]  # SFT, then the anneal after its early stop
    seen.clear()
    frame = pd.DataFrame({'x': np.arange(40.0), 'c': ['a', 'b'] * 20})
    TabularLM(epochs=1, batch_size=16, model_config=dict(TINY_MODEL), device='cpu',
              weight_decay=0.5).fit(frame)
    assert seen == [0.5]
