"""Constrained decoding: every token row sample_tokens draws is valid and decodes, trained or not."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_MODEL, check_loads_on_the_cpu_as_if_saved_on_a_gpu
from tabgraa_sdv.codec import CategoricalColumn, NumericColumn
from tabgraa_sdv.model import TabularLM
from tabgraa_sdv.sampling import DecodingPlan, sample_tokens


def make_frame(n_rows=400, seed=5):
    rng = np.random.default_rng(seed)
    wide = np.round(np.minimum(rng.lognormal(5.0, 2.5, n_rows), 1e6), 2)
    wide[rng.random(n_rows) < 0.25] = 0.0
    return pd.DataFrame({
        'wide': wide,  # skewed up to 1e6, 2 decimals: bins plus offset digits
        'count': np.minimum(rng.pareto(0.7, n_rows) * 50, 10**6).astype(np.int64),
        'age': rng.integers(18, 80, n_rows),
        'color': rng.choice(np.array(['red', 'green', 'blue', None], dtype=object), n_rows),
        'score': np.where(rng.random(n_rows) < 0.2, np.nan,
                          np.round(rng.normal(0, 1e4, n_rows), 1)),
        'day': pd.Timestamp('2020-01-01') + pd.to_timedelta(rng.integers(0, 900, n_rows), 'D'),
    })


@pytest.fixture(scope='module')
def frame():
    return make_frame()


@pytest.fixture(scope='module', params=[256, 7], ids=['base256', 'base7'])
def trained(request, frame):
    torch.manual_seed(0)
    model = TabularLM(epochs=1, batch_size=128, model_config=dict(TINY_MODEL),
                      max_base=request.param, device='cpu', seed=0)
    return model.fit(frame)


@pytest.fixture(scope='module')
def untrained(trained):
    """The same codec with a randomly re-initialised, deliberately wild network."""
    model = copy.deepcopy(trained)
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for parameter in model.model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 3.0)
    return model


def binned_columns(codec):
    return [c for c in codec.columns if isinstance(c, NumericColumn) and c.n_offset]


def draw(model, n_rows, temperature=1.0, seed=0, **kwargs):
    plan = DecodingPlan(model.codec, model.device)
    generator = torch.Generator().manual_seed(seed)
    return sample_tokens(model.model, plan, n_rows, temperature=temperature, batch_size=700,
                         generator=generator, device=model.device, **kwargs)


def assert_valid_rows(codec, tokens, frame):
    """Each token in its slot's range, every offset inside its bin, and decoded values inside
    the training data's range / categories."""
    assert tokens.shape[1] == codec.n_slots
    assert tokens.dtype == np.int64
    assert (tokens >= codec.slot_start).all()
    assert (tokens < codec.slot_start + codec.slot_size).all()
    decoded = codec.decode(tokens)
    # Re-encoding gives back the very same tokens: no offset ran past its bin's width (decode
    # would silently clip it), and no missing-value token came with non-zero offset digits.
    np.testing.assert_array_equal(codec.encode(decoded), tokens)
    for column in codec.columns:
        values, train = decoded[column.name], frame[column.name]
        if not train.isna().any():
            assert not values.isna().any(), column.name
        present = values.dropna()
        if isinstance(column, CategoricalColumn):
            assert present.isin(train.dropna()).all(), column.name
        else:
            assert (present >= train.min()).all() and (present <= train.max()).all(), column.name
    return decoded


def test_fixture_codec_has_bins_the_sampler_must_bound(trained):
    """Guard against a vacuous suite: some bin is narrower than base ** n_offset, so an
    unconstrained offset draw could leave it."""
    binned = binned_columns(trained.codec)
    assert binned
    assert any((c.widths < c.base ** c.n_offset).any() for c in binned)


@pytest.mark.parametrize('temperature', [1.0, 0.3, 3.0])
def test_trained_model_samples_decode(trained, frame, temperature):
    tokens = draw(trained, 1500, temperature=temperature)
    assert tokens.shape == (1500, trained.codec.n_slots)
    assert_valid_rows(trained.codec, tokens, frame)


@pytest.mark.parametrize('temperature', [1.0, 0.05, 5.0])
def test_untrained_model_samples_decode(untrained, frame, temperature):
    tokens = draw(untrained, 2000, temperature=temperature, seed=7)
    assert_valid_rows(untrained.codec, tokens, frame)


def test_untrained_model_hits_the_narrow_bins(untrained):
    """The offset bound matters: rows land in bins narrower than base ** n_offset."""
    codec = untrained.codec
    tokens = draw(untrained, 3000, temperature=2.0, seed=11)
    hits = 0
    for c, column in enumerate(codec.columns):
        if isinstance(column, NumericColumn) and column.n_offset:
            slot = codec.column_slots[c][0]
            bins = tokens[:, slot] - codec.slot_start[slot]
            real = bins < column.n_bins
            hits += int((column.widths[bins[real]] < column.base ** column.n_offset).sum())
    assert hits > 0


def test_prefix_tokens_are_kept_exactly(untrained, frame):
    codec = untrained.codec
    given = frame[['color', 'wide', 'day']].sample(300, random_state=0).reset_index(drop=True)
    slots = codec.slots_of(list(given.columns))
    prefix = codec.encode_columns(given, list(given.columns)) + codec.slot_start[slots]
    tokens = draw(untrained, len(given), prefix_slots=slots, prefix_tokens=prefix, seed=3)
    np.testing.assert_array_equal(tokens[:, slots], prefix)
    decoded = assert_valid_rows(codec, tokens, frame)
    pd.testing.assert_frame_equal(decoded[list(given.columns)], given)


