"""One process of a multi-process fit, run by tests/test_distributed.py under torchrun (or alone).

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_worker.py OUT BACKBONE

Fits a small table on the CPU (gloo), samples, saves and reloads, and writes what this process
saw to OUT/rank<k>.json so the test can compare processes with each other and with one process.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sdv.metadata import Metadata
from sdv.sampling import Condition

from tabgraa_sdv import TabGRAASynthesizer
from tabgraa_sdv.devices import DataParallel


def frame(n_rows=240, seed=0):
    rng = np.random.default_rng(seed)
    group = rng.choice(['a', 'b', 'c'], n_rows)
    return pd.DataFrame({'group': group,
                         'x': np.round(rng.normal(size=n_rows) + (group == 'a') * 2, 2),
                         'n': rng.integers(0, 20, n_rows)})


def weights_digest(model):
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(out, backbone):
    out = Path(out)
    data = frame()
    metadata = Metadata.detect_from_dataframe(data, table_name='t')
    kwargs = {'epochs': 3, 'batch_size': 64, 'seed': 0, 'device': 'cpu', 'rounds': 1,
              'pool_size': 200, 'group_size': 16, 'patience': 1}
    if backbone == 'compact':
        kwargs['model_config'] = {'dropout': 0.0}  # so one process and two match closely
    else:
        kwargs.update(backbone=backbone, learning_rate=1e-3, pool_size=64, group_size=8)
    synthesizer = TabGRAASynthesizer(metadata, **kwargs)
    synthesizer.fit(data)
    parallel = DataParallel('cpu')
    sample = synthesizer.sample(37)
    conditioned = synthesizer.sample_from_conditions([Condition({'group': 'b'}, num_rows=9)])
    synthesizer.save(out / 'model.pkl')
    reloaded = TabGRAASynthesizer.load(out / 'model.pkl').sample(5)
    report = {
        'rank': parallel.rank, 'size': parallel.size,
        'loss': synthesizer.get_loss_values().to_dict('list'),
        'alignment': synthesizer.get_alignment_history()[['round', 'detection_auc', 'kept']]
        .to_dict('list'),
        'weights': weights_digest(synthesizer._model.model),
        'sample': sample.to_csv(index=False),
        'conditioned_groups': sorted(conditioned['group'].unique().tolist()),
        'conditioned_rows': len(conditioned),
        'reloaded_rows': len(reloaded),
    }
    (out / f'rank{parallel.rank}.json').write_text(json.dumps(report))


if __name__ == '__main__':
    main(*sys.argv[1:3])
