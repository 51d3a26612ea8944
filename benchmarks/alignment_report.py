"""Render benchmarks/results/alignment*.csv into docs/alignment.md (between markers) and plots.

    python benchmarks/alignment_report.py
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'alignment.csv'
HISTORY = HERE / 'results' / 'alignment_history.csv'
DOC = HERE.parent / 'docs' / 'alignment.md'
FIGURES = HERE.parent / 'docs' / 'figures'
METRICS = ['quality_score', 'tree_detection_auc', 'logistic_detection', 'tstr_score',
           'dcr_share', 'mia_auc', 'fit_seconds']
# The alignment defaults: on SFT models with the attention-mask fix (code revision 2, ninth
# session; the benchmark's current default), before it with the anneal (the synthesizer's default
# since 2026-11-27), and before that without it.
DEFAULT = {'rounds': 3, 'patience': 3, 'reward': 'logodds', 'learning_rate': 2e-5,
           'anneal_epochs': 3, 'code_revision': 2}
BEFORE_FIX = {k: v for k, v in DEFAULT.items() if k != 'code_revision'}
BEFORE_ANNEAL = {k: v for k, v in BEFORE_FIX.items() if k != 'anneal_epochs'}
# The same settings on SFT models with the rank embedding (code revision 4; run in the
# thirteenth session).
RANK = {**DEFAULT, 'code_revision': 4}
# ... and on SFT models of the compact backbone without dropout (code revision 5, the
# synthesizer's defaults since the twenty-second session; run from the twenty-fourth).
NO_DROPOUT = {**DEFAULT, 'code_revision': 5}
CONFIGS = {'no_dropout': NO_DROPOUT, 'rank': RANK, 'fix': DEFAULT, 'anneal': BEFORE_FIX,
           'no_anneal': BEFORE_ANNEAL}
# SFT-only rows carry only the SFT's own settings.
SFT_KEYS = ('anneal_epochs', 'code_revision')
# The defaults with rounds selected by the paired standard error (2026-11-27, sixth session);
# a sweep, so its rows also appear, round by round, in the sweep table.
PAIRED = {**BEFORE_FIX, 'selection': 'paired'}
# The design's seeds: the generated tables of the fixed SFT use these (every objective ran on
# them); later seeds are fresh checks of a result picked after the fact, tabled apart.
DESIGN_SEEDS = (0, 1, 2)
START, END = '<!-- alignment-results:start -->', '<!-- alignment-results:end -->'


def mean_std(values):
    values = values.dropna()
    if len(values) == 0:
        return ''
    digits = 4 if values.abs().max() < 10 else 0
    if len(values) == 1:
        return f'{values.iloc[0]:.{digits}f}'
    return f'{values.mean():.{digits}f} ± {values.std():.{digits}f}'


def settings_of(label):
    return json.loads(label) if isinstance(label, str) else {}


def config_rows(results, config):
    """Rows run with ``config``: its aligned rows and the SFT-only rows of the same SFT."""
    sft_label = {k: config[k] for k in SFT_KEYS if config.get(k)}
    settings = results.settings.map(settings_of)
    return results[settings.map(lambda s: s == config) | (
        (results.objective == 'sft') & settings.map(lambda s: s == sft_label))]


def is_default(label):
    return settings_of(label) in [{}, *({k: c[k] for k in SFT_KEYS if c.get(k)}
                                         for c in CONFIGS.values()), *CONFIGS.values()]


def main_table(results, config):
    rows = config_rows(results, config)
    lines = ['| dataset | objective | seeds | ' + ' | '.join(METRICS) + ' |',
             '|---|---|---:|' + '---:|' * len(METRICS)]
    order = ['sft', 'sft_more', 'tabgraa', 'dpo', 'kto', 'npo', 'distill']
    for (dataset, objective), group in sorted(
            rows.groupby(['dataset', 'objective']),
            key=lambda item: (item[0][0], order.index(item[0][1]))):
        cells = [mean_std(group[m]) for m in METRICS]
        lines.append(f'| {dataset} | {objective} | {group.seed.nunique()} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


# About 1.5 standard errors of a share or an AUC over the metrics' 5,000 rows per side.
PRIVACY_TOLERANCE = 0.01


def beats_both(ours, sft, more):
    """The issue's rule: higher quality and lower tree detection than both SFT-only and
    sft_more (each a row or Series with those two metrics); ties do not count."""
    return bool(ours.quality_score > max(sft.quality_score, more.quality_score)
                and ours.tree_detection_auc < min(sft.tree_detection_auc,
                                                  more.tree_detection_auc))


def verdict_table(results, config):
    """The issue's target, per table, on the seed means: does tabgraa beat SFT-only and sft_more
    on quality (higher) and tree detection (lower), with privacy (distance of DCR share and MIA
    AUC from 0.5) no worse than SFT-only? Ties count as not beating. Privacy counts as worse
    when a distance from 0.5 grows by more than PRIVACY_TOLERANCE."""
    rows = config_rows(results, config)
    means = rows.groupby(['dataset', 'objective'])[METRICS].mean()
    seeds = rows.groupby(['dataset', 'objective']).seed.nunique()
    lines = ['| dataset | seeds | quality: SFT / sft_more / tabgraa | tree detection: SFT / '
             'sft_more / tabgraa | beats both on both | DCR share / MIA AUC: SFT → tabgraa | '
             'privacy no worse | seeds where tabgraa beats both on both |',
             '|---|---:|---|---|---|---|---|---:|']
    wins = 0
    for dataset in sorted(rows.dataset.unique()):
        try:
            sft, more, ours = (means.loc[(dataset, o)] for o in ('sft', 'sft_more', 'tabgraa'))
        except KeyError:
            continue
        beats = beats_both(ours, sft, more)
        private = all(abs(ours[m] - 0.5) <= abs(sft[m] - 0.5) + PRIVACY_TOLERANCE
                      for m in ('dcr_share', 'mia_auc'))
        per_seed = 0
        paired = rows[rows.dataset == dataset].pivot_table(
            index='seed', columns='objective', values=['quality_score', 'tree_detection_auc'])
        for _, seed_row in paired.iterrows():
            by_objective = seed_row.unstack(0)  # objective x (quality, tree detection)
            if {'sft', 'sft_more', 'tabgraa'} <= set(by_objective.dropna().index):
                per_seed += beats_both(*(by_objective.loc[o]
                                         for o in ('tabgraa', 'sft', 'sft_more')))
        wins += beats
        n = int(seeds.loc[(dataset, 'tabgraa')])
        lines.append(
            f'| {dataset} | {n} | {sft.quality_score:.4f} / {more.quality_score:.4f} / '
            f'{ours.quality_score:.4f} | {sft.tree_detection_auc:.4f} / '
            f'{more.tree_detection_auc:.4f} / {ours.tree_detection_auc:.4f} | '
            f"{'yes' if beats else 'no'} | {sft.dcr_share:.3f} / {sft.mia_auc:.3f} → "
            f'{ours.dcr_share:.3f} / {ours.mia_auc:.3f} | '
            f"{'yes' if private else 'no'} | {per_seed} of {len(paired)} |")
    lines.append('')
    lines.append(f'TabGRAA beats SFT-only and sft_more on both metrics (seed means) on **{wins} '
                 f'of {rows.dataset.nunique()}** tables (target: 4 of 5). Privacy counts as '
                 f'worse when the distance of DCR share or MIA AUC from 0.5 grows by more than '
                 f'{PRIVACY_TOLERANCE} (about 1.5 standard errors at 5,000 rows).')
    return '\n'.join(lines)


def objectives_table(results, config):
    """For every aligned objective run with ``config``: the tables where its seed means beat
    SFT-only and sft_more on both metrics, and how many runs kept a round after SFT."""
    rows = config_rows(results, config)
    means = rows.groupby(['dataset', 'objective'])[METRICS].mean()
    lines = ['| objective | tables where it beats SFT-only and `sft_more` on both metrics | '
             'runs that kept a later round |', '|---|---|---|']
    for objective in ('tabgraa', 'dpo', 'kto', 'npo', 'distill'):
        runs = rows[rows.objective == objective]
        if runs.empty:
            continue
        wins = [dataset for dataset in sorted(runs.dataset.unique())
                if {(dataset, o) for o in ('sft', 'sft_more')} <= set(means.index)
                and beats_both(*(means.loc[(dataset, o)]
                                 for o in (objective, 'sft', 'sft_more')))]
        lines.append(f"| {objective} | {len(wins)} of {runs.dataset.nunique()}"
                     f"{' (' + ', '.join(wins) + ')' if wins else ''} | "
                     f'{int((runs.kept_round > 0).sum())} of {len(runs)} |')
    return '\n'.join(lines)


def config_tables(results, config, main_heading, label):
    """The main, target and every-objective tables of ``config``, with their headings."""
    return [f'### {main_heading}', main_table(results, config),
            f'### The target, table by table ({label})', verdict_table(results, config),
            f'### Every objective by the same rule ({label})', objectives_table(results, config)]


def kept_round_table(results, code_revision):
    """What keeping a later round did on the test split: every run on the annealed SFT models
    of ``code_revision`` (any objective or setting, without resampling) whose held-out selection
    kept a round after SFT, against SFT-only of the same table and seed. Runs with identical
    scores (the same decisions under another selection rule) count once."""
    settings = results.settings.map(settings_of)
    annealed = settings.map(lambda s: s.get('anneal_epochs') == 3
                            and s.get('code_revision', 1) == code_revision
                            and s.get('resampling_factor', 1) == 1)
    sft = results[annealed & (results.objective == 'sft')].set_index(['dataset', 'seed'])
    kept = results[annealed & (results.objective != 'sft') & (results.kept_round > 0)]
    kept = kept.drop_duplicates(['dataset', 'objective', 'seed', 'quality_score',
                                 'tree_detection_auc'])
    if kept.empty:
        return '(no run kept a later round)'
    base = sft.loc[list(zip(kept.dataset, kept.seed))]
    kept = kept.assign(
        quality=kept.quality_score.to_numpy() - base.quality_score.to_numpy(),
        tree=kept.tree_detection_auc.to_numpy() - base.tree_detection_auc.to_numpy())
    lines = ['| dataset | runs that kept a later round | quality change (mean; runs up) | '
             'tree detection change (mean; runs down = better) |', '|---|---:|---|---|']
    for dataset, group in kept.groupby('dataset'):
        lines.append(f'| {dataset} | {len(group)} | {group.quality.mean():+.4f}; '
                     f'{(group.quality > 0).sum()} | {group.tree.mean():+.4f}; '
                     f'{(group.tree < 0).sum()} |')
    lines.append(f'| all | {len(kept)} | {kept.quality.mean():+.4f}; {(kept.quality > 0).sum()} '
                 f'| {kept.tree.mean():+.4f}; {(kept.tree < 0).sum()} |')
    return '\n'.join(lines)


def paired_selection_summary(results, sweep_history):
    """How the paired selection rule compared with the default one: runs (same table, objective
    and seed) whose kept round is the same under both, and the paired SE of each round's
    difference to the best earlier round as a multiple of the round's own SE."""
    key = ['dataset', 'objective', 'seed']
    paired = results[results.settings == json.dumps(PAIRED)]
    if paired.empty or 'detection_auc_paired_se' not in sweep_history:
        return '(no paired-selection runs yet)'
    default = results[results.settings == json.dumps(BEFORE_FIX)]
    both = paired.merge(default, on=key, suffixes=('', '_default'))
    same = int((both.kept_round == both.kept_round_default).sum())
    rounds = sweep_history[(sweep_history.settings == json.dumps(PAIRED))
                           & (sweep_history['round'] > 0)]
    ratio = rounds.detection_auc_paired_se / rounds.detection_auc_se
    return (f'Runs where the paired rule kept the same round as the default rule: **{same} of '
            f'{len(both)}**. Paired SE of a round\'s difference to the best earlier round, as a '
            f'multiple of the round\'s own SE, over {len(ratio)} rounds: {ratio.min():.2f}–'
            f'{ratio.max():.2f}, below 1 in {int((ratio < 1).sum())}.')