def test_same_generator_seed_gives_same_tokens_and_another_differs(trained):
    first = draw(trained, 300, seed=42)
    again = draw(trained, 300, seed=42)
    other = draw(trained, 300, seed=43)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


def test_batching_does_not_change_validity(trained, frame):
    plan = DecodingPlan(trained.codec, trained.device)
    tokens = sample_tokens(trained.model, plan, 101, batch_size=10,
                           generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (101, trained.codec.n_slots)
    assert_valid_rows(trained.codec, tokens, frame)


@pytest.mark.parametrize('temperature', [0, -1.0, float('nan')])
def test_bad_temperature_raises(trained, temperature):
    plan = DecodingPlan(trained.codec, trained.device)
    with pytest.raises(ValueError, match='temperature'):
        sample_tokens(trained.model, plan, 5, temperature=temperature)


def test_model_sample_with_conditions_is_exact(trained, frame):
    conditions = pd.DataFrame({'color': [None], 'age': [33], 'score': [np.nan]})
    trained.set_random_state(0)
    out = trained.sample(50, conditions=conditions)
    assert len(out) == 50
    assert out['color'].isna().all()
    assert (out['age'] == 33).all() and out['age'].dtype == np.int64
    assert out['score'].isna().all()
    per_row = pd.DataFrame({'age': frame['age'].iloc[:20].to_numpy()})
    out = trained.sample(20, conditions=per_row)
    np.testing.assert_array_equal(out['age'].to_numpy(), per_row['age'].to_numpy())
    with pytest.raises(ValueError, match='rows'):
        trained.sample(3, conditions=per_row)


def test_model_sampling_is_reproducible_after_set_random_state(trained):
    trained.set_random_state(5)
    first = trained.sample(200)
    second = trained.sample(200)
    trained.set_random_state(5)
    pd.testing.assert_frame_equal(trained.sample(200), first)
    assert not first.equals(second)


def test_training_history_has_one_record_per_epoch(trained):
    history = trained.loss_values
    assert list(history.columns) == ['epoch', 'phase', 'train_loss', 'val_loss']
    assert history['epoch'].tolist() == [1] and history['phase'].tolist() == ['sft']
    assert np.isfinite(history[['train_loss', 'val_loss']].to_numpy()).all()
    # Loss is a mean NLL per token: positive, and below uniform guessing over the largest slot.
    assert 0 < history['train_loss'].iloc[0] < np.log(trained.codec.slot_size.max()) + 1


def test_a_compact_model_saved_on_a_gpu_loads_on_the_cpu(trained):
    check_loads_on_the_cpu_as_if_saved_on_a_gpu(trained)


def test_preallocated_cache_decodes_as_the_dynamic_cache_does(trained):
    """Step-by-step decoding through PreallocatedLayer's buffers gives the hidden states that
    transformers' DynamicCache gives, bit for bit."""
    from transformers.cache_utils import Cache, DynamicCache

    from tabgraa_sdv.backbone import body
    from tabgraa_sdv.sampling import PreallocatedLayer, cache_keyword, cached_forward

    decoder = body(trained.model).eval()
    keyword = cache_keyword(decoder)
    n_slots = trained.codec.n_slots
    tokens = torch.as_tensor(trained.sample_token_rows(9))
    inputs = torch.cat([torch.zeros(9, 1, dtype=torch.long), tokens[:, :-1]], dim=1)
    positions = torch.arange(n_slots).expand(9, -1)
    hidden = {}
    for name, cache in (('dynamic', DynamicCache()),
                        ('preallocated', Cache(layers=[PreallocatedLayer(n_slots) for _ in
                                                       range(decoder.config.n_layer)]))):
        steps = []
        with torch.no_grad():
            for step in range(n_slots):
                last, returned = cached_forward(decoder, keyword, cache,
                                                input_ids=inputs[:, step:step + 1],
                                                position_ids=positions[:, step:step + 1])
                assert returned is cache  # the cache given is the one filled
                steps.append(last)
        hidden[name] = torch.stack(steps, dim=1)
        assert cache.get_seq_length() == n_slots
    assert torch.equal(hidden['preallocated'], hidden['dynamic'])


def test_cached_forward_gives_the_cache_by_the_keyword_the_decoder_takes():
    """transformers 5.17 (the GPU image's) takes ``past_key_values`` and swallows an unknown
    ``cache=`` in ``**kwargs``; later 5.x take ``cache``. The cache must reach the decoder by
    the name it reads, and come back by whichever attribute the output has."""
    from types import SimpleNamespace

    from tabgraa_sdv.sampling import cache_keyword, cached_forward

    class OldDecoder(torch.nn.Module):
        def forward(self, input_ids=None, position_ids=None, past_key_values=None,
                    use_cache=None, **kwargs):
            assert not kwargs and use_cache  # nothing swallowed
            past_key_values.append(input_ids)
            return SimpleNamespace(last_hidden_state=input_ids[..., None].float(),
                                   past_key_values=past_key_values)

    class NewDecoder(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, use_cache=None, **kwargs):
            assert not kwargs and use_cache
            cache.append(input_ids)
            return SimpleNamespace(last_hidden_state=input_ids[..., None].float(), cache=cache,
                                   past_key_values=None)

    ids = torch.tensor([[1, 2], [3, 4]])
    for decoder, keyword in ((OldDecoder(), 'past_key_values'), (NewDecoder(), 'cache')):
        assert cache_keyword(decoder) == keyword
        cache = []
        last, returned = cached_forward(decoder, keyword, cache, input_ids=ids)
        assert returned is cache and len(cache) == 1
        torch.testing.assert_close(last, torch.tensor([[2.0], [4.0]]))
