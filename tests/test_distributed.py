"""Multi-process training and sampling (``accelerate launch`` / ``torchrun``), on CPU processes.

Two gloo processes on the CPU run the same code path as one process per GPU: every batch split
between processes, gradients summed, samples split and gathered, the file saved once.
"""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tabgraa_sdv.devices import (DataParallel, generator_state, launched_processes,
                                 resolve_device, restore_generator)

WORKER = Path(__file__).with_name('distributed_worker.py')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def launch(out, backbone, processes, launcher='torchrun'):
    out.mkdir(parents=True, exist_ok=True)
    if launcher == 'accelerate':  # as documented for GPUs; without CUDA it runs gloo processes
        command = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu',
                   f'--num_processes={processes}', '--num_machines=1', '--mixed_precision=no',
                   '--dynamo_backend=no', f'--main_process_port={free_port()}']
    else:
        command = [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                   f'--nproc_per_node={processes}']
    command += [str(WORKER), str(out), backbone]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((out / f'rank{k}.json').read_text()) for k in range(processes)]


@pytest.fixture(scope='module')
def compact_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('distributed')
    return (launch(root / 'one', 'compact', 1),
            launch(root / 'two', 'compact', 2, launcher='accelerate'))


def test_outside_a_launch_everything_is_one_process():
    parallel = DataParallel('cpu')
    assert launched_processes() == 1 and not parallel.active and parallel.is_main
    assert parallel.shard(7) == slice(0, 7) and parallel.sum(2.5) == 2.5
    assert resolve_device('cpu').type == 'cpu'


def test_a_generator_state_restores_on_its_own_kind_of_device_only():
    """A pickled sampler resumes its random stream where it was saved, on the kind of device
    that saved it; elsewhere (a GPU's Philox state on the CPU) it starts again from the seed."""
    generator = torch.Generator().manual_seed(5)
    torch.rand(3, generator=generator)
    saved = generator_state(generator)
    assert saved[0] == 'cpu' and generator_state(None) is None
    restored = restore_generator(saved, torch.device('cpu'))
    assert torch.equal(torch.rand(4, generator=restored), torch.rand(4, generator=generator))
    philox = ('cuda', torch.zeros(16, dtype=torch.uint8))  # a CUDA state: seed and offset
    assert restore_generator(philox, torch.device('cpu')) is None
    assert restore_generator(saved, torch.device('meta')) is None
    assert restore_generator(None, torch.device('cpu')) is None
    # pickles from before the device type was kept hold the bare tensor
    legacy = restore_generator(generator.get_state(), torch.device('cpu'))
    assert torch.equal(torch.rand(2, generator=legacy), torch.rand(2, generator=generator))
    assert restore_generator(philox[1], torch.device('cpu')) is None  # an old GPU pickle


def test_processes_agree_on_weights_history_and_rows(compact_runs):
    _, (first, second) = compact_runs
    assert (first['rank'], second['rank'], first['size']) == (0, 1, 2)
    for key in ('loss', 'alignment', 'weights', 'sample'):
        assert first[key] == second[key], key
    assert len(first['sample'].splitlines()) == 1 + 37


def test_two_processes_train_like_one(compact_runs):
    """Each step sums both halves' gradients, so the loss curve is one process's (up to the
    order of floating-point sums)."""
    (alone,), (first, _) = compact_runs
    for column in ('Train Loss', 'Validation Loss'):
        np.testing.assert_allclose(first['loss'][column], alone['loss'][column], rtol=1e-5)


def test_conditions_and_saving_work_across_processes(compact_runs):
    _, runs = compact_runs
    for report in runs:
        assert report['conditioned_groups'] == ['b'] and report['conditioned_rows'] == 9
        assert report['reloaded_rows'] == 5


def test_a_pretrained_backbone_trains_across_processes(tmp_path):
    from test_pretrained import row_texts, save_backbone

    sys.path.insert(0, str(WORKER.parent))
    from distributed_worker import frame

    backbone = save_backbone(tmp_path / 'tiny-gpt2', row_texts(frame()), vocab_size=300)
    first, second = launch(tmp_path / 'run', backbone, 2)
    for key in ('loss', 'alignment', 'weights', 'sample'):
        assert first[key] == second[key], key
    assert first['conditioned_groups'] == ['b'] and len(first['sample'].splitlines()) == 38


def test_the_example_script_runs_in_one_process(tmp_path):
    sys.path.insert(0, str(WORKER.parents[1] / 'examples'))
    from multi_gpu import main

    main(['--device', 'cpu', '--epochs', '1', '--rounds', '0', '-n', '50',
          '--model', str(tmp_path / 'model.pkl'), '--samples', str(tmp_path / 'rows.csv')])
    assert (tmp_path / 'model.pkl').is_file()
    assert len((tmp_path / 'rows.csv').read_text().splitlines()) == 51