def paired_table(sft, before, after, metrics):
    """SFT-only rows labelled ``before`` against those labelled ``after`` (settings dicts), on
    the seeds both ran: seed means, ``before → after``."""
    sft = sft.assign(label=sft.settings.map(settings_of).map(
        lambda s: 'before' if s == before else 'after' if s == after else None)).dropna(
        subset=['label'])
    lines = ['| dataset | seeds | ' + ' | '.join(metrics) + ' |',
             '|---|---:|' + '---|' * len(metrics)]
    for dataset, group in sft.groupby('dataset'):
        paired = group.pivot_table(index='seed', columns='label', values=list(metrics)).dropna()
        if paired.empty or paired.columns.get_level_values(1).nunique() < 2:
            continue
        cells = []
        for m in metrics:
            digits = 0 if m.endswith('seconds') else 4
            cells.append(f"{paired[m]['before'].mean():.{digits}f} → "
                         f"{paired[m]['after'].mean():.{digits}f}")
        lines.append(f'| {dataset} | {len(paired)} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def anneal_table(results):
    """SFT-only without and with the anneal, on the seeds both ran."""
    return paired_table(results[results.objective == 'sft'], {}, {'anneal_epochs': 3},
                        ('quality_score', 'tree_detection_auc', 'tstr_score', 'fit_seconds'))


def dropout_table(results):
    """SFT-only (annealed) with the rank embedding, before and after dropout was turned off
    (code revisions 4 and 5), on the seeds both ran."""
    return paired_table(results[results.objective == 'sft'],
                        {'anneal_epochs': 3, 'code_revision': 4},
                        {'anneal_epochs': 3, 'code_revision': 5}, METRICS)


def fix_table(results):
    """SFT-only (annealed) before and after the attention-mask fix, on the seeds both ran."""
    return paired_table(results[results.objective == 'sft'], {'anneal_epochs': 3},
                        {'anneal_epochs': 3, 'code_revision': 2}, METRICS)


def resampling_table(results):
    """SFT-only (annealed) without and with density-ratio resampling, same seeds."""
    return paired_table(results[results.objective == 'sft'], {'anneal_epochs': 3},
                        {'anneal_epochs': 3, 'resampling_factor': 4}, METRICS)


def fresh_seed_table(results, objectives=('tabgraa', 'npo')):
    """Rows of the fixed SFT's defaults on seeds outside DESIGN_SEEDS: per table and seed,
    quality and tree detection of SFT-only, sft_more and ``objectives``, and whether each
    objective beats both baselines on both metrics."""
    rows = config_rows(results, DEFAULT)
    rows = rows[~rows.seed.isin(DESIGN_SEEDS)]
    if rows.empty:
        return '(no fresh seeds yet)'
    names = ['sft', 'sft_more', *objectives]
    lines = ['| dataset | seed | quality: ' + ' / '.join(names) + ' | tree detection: '
             + ' / '.join(names) + ' | ' + ' | '.join(f'{o} beats both' for o in objectives)
             + ' |', '|---|---:|---|---|' + '---|' * len(objectives)]
    for (dataset, seed), group in rows.groupby(['dataset', 'seed']):
        by = group.set_index('objective')
        if not set(names) <= set(by.index):
            continue
        cells = [' / '.join(f'{by.loc[o, m]:.4f}' for o in names)
                 for m in ('quality_score', 'tree_detection_auc')]
        cells += ['yes' if beats_both(by.loc[o], by.loc['sft'], by.loc['sft_more']) else 'no'
                  for o in objectives]
        lines.append(f'| {dataset} | {seed} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def sweep_table(results, sweep_history):
    rows = results[results.objective.isin(['tabgraa', 'distill'])
                   & ~results.settings.map(is_default)]
    if rows.empty:
        return '(no sweep rows yet)'
    lines = ['| dataset | objective | seed | settings | held-out detection AUC per round, 0 = SFT | '
             'its standard error (paired, against the best earlier round) | '
             'mean entropy per round | kept round | quality_score | tree_detection_auc |',
             '|---|---|---:|---|---|---|---|---:|---:|---:|']
    for _, row in rows.iterrows():
        rounds = sweep_history[(sweep_history.settings == row.settings)
                               & (sweep_history.objective == row.objective)
                               & (sweep_history.dataset == row.dataset)
                               & (sweep_history.seed == row.seed)].sort_values('round')
        auc = ' → '.join(f'{v:.3f}' for v in rounds.detection_auc)
        entropy = ' → '.join(f'{v:.2f}' for v in rounds.mean_entropy)
        se = ' → '.join(
            f'{v:.4f}' + (f' ({p:.4f})' if pd.notna(p) else '') for v, p in zip(
                rounds.detection_auc_se, rounds.get('detection_auc_paired_se',
                                                     pd.Series(float('nan'), rounds.index))))
        lines.append(f"| {row.dataset} | {row.objective} | {row.seed} | `{row.settings}` | {auc} | "
                     f"{se} | {entropy} | "
                     f'{row.kept_round} | {row.quality_score:.4f} | {row.tree_detection_auc:.4f} |')
    return '\n'.join(lines)


def plot(history):
    FIGURES.mkdir(parents=True, exist_ok=True)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (dataset, objective), group in history.groupby(['dataset', 'objective']):
        group = group.groupby('round', as_index=False).mean(numeric_only=True)
        right.plot(group['round'], group['detection_auc'], marker='o', label=f'{dataset} {objective}')
        if objective == 'tabgraa':
            left.plot(group['round'], group['reward_high_mean'], marker='^', label=f'{dataset} G+')
            left.plot(group['round'], group['reward_low_mean'], marker='v', label=f'{dataset} G-')
    left.set(xlabel='round', ylabel='log-odds reward', title='TabGRAA: mean reward of G+ and G-')
    right.set(xlabel='round (0 = SFT)', ylabel='held-out detection AUC',
              title='Detection AUC of each round\'s pool (0.5 ideal)')
    right.axhline(0.5, color='grey', linestyle=':')
    for axis in (left, right):
        axis.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    path = FIGURES / 'alignment_rounds.png'
    figure.savefig(path, dpi=120)
    return path


def main():
    results = pd.read_csv(RESULTS)
    history = pd.read_csv(HISTORY)
    if 'settings' in history:  # the plot shows the latest defaults that have rows
        for config in (NO_DROPOUT, RANK, DEFAULT):
            current = history[history.settings == json.dumps(config)]
            if len(current):
                break
        else:
            current = history[history.settings.isna()]
        history = current
    sweep_path = HISTORY.with_name('alignment_sweep_history.csv')
    sweep_history = pd.read_csv(sweep_path) if sweep_path.exists() else pd.DataFrame(
        columns=['settings', 'dataset', 'seed', 'round', 'detection_auc', 'mean_entropy'])
    path = plot(history)
    design = results[~(results.settings.map(settings_of).map(lambda s: s.get('code_revision'))
                       == 2) | results.seed.isin(DESIGN_SEEDS)]
    body = '\n\n'.join([
        'Generated by `python benchmarks/alignment_report.py` from '
        '`benchmarks/results/alignment.csv` (mean ± std over seeds; one value where one seed ran).',
        *config_tables(results, NO_DROPOUT, 'Default settings, SFT without dropout (`'
                       + json.dumps(NO_DROPOUT) + '`; the tables and seeds run so far)',
                       'code revision 5'),
        '### What a kept later round did on the test split (code revision 5, against SFT-only '
        'of the same seed)', kept_round_table(results, 5),
        '### SFT-only with dropout 0.1 → without (code revisions 4 → 5, same seeds)',
        dropout_table(results),
        *config_tables(results, RANK, 'Default settings, SFT with the rank embedding (`'
                       + json.dumps(RANK) + '`; the tables and seeds run so far)',
                       'code revision 4'),
        '### What a kept later round did on the test split (code revision 4, against SFT-only '
        'of the same seed)', kept_round_table(results, 4),
        *config_tables(design, DEFAULT, 'Default settings, SFT with the attention-mask fix (`'
                       + json.dumps(DEFAULT) + '`; seeds 0–2)', 'SFT with the fix; seeds 0–2'),
        '### A fresh seed, run after the table above (SFT with the fix)',
        fresh_seed_table(results),
        '### What a kept later round did on the test split (SFT with the fix, seeds 0–2, '
        'against SFT-only of the same seed)', kept_round_table(design, 2),
        '### SFT-only before → after the fix (same seeds)', fix_table(results),
        *config_tables(results, BEFORE_FIX, 'Before the fix: default settings, SFT with the '
                       'anneal (`' + json.dumps(BEFORE_FIX) + '`)',
                       'before the fix, SFT with the anneal'),
        '### The target, table by table, with rounds selected by the paired standard error (`'
        + json.dumps(PAIRED) + '`; before the fix; every run, round by round, in the sweep '
        'table below)',
        verdict_table(results, PAIRED), paired_selection_summary(results, sweep_history),
        '### What a kept later round did on the test split (before the fix, SFT with the '
        'anneal, every objective and setting, against SFT-only of the same seed)',
        kept_round_table(results, 1),
        '### The SFT anneal (SFT-only rows, same seeds; before the fix)', anneal_table(results),
        '### Density-ratio resampling (`resampling_factor=4`; SFT-only rows with the anneal, '
        'same seeds; before the fix)', resampling_table(results),
        '### Before the fix and the anneal (`' + json.dumps(BEFORE_ANNEAL) + '`)',
        main_table(results, BEFORE_ANNEAL),
        '### The target, table by table (before the fix and the anneal)',
        verdict_table(results, BEFORE_ANNEAL),
        '### Other settings tried for `tabgraa` and `distill`',
        sweep_table(results, sweep_history),
        f'![reward and detection per round]({path.relative_to(DOC.parent)})',
    ])
    text = DOC.read_text()
    start, end = text.index(START) + len(START), text.index(END)
    DOC.write_text(text[:start] + '\n' + body + '\n' + text[end:])
    print(f'wrote {DOC} and {path}')


if __name__ == '__main__':
    main()
