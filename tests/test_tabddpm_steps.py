"""benchmarks/tabddpm_steps.py: TabDDPM scored at checkpoints of one training run."""

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'benchmarks'))

import sdgym_benchmark as bench  # noqa: E402
import tabddpm_steps  # noqa: E402

pytest.importorskip('sdgym')


def test_checkpoints_end_with_the_run():
    assert tabddpm_steps.checkpoints(1000, [250, 2000, 500, 1000, 0]) == [250, 500, 1000]


def test_scoring_checkpoints_leaves_the_training_unchanged(tmp_path, monkeypatch):
    from sdgym.synthesizers.tabddpm import TabDDPM

    # A narrow network keeps the test fast; the real run uses the paper's configuration.
    small = dict(bench.TABDDPM_ADULT_TUNED, d_layers=[32, 32], num_timesteps=10)
    monkeypatch.setattr(bench, 'TABDDPM_ADULT_TUNED', small)
    results = tmp_path / 'steps.csv'
    table, = bench.resolve_tables(['adult_demo'], tmp_path)
    model = tabddpm_steps.run(table, seed=0, steps=6, at=[2, 4, 6], rows=200, results=results,
                              work=tmp_path / 'work', threads=1, final_rows=300)

    rows = pd.read_csv(results)
    assert rows['step'].tolist() == [2, 4, 6]
    assert (rows['total_steps'] == 6).all()
    assert rows['synthetic_rows'].tolist() == [200, 200, 300]
    # The last checkpoint, the fitted model, gets every metric of the SDGym harness.
    assert rows[['dcr_share', 'mia_auc', 'beta_recall']].iloc[:2].isna().all().all()
    assert rows[['dcr_share', 'mia_auc', 'beta_recall']].iloc[2].notna().all()
    assert rows['quality_score'].between(0, 1).all()
    assert rows['tree_detection_auc'].between(0, 1).all()
    assert rows['train_seconds'].is_monotonic_increasing

    # The same fit with no checkpoints: scoring forked the random streams, so the weights match.
    train, _, metadata, _ = bench.load_prepared(bench.prepare_table(table, tmp_path / 'work'))
    bench.seed_everything(0)
    plain = TabDDPM(metadata, seed=0, **dict(small, steps=6, target_column='income'))
    plain.fit(train)
    for name, value in plain._diffusion.state_dict().items():
        assert torch.equal(value, model._diffusion.state_dict()[name]), name


def test_resume_skips_a_finished_run_and_restarts_an_interrupted_one(tmp_path, monkeypatch):
    results = tmp_path / 'steps.csv'
    finished = {'dataset': 'adult_demo', 'seed': 0, 'total_steps': 6, 'step': 6}
    pd.DataFrame([dict(finished, step=3), finished]).to_csv(results, index=False)
    calls = []
    monkeypatch.setattr(tabddpm_steps, 'run', lambda *args: calls.append(args))
    monkeypatch.setattr(tabddpm_steps, 'plot', lambda *args: None)
    monkeypatch.setattr(tabddpm_steps, 'table', lambda *args: 'table')
    argv = ['--dataset', 'adult_demo', '--steps', '6', '--results', str(results),
            '--work', str(tmp_path / 'work'), '--docs', str(tmp_path / 'doc.md')]
    tabddpm_steps.main(argv)
    assert calls == []

    pd.DataFrame([dict(finished, step=3)]).to_csv(results, index=False)  # interrupted at 3
    tabddpm_steps.main(argv)
    assert len(calls) == 1 and calls[0][3] == [6]  # only checkpoints within 6 steps
    assert pd.read_csv(results).empty  # the partial row is gone; run() writes them again
    assert 'table' in (tmp_path / 'doc.md').read_text()  # between the markers


def test_table_lists_every_checkpoint_and_the_last_ones_other_metrics(tmp_path):
    results = tmp_path / 'steps.csv'
    base = {'dataset': 'adult', 'seed': 0, 'total_steps': 4, 'quality_score': 0.9,
            'tree_detection_auc': 0.7, 'tstr_score': 0.8, 'synthetic_rows': 10,
            'train_seconds': 1.0, 'sample_seconds': 2.0, 'settings': 'steps=4',
            'machine': 'here', 'threads': 2}
    pd.DataFrame([dict(base, step=2), dict(base, step=4, mia_auc=0.51)]).to_csv(results,
                                                                                index=False)
    text = tabddpm_steps.table(results)
    assert text.count('| adult | 0 | 4 |') == 2
    assert 'mia_auc 0.5100' in text and '`steps=4`' in text
