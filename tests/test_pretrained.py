"""Pretrained backbones (text_codec.py, pretrained.py, backbone=/lora= of the synthesizer), offline.

The "pretrained" backbone is a tiny GPT-2 (one layer, 16 wide) and a byte-level BPE tokenizer
trained here with ``tokenizers`` on the table's rows, both saved with ``save_pretrained`` to a
temporary directory that is passed as ``backbone=``: the same code path as 'distilgpt2' or any
local model directory, with no download.
"""

import os
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sdv.sampling import Condition
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from conftest import (MIXED_SDTYPES, TEST_DEVICE, check_loads_on_the_cpu_as_if_saved_on_a_gpu,
                      check_save_load_samples_the_same, make_mixed_frame)
from tabgraa_sdv import TabGRAASynthesizer
from tabgraa_sdv import alignment as A
from tabgraa_sdv.codec import NumericColumn
from tabgraa_sdv.pretrained import TextLM
from tabgraa_sdv.text_codec import NumberGrammar, number_text
from test_alignment import arrays_held_by, holds_rows_of, rows_outside_pools

ALIGN = {'pool_size': 128, 'group_size': 16}
EOS = '<|endoftext|>'


def row_texts(frame):
    records = frame.astype(object).where(frame.notna(), None).to_dict('records')
    return [', '.join(f'{k} is {v}' for k, v in record.items()) for record in records]


def save_backbone(path, texts, vocab_size):
    """A byte-level BPE tokenizer trained on ``texts`` and an untrained one-layer GPT-2."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS)
    fast.save_pretrained(path)
    config = GPT2Config(vocab_size=len(fast), n_embd=16, n_layer=1, n_head=1, n_positions=256,
                        bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(path)
    return str(path)


@pytest.fixture(scope='module')
def backbone(tmp_path_factory):
    """Merges " 0".." 9" and " -" are learnt (numbers start with one of those tokens)."""
    frame = make_mixed_frame()
    spelled = [' 0 1 2 3 4 5 6 7 8 9 - -1 -2'] * 200
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return save_backbone(tmp_path_factory.mktemp('tiny-gpt2'),
                             row_texts(frame) + spelled, vocab_size=400)


@pytest.fixture(scope='module')
def bytes_backbone(tmp_path_factory):
    """No merges at all: " 4" is two tokens, so the space before a number is forced."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return save_backbone(tmp_path_factory.mktemp('bytes-gpt2'), ['a'], vocab_size=257)


def tiny_text_kwargs(backbone, **overrides):
    kwargs = {'backbone': backbone, 'epochs': 1, 'batch_size': 64, 'learning_rate': 1e-3,
              'seed': 0, 'device': TEST_DEVICE, 'rounds': 0}
    kwargs.update(overrides)
    return kwargs


