"""The command line: fit, sample (with conditions), evaluate, options and clear errors."""

import pandas as pd
import pytest

from conftest import TEST_DEVICE, make_mixed_frame
from tabgraa_sdv import TabGRAASynthesizer
from tabgraa_sdv.cli import main


@pytest.fixture(scope='module')
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp('cli')
    frame = make_mixed_frame(200)[['age', 'income', 'color', 'member']]
    frame.to_csv(folder / 'data.csv', index=False)
    return folder


@pytest.fixture(scope='module')
def model(table):
    path = table / 'model.pkl'
    code = main(['fit', str(table / 'data.csv'), '-o', str(path), '--epochs', '1',
                 '--anneal-epochs', '2', '--rounds', '0', '--objective', 'dpo', '--reward', 'realism',
                 '--learning-rate', '0.002', '--resampling-factor', '2', '--label-column',
                 'member', '--device', TEST_DEVICE, '--quiet'])
    assert code == 0
    return path


def test_fit_passes_its_options_to_the_synthesizer(model):
    parameters = TabGRAASynthesizer.load(model).get_parameters()
    assert (parameters['epochs'], parameters['anneal_epochs'], parameters['rounds'],
            parameters['objective'], parameters['reward'], parameters['learning_rate'],
            parameters['resampling_factor'], parameters['label_columns']) == (
        1, 2, 0, 'dpo', 'realism', 0.002, 2, ['member'])


def test_sample_writes_rows_that_meet_the_conditions(model, table, capsys):
    out = table / 'conditioned.csv'
    assert main(['sample', str(model), '-n', '25', '-o', str(out),
                 '--condition', 'color=red', '--condition', 'member=true']) == 0
    rows = pd.read_csv(out)
    assert len(rows) == 25 and set(rows['color']) == {'red'} and rows['member'].all()
    assert 'wrote 25 rows' in capsys.readouterr().out


def test_evaluate_prints_the_quality_score(model, table, capsys):
    out = table / 'rows.csv'
    assert main(['sample', str(model), '-n', '100', '-o', str(out)]) == 0
    assert main(['evaluate', str(table / 'data.csv'), str(out)]) == 0
    score = float(capsys.readouterr().out.split('quality_score')[-1])
    assert 0 < score <= 1


def test_a_pretrained_backbone_with_lora_from_the_command_line(table, tmp_path):
    from test_pretrained import row_texts, save_backbone

    frame = pd.read_csv(table / 'data.csv')
    backbone = save_backbone(tmp_path / 'tiny-gpt2', row_texts(frame), vocab_size=300)
    path = tmp_path / 'text.pkl'
    assert main(['fit', str(table / 'data.csv'), '-o', str(path), '--backbone', backbone,
                 '--lora-r', '4', '--epochs', '1', '--rounds', '0', '--device', TEST_DEVICE,
                 '--quiet']) == 0
    synthesizer = TabGRAASynthesizer.load(path)
    assert synthesizer.get_parameters()['lora'] == {'r': 4, 'lora_alpha': 8}
    assert len(synthesizer.sample(10)) == 10


@pytest.mark.parametrize('argv, message', [
    (['fit', 'missing.csv', '-o', 'm.pkl'], 'No such file: missing.csv'),
    (['sample', 'missing.pkl', '-n', '5', '-o', 'x.csv'], 'No such model file: missing.pkl'),
    (['evaluate', 'missing.csv', 'other.csv'], 'No such file: missing.csv'),
])
def test_missing_files_are_named(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_values_name_the_option(table, model, capsys):
    assert main(['fit', str(table / 'data.csv'), '-o', str(table / 'bad.pkl'),
                 '--rounds', '-1']) == 2
    assert 'rounds' in capsys.readouterr().err
    assert main(['sample', str(model), '-n', '5', '-o', str(table / 'x.csv'),
                 '--condition', 'color']) == 2
    assert 'column=value' in capsys.readouterr().err
    assert main(['sample', str(model), '-n', '5', '-o', str(table / 'x.csv'),
                 '--condition', 'colour=red']) == 2
    assert 'colour' in capsys.readouterr().err


@pytest.mark.parametrize('argv', [['fit', '--objective', 'ppo'], ['sample']])
def test_argparse_rejects_unknown_choices_and_missing_arguments(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


@pytest.mark.parametrize('command', ['demo', 'fit', 'sample', 'evaluate'])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, '--help'])
    assert exit_info.value.code == 0
    assert 'usage: tabgraa ' + command in capsys.readouterr().out
