"""benchmarks/tabddpm_collapse_probe.py: where SDGym's TabDDPM loses the numeric columns."""

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import write_bool_table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'benchmarks'))

pytest.importorskip('sdgym')

import sdgym_benchmark as bench  # noqa: E402
import tabddpm_collapse_probe as probe  # noqa: E402


def test_probability_input_feeds_the_categories_as_probabilities_and_is_undone():
    from sdgym.synthesizers import tabddpm

    forward = tabddpm.MLPDiffusion.forward
    torch.manual_seed(0)
    with probe.denoiser_input('probability-input'):
        diffusion = tabddpm.GaussianMultinomialDiffusion(
            num_classes=tabddpm.np.array([3, 2]), num_numerical_features=2,
            denoise_fn=tabddpm.MLPDiffusion(7, 0, False, {'d_layers': [8, 8], 'dropout': 0.0},
                                            dim_t=8),
            num_timesteps=10)
        net = diffusion._denoise_fn
        x = torch.cat([torch.randn(4, 2), torch.log(torch.tensor(
            [[1e-30, 1, 1e-30, 1, 1e-30]] * 4))], dim=1)
        t = torch.zeros(4, dtype=torch.long)
        patched = net(x, t)
    # Outside the block the class is the paper's again, and it saw one-hot probabilities.
    assert tabddpm.MLPDiffusion.forward is forward
    expected = forward(net, torch.cat([x[:, :2], x[:, 2:].exp()], dim=1), t)
    assert torch.allclose(patched, expected)
    assert not torch.allclose(patched, forward(net, x, t))


@pytest.mark.parametrize('variant', probe.VARIANTS)
def test_run_records_every_diagnostic(tmp_path, monkeypatch, variant):
    from sdgym.synthesizers import tabddpm

    # A narrow network and a short chain keep the test fast; the probe uses SDGym's defaults.
    small = dict(bench.TABDDPM_DEFAULT, d_layers=[16, 16], num_timesteps=20)
    monkeypatch.setattr(bench, 'TABDDPM_DEFAULT', small)
    table, = bench.resolve_tables(['adult_demo'], tmp_path)
    sample = tabddpm.GaussianMultinomialDiffusion._gaussian_p_sample
    frame = probe.run(table, seed=0, steps=3, rows=60, variant=variant,
                      results=tmp_path / 'probe.csv', work=tmp_path / 'work', threads=1)
    assert tabddpm.GaussianMultinomialDiffusion._gaussian_p_sample is sample  # untraced again

    saved = pd.read_csv(tmp_path / 'probe.csv')
    assert len(saved) == len(frame) and (saved['variant'] == variant).all()
    grid = probe.timesteps(20)
    assert frame.loc[frame.kind == 'eps', 'timestep'].tolist() == grid
    assert (frame.loc[frame.kind == 'eps', 'value'] > 0).all()
    chain = frame[frame.kind == 'chain']
    assert sorted(chain['timestep'].unique()) == grid
    assert set(chain['stat']) == {'std', 'share_abs_gt_3', 'max_abs'}
    columns = frame[frame.kind == 'column']
    numeric = {'age', 'fnlwgt', 'education-num', 'capital-gain', 'capital-loss',
               'hours-per-week'}
    assert set(columns['column']) == numeric
    shares = columns[columns.stat != 'std']
    assert shares[['value', 'real_value']].stack().between(0, 1).all()
    scores = frame[frame.kind == 'score'].set_index('stat')['value']
    assert 0 <= scores['quality_score'] <= 1 and 0 <= scores['tree_detection_auc'] <= 1


def test_run_applies_the_harness_bool_workaround(tmp_path, monkeypatch):
    small = dict(bench.TABDDPM_DEFAULT, d_layers=[16, 16], num_timesteps=20)
    monkeypatch.setattr(bench, 'TABDDPM_DEFAULT', small)
    table = bench.Table.from_folder(write_bool_table(tmp_path / 'data' / 'flags', 150))
    out = probe.run(table, seed=0, steps=3, rows=60, variant='paper',
                    results=tmp_path / 'probe.csv', work=tmp_path / 'work', threads=1)
    assert out['settings'].iloc[0].endswith('; boolean_sdtype=["flag", "label"]')
    assert set(out.loc[out.kind == 'column', 'column']) == {'x'}