def odd_frame(n_rows=200, seed=0):
    """Prefix-sharing, multi-token and comma-holding categories; negative decimals; a grid
    with a step; a mostly-missing number."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        'city': rng.choice(['New', 'New York', 'New York City', 'Boston, MA', 'Boston; MA'],
                           n_rows),
        'temp': np.round(rng.normal(-5, 10, n_rows), 1),
        'count': rng.integers(0, 40, n_rows) * 25 - 300,
        'rare': np.where(rng.random(n_rows) < 0.9, np.nan, rng.integers(0, 5, n_rows)),
        'flag': rng.random(n_rows) < 0.5,
    })


def assert_valid(lm, sample, train):
    """Every value is on the column's exact grid (encode raises otherwise), categories are
    training categories, numbers are inside the training range."""
    lm.codec.encode(sample)
    for name in train.columns:
        column = lm.codec.columns[lm.codec.column_names.index(name)]
        if isinstance(column, NumericColumn):
            values = sample[name].dropna()
            assert values.min() >= train[name].min() and values.max() <= train[name].max()
        else:
            seen = set(train[name].astype(object).where(train[name].notna(), None))
            assert set(sample[name].astype(object).where(sample[name].notna(), None)) <= seen


# ----------------------------------------------------------------------------- the codec
def enumerate_grammar(grammar):
    """Every value the automaton accepts (as local codes), by depth-first search; and no
    reachable state is a dead end (neither complete nor continuable)."""
    out, stack = [], [grammar.start]
    while stack:
        state = stack.pop()
        options = grammar.options(state)
        assert options.tokens or options.terminal, f'dead end at {state!r}'
        if options.terminal:
            out.append(tuple(grammar.codes(state)))
        stack.extend(grammar.step(state, t) for t in options.tokens)
    return out


@pytest.mark.parametrize('values, max_base', [
    (np.arange(-30, 31, dtype=float), 256),  # signs, one token per grid point
    (np.round(np.linspace(-3, 3, 41), 2), 256),  # decimals, '-0.xx'
    (np.array([-1005.0, 0, 35, 1000, 2000, 7, np.nan]), 256),  # few values over a wide range
    (np.arange(0, 3000, 7) * 5 - 700.0, 4),  # a step of 5, quantile bins with offset digits
    (np.array([0.5, 0.25, np.nan, 12.75]), 2),
    (np.array([np.nan, np.nan]), 256),  # all missing
])
def test_number_grammar_accepts_exactly_the_columns_grid(values, max_base):
    column = NumericColumn.fit('x', pd.Series(values), max_base=max_base)
    lead = {c: 100 + i for i, c in enumerate('-0123456789')}
    mid = {c: 200 + i for i, c in enumerate('-0123456789.')}
    grammar = NumberGrammar(column, lead, mid, missing=(999, 998))
    accepted = enumerate_grammar(grammar)
    legal = {int(k) for s, w in zip(column.starts, column.widths) for k in range(s, s + w)}
    expected = {tuple(column.codes_of_grid(np.array([k]))[0]) for k in legal}
    if column.has_nan:
        expected.add(tuple(column.codes_of_grid(np.array([-1]))[0]))
    assert len(accepted) == len(set(accepted)) == len(expected)
    assert set(accepted) == expected
    # and every training value's text is a path through it
    for codes in column.encode(pd.Series(values)):
        state = grammar.start
        for token in grammar.path(codes):
            assert token in grammar.options(state).tokens
            state = grammar.step(state, token)
        assert grammar.options(state).terminal
        np.testing.assert_array_equal(grammar.codes(state), codes)


def test_number_text_has_the_columns_decimals():
    assert number_text(-50, 2) == '-0.50'
    assert number_text(5, 3) == '0.005'
    assert number_text(1234567, 0) == '1234567'
    assert number_text(-7, 1) == '-0.7'


def test_rows_are_written_as_great_text(backbone):
    frame = make_mixed_frame(20)
    lm = TextLM(backbone, device=TEST_DEVICE).prepare(frame)
    row = frame.iloc[0]
    score = 'None' if pd.isna(row['score']) else f"{row['score']:.1f}"
    color = 'None' if row['color'] is None else row['color']
    expected = (f"age is {row['age']}, income is {row['income']:.2f}, color is {color}, "
                f"member is {row['member']}, joined is {row['joined'].value}, "
                f"score is {score}, population is {row['population']}")
    assert lm.to_text(frame.head(1)) == [expected]
    assert lm.codec.number_space == ()  # " 4" is one token in this vocabulary
    shuffled = lm.to_text(frame.head(1), order=[6, 0, 1, 2, 3, 4, 5])[0]
    assert shuffled.startswith(f"population is {row['population']}, age is")


@pytest.mark.parametrize('which', ['backbone', 'bytes_backbone'])
def test_an_untrained_model_samples_only_valid_rows(request, which):
    """No training at all: the grammar alone makes every row valid (GReaT's "no valid rows"
    failure cannot happen), for tokens with and without single-token " 4"."""
    path = request.getfixturevalue(which)
    for frame in (make_mixed_frame(), odd_frame()):
        lm = TextLM(path, device=TEST_DEVICE, seed=1).prepare(frame)
        assert (lm.codec.number_space == ()) == (which == 'backbone')
        sample = lm.sample(300)
        assert len(sample) == 300 and list(sample.columns) == list(frame.columns)
        assert_valid(lm, sample, frame)
        assert sample.drop_duplicates().shape[0] > 250  # an untrained model: near uniform
    # every category, including ones whose tokens prefix another's, is reachable
    assert set(sample['city']) == set(frame['city'])
    assert sample['rare'].isna().any() and sample['rare'].notna().any()


def test_commas_in_categories_do_not_break_the_separator(backbone):
    lm = TextLM(backbone, device=TEST_DEVICE).prepare(odd_frame())
    grammar = lm.codec.grammars[0]
    texts = [lm.tokenizer.decode(list(p)) for p in grammar.paths]
    assert texts == [' Boston; MA', ' Boston; MA (2)', ' New', ' New York', ' New York City']


# --------------------------------------------------------------- fitting and alignment
@pytest.fixture(scope='module')
def fitted_text(backbone, mixed_frame, mixed_metadata):
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_text_kwargs(
        backbone, rounds=1, **ALIGN))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer.fit(mixed_frame)
    return synthesizer


@pytest.fixture(scope='module')
def fitted_lora(backbone, mixed_frame, mixed_metadata):
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_text_kwargs(
        backbone, rounds=1, lora={'r': 2, 'lora_alpha': 4}, **ALIGN))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer.fit(mixed_frame)
    return synthesizer


def check_sample(sample, frame):
    assert list(sample.columns) == list(MIXED_SDTYPES)
    assert sample.dtypes.to_dict() == frame.dtypes.to_dict()
    assert set(sample['color'].dropna()) <= set(frame['color'].dropna())
    for name in ('age', 'income', 'score', 'population', 'joined'):
        values = sample[name].dropna()
        assert values.min() >= frame[name].min() and values.max() <= frame[name].max()
    income = sample['income'].to_numpy() * 100
    np.testing.assert_allclose(income, np.round(income), atol=1e-6)  # 2 decimals
    score = sample['score'].dropna().to_numpy() * 10
    np.testing.assert_allclose(score, np.round(score), atol=1e-6)  # 1 decimal
    assert (sample['joined'].dt.normalize() == sample['joined']).all()  # whole days


@pytest.mark.parametrize('which', ['fitted_text', 'fitted_lora'])
def test_fit_align_and_sample_valid_rows(request, which, mixed_frame):
    synthesizer = request.getfixturevalue(which)
    assert synthesizer._model.device.type == torch.device(TEST_DEVICE).type
    assert len(synthesizer.get_loss_values()) == 1
    history = synthesizer.get_alignment_history()
    assert history['round'].tolist() == [0, 1] and history['kept'].sum() == 1
    assert np.isfinite(history.loc[1, 'loss'])
    synthesizer.reset_sampling()
    check_sample(synthesizer.sample(200), mixed_frame)


def test_lora_trains_adapters_only_and_keeps_them(fitted_lora, backbone):
    model = fitted_lora._model.model
    assert fitted_lora._model.uses_adapters
    base = GPT2LMHeadModel.from_pretrained(backbone).state_dict()
    trained = {k.replace('.base_layer', ''): v
               for k, v in model.get_base_model().state_dict().items() if 'lora_' not in k}
    assert set(trained) == set(base)
    for name, value in base.items():  # SFT and alignment left the base weights alone
        torch.testing.assert_close(trained[name].cpu(), value, rtol=0, atol=0)
    assert fitted_lora.get_parameters()['lora'] == {'r': 2, 'lora_alpha': 4}


def test_conditions_are_met_exactly(fitted_text):
    fitted_text.reset_sampling()
    out = fitted_text.sample_from_conditions([
        Condition({'color': 'red', 'age': 30}, num_rows=20),
        Condition({'score': 55.5, 'member': True}, num_rows=10),
    ])
    assert len(out) == 30
    assert (out['color'].iloc[:20] == 'red').all() and (out['age'].iloc[:20] == 30).all()
    assert (out['score'].iloc[20:] == 55.5).all() and out['member'].iloc[20:].all()
    known = pd.DataFrame({'age': [18, 40, 79], 'color': ['blue', 'green', 'red']})
    rest = fitted_text.sample_remaining_columns(known)
    pd.testing.assert_frame_equal(rest[['age', 'color']].reset_index(drop=True), known,
                                  check_dtype=False)


def test_bad_condition_names_the_column(fitted_text):
    with pytest.raises(ValueError, match="'color'"):
        fitted_text.sample_from_conditions([Condition({'color': 'purple'}, num_rows=2)])


# ------------------------------------------------------------------------- save and load
@pytest.mark.parametrize('which', ['fitted_text', 'fitted_lora'])
def test_save_load_gives_identical_samples(request, which, tmp_path):
    synthesizer = request.getfixturevalue(which)
    loaded = check_save_load_samples_the_same(synthesizer, tmp_path / 'model.pkl', 100)
    pd.testing.assert_frame_equal(loaded.get_alignment_history(),
                                  synthesizer.get_alignment_history())


def stored_weights(lm):
    return lm.__getstate__()['_weights']


def test_saved_lora_model_holds_adapters_not_base_weights(fitted_lora):
    weights = stored_weights(fitted_lora._model)
    assert weights and all('lora_' in key for key in weights)
    base = fitted_lora._model.model.get_base_model()
    adapter_numel = sum(v.numel() for v in weights.values())
    base_numel = sum(p.numel() for n, p in base.named_parameters() if 'lora_' not in n)
    assert adapter_numel < base_numel / 5
    assert len(pickle.dumps(weights)) < 4 * base_numel / 5


def test_saved_full_model_holds_each_weight_once(fitted_text):
    model = fitted_text._model.model
    assert not fitted_text._model.uses_adapters
    weights = stored_weights(fitted_text._model)
    unique = {id(v): v for v in weights.values()}
    assert sum(v.numel() for v in unique.values()) == sum(p.numel() for p in model.parameters())
    n_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert len(pickle.dumps(weights)) < 1.2 * n_bytes + 20_000  # tied embeddings stored once


def test_a_model_saved_on_a_gpu_loads_on_the_cpu(fitted_text):
    state = check_loads_on_the_cpu_as_if_saved_on_a_gpu(fitted_text._model)
    assert all(v.device.type == 'cpu' for v in state['_weights'].values())


# ------------------------------------------------------------------- alignment, privacy
@pytest.fixture(scope='module')
def text_tokens(backbone):
    frame = make_mixed_frame(240)
    tokens = TextLM(backbone, device=TEST_DEVICE).prepare(frame).codec.encode(frame)
    return frame, tokens[:180], tokens[180:]


@pytest.mark.parametrize('lora, adapter', [(None, 'lora'), ({'r': 2}, 'lora'), (None, 'full'),
                                           ({'r': 2}, 'full')])
def test_text_alignment_losses_only_see_pool_rows_and_start_at_the_reference(
        backbone, text_tokens, monkeypatch, lora, adapter):
    frame, train, holdout = text_tokens
    lm = TextLM(backbone, lora=lora, epochs=1, learning_rate=1e-3, device=TEST_DEVICE).fit(frame)
    original, seen = A.LOSSES['tabgraa'], []

    def spy(rho_high, rho_low, beta):
        seen.append(torch.cat([rho_high, rho_low], dim=1).detach().clone())
        return original(rho_high, rho_low, beta)

    monkeypatch.setitem(A.LOSSES, 'tabgraa', spy)
    aligner = lm.align(train, holdout, record=True, rounds=2, patience=5, learning_rate=1e-2,
                       adapter=adapter, **ALIGN)
    # rho = log pi - log pi_ref is 0 before the first step (fresh adapters, SFT's adapters
    # swapped in, or a frozen copy) and not at the start of round 2: the reference stays the
    # SFT model while the policy moves on
    assert len(seen) == 8
    np.testing.assert_allclose(seen[0].cpu().numpy(), 0, atol=1e-4)
    assert seen[4].abs().max() > 1e-3
    assert len(aligner.loss_inputs) == 8 and rows_outside_pools(aligner) == []
    assert aligner.sft_tokens is None
    held = arrays_held_by(aligner.scorer) + arrays_held_by(
        {k: v for k, v in vars(aligner).items() if k not in ('pools', 'loss_inputs', 'lm')})
    assert held and not holds_rows_of(held, train) and not holds_rows_of(held, holdout)
    assert lm.uses_adapters == (lora is not None)  # LoRA for alignment only is merged back
    assert_valid(lm, lm.sample(100), frame)


def test_sequence_log_probs_match_the_sampler(backbone):
    """The scored log-likelihood is the sampler's: probabilities of all values of a tiny
    table, enumerated, sum to one."""
    frame = pd.DataFrame({'c': ['a', 'bb', 'a b'] * 5, 'n': [-1, 0, 2] * 5})
    lm = TextLM(backbone, device=TEST_DEVICE).prepare(frame)
    rows = pd.DataFrame([(c, n) for c in ['a', 'bb', 'a b'] for n in [-1, 0, 1, 2]],
                        columns=['c', 'n'])
    with torch.no_grad():
        log_probs = lm.sequence_log_probs(lm.codec.encode(rows))
    assert torch.exp(log_probs).sum().item() == pytest.approx(1.0, rel=1e-5)


# ------------------------------------------------------------------------- parameters
def test_pretrained_parameters_are_validated(backbone, mixed_metadata, tmp_path):
    with pytest.raises(ValueError, match='backbone'):
        TabGRAASynthesizer(mixed_metadata, backbone=str(tmp_path / 'missing'))
    with pytest.raises(ValueError, match='config.json'):
        TabGRAASynthesizer(mixed_metadata, backbone=str(tmp_path))  # exists, holds no model
    with pytest.raises(ValueError, match='model_config'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, model_config={'n_embd': 16})
    with pytest.raises(ValueError, match='anneal_epochs applies to the compact backbone'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, anneal_epochs=3)
    with pytest.raises(ValueError, match='resampling_factor applies to the compact backbone'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, resampling_factor=2)
    with pytest.raises(ValueError, match='rank_embedding applies to the compact backbone'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, rank_embedding=False)
    with pytest.raises(ValueError, match='column_weights weights the compact backbone'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, column_weights={'color': 2.0})
    with pytest.raises(ValueError, match='label_columns redraws tokens of the compact'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, label_columns=['color'])
    with pytest.raises(ValueError, match='lora'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, lora={'rank_of_adapter': 3})
    with pytest.raises(ValueError, match='lora'):
        TabGRAASynthesizer(mixed_metadata, backbone=backbone, lora='yes')
    from peft import LoraConfig

    config = LoraConfig(r=2)
    synthesizer = TabGRAASynthesizer(mixed_metadata, backbone=backbone, lora=config)
    assert synthesizer.get_parameters()['backbone'] == backbone
    assert synthesizer.get_parameters()['lora'] is config
    TabGRAASynthesizer(mixed_metadata, backbone='distilgpt2')  # a hub name: checked at fit
    TabGRAASynthesizer(mixed_metadata, backbone='owner/model-name.v2')


def test_max_base_reaches_a_pretrained_backbones_grid(backbone, mixed_frame, mixed_metadata):
    synthesizer = TabGRAASynthesizer(mixed_metadata, **tiny_text_kwargs(backbone, max_base=16))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        synthesizer.fit(mixed_frame)
    assert synthesizer._model.codec.grid.max_base == 16
    assert synthesizer.get_parameters()['max_base'] == 16


def test_an_unloadable_backbone_names_it_and_suggests_a_directory(mixed_frame, mixed_metadata,
                                                                  monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, 'HF_HUB_OFFLINE', True)  # no network: fail fast
    synthesizer = TabGRAASynthesizer(mixed_metadata, backbone='no-such-model-tabgraa',
                                     epochs=1, rounds=0, device='cpu')
    with pytest.raises(ValueError, match="no-such-model-tabgraa.*local directory"):
        synthesizer.fit(mixed_frame)


def test_device_none_picks_an_available_device(backbone):
    lm = TextLM(backbone)
    if torch.cuda.is_available():
        assert lm.device.type == 'cuda'
    elif getattr(torch.backends, 'mps', None) is not None and torch.backends.mps.is_available():
        assert lm.device.type == 'mps'
    else:
        assert lm.device.type == 'cpu'
    assert TextLM(backbone, device='cpu').device.type == 'cpu'
    assert os.path.isdir(lm.backbone)
