"""How much does ``quality_score`` move between two samples of the same model?

    python benchmarks/quality_noise_probe.py magic shoppers adult default beijing --draws 10

``quality_score`` is SDMetrics' QualityReport: the mean of Column Shapes and Column Pair
Trends. For a pair of one numeric and one categorical column, Column Pair Trends (SDMetrics
0.32, ``ColumnPairTrends._get_processed_data``) cuts the numeric column into 10 equal-width bins
*of each table's own range* -- the real table's bins from the real extremes, the synthetic
table's from the synthetic extremes -- and compares the two contingency tables cell by cell. One
synthetic row beyond the real range shifts every synthetic bin edge, so the score of such a
pair can fall from 0.91 to 0.63 while the joint distribution is unchanged (magic,
``fM3Long`` x ``class``: docs/alignment.md). SDMetrics' own ``ContingencySimilarity`` with
``continuous_column_names`` bins both tables on the *real* column's edges, open-ended.

For each table this probe scores ``--draws`` independent samples of ``len(test)`` rows against
the test split, from two sources: ``Real`` (rows of the training split, drawn without
replacement: a perfect generator) and ``TabGRAA-SFT`` (the cached SFT model of
``benchmarks/alignment.py``, seed 0, successive draws of one sampler). Each draw gets
``quality_score`` as the benchmarks compute it, and ``quality_real_bins``: the same report with
each numeric x categorical pair rescored by ``ContingencySimilarity`` on the real bins. Rows go
to ``benchmarks/results/quality_noise_probe.csv``.
"""

import warnings
from pathlib import Path

import numpy as np

from alignment import load_table, probe_parser, record_row, sft_synthesizer
from sdgym_benchmark import machine_description
from tabgraa_sdv.metrics import quality_real_bins

HERE = Path(__file__).parent
RESULTS = HERE / 'results' / 'quality_noise_probe.csv'


def quality_scores(real, synthetic, table_metadata):
    """``quality_score`` (the report's) and ``quality_real_bins`` (``tabgraa_sdv.metrics``:
    numeric x categorical pairs rescored on the real column's bins), with the parts each
    averages: Column Shapes, and Column Pair Trends both ways."""
    from sdmetrics.reports.single_table import QualityReport

    report = QualityReport()
    report.generate(real, synthetic, table_metadata, verbose=False)
    shapes = float(report.get_details('Column Shapes')['Score'].mean())
    real_bins = quality_real_bins(report, real, synthetic, table_metadata)
    return {'quality_score': float(report.get_score()), 'column_shapes': shapes,
            'pair_trends': float(report.get_details('Column Pair Trends')['Score'].mean()),
            'pair_trends_real_bins': 2 * real_bins - shapes, 'quality_real_bins': real_bins}


def main(argv=None):
    parser = probe_parser(__doc__, RESULTS, seeds=None)
    parser.add_argument('--draws', type=int, default=10)
    parser.add_argument('--sources', nargs='+', default=['Real', 'TabGRAA-SFT'])
    args = parser.parse_args(argv)
    warnings.filterwarnings('ignore', module='sdmetrics')
    for name in args.datasets:
        train, test, metadata, _ = load_table(args.root, name)
        table_metadata = next(iter(metadata.to_dict()['tables'].values()))
        for source in args.sources:
            if source == 'TabGRAA-SFT':
                synthesizer, _ = sft_synthesizer(args.root, name, 0, anneal_epochs=3)
                synthesizer.reset_sampling()
            for draw in range(args.draws):
                if source == 'Real':
                    rng = np.random.default_rng(draw)
                    synthetic = train.iloc[rng.choice(len(train), len(test), replace=False)]
                else:
                    synthetic = synthesizer.sample(len(test))
                scores = quality_scores(test, synthetic.reset_index(drop=True), table_metadata)
                record_row(args.results, {'dataset': name, 'source': source, 'draw': draw,
                                          'rows': len(test), **scores,
                                          'machine': machine_description()})


if __name__ == '__main__':
    main()
