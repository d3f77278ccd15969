"""The demo scripts (tools/demo*.py: arguments) and their steps (stvit_mm/demos). The full
demos train for minutes (`make demo`, `make demo-video`, `make demo-seg`); here the
wiring and the shared helpers."""
import os
import re
import sys

import pytest

from stvit_mm.demos.common import last_checkpoint, run_tool, table, train_and_test


def test_run_tool_echoes_progress_and_keeps_the_log(tmp_path, capsys):
    script = tmp_path / 'tool.py'
    script.write_text("print('loading')\nprint('Iter(train) [1/2]  loss: 1.0')\n"
                      "print('-Werror=format')\nprint('Saving checkpoint at 2 iterations')\n")
    log = tmp_path / 'tool.log'
    out = run_tool([sys.executable, str(script)], str(log), str(tmp_path))
    assert out == log.read_text() == ('loading\nIter(train) [1/2]  loss: 1.0\n-Werror=format\n'
                                      'Saving checkpoint at 2 iterations\n')
    shown = capsys.readouterr().out.splitlines()
    assert shown == ['$ python tool.py', '   Iter(train) [1/2]  loss: 1.0',
                     '   Saving checkpoint at 2 iterations']


def test_run_tool_stops_the_demo_when_the_tool_fails(tmp_path):
    script = tmp_path / 'fails.py'
    script.write_text("raise SystemExit('error: no data')\n")
    log = tmp_path / 'fails.log'
    with pytest.raises(SystemExit, match=f'^demo: {re.escape(str(script))} failed \\(exit 1\\); '
                                         f'see {re.escape(str(log))}$'):
        run_tool([sys.executable, str(script)], str(log), str(tmp_path))
    assert 'error: no data' in log.read_text()


def test_table_and_last_checkpoint(tmp_path):
    assert table([('model', 'GMACs'), ('STViT-DeiT-S', '1.91')]) == ('model         GMACs\n'
                                                                    'STViT-DeiT-S  1.91 ')
    (tmp_path / 'last_checkpoint').write_text(f'{tmp_path}/iter_3.pth\n')
    assert last_checkpoint(str(tmp_path)) == f'{tmp_path}/iter_3.pth'


def test_train_and_test_evaluates_the_last_checkpoint_with_the_same_options(tmp_path, capsys):
    """Stand-in tools record their arguments: train.py names a checkpoint in
    work_dir/last_checkpoint, test.py gets it, the test arguments and the same options."""
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'train.py').write_text(
        "import os, sys\nwork = sys.argv[sys.argv.index('--work-dir') + 1]\n"
        "open(os.path.join(work, 'last_checkpoint'), 'w').write(work + '/iter_2.pth')\n"
        "print('train', *sys.argv[1:])\n")
    (tmp_path / 'tools' / 'test.py').write_text("import sys\nprint('test', *sys.argv[1:])\n")
    work = tmp_path / 'work'
    work.mkdir()
    checkpoint, out = train_and_test('cfg.py', str(work), ['a=1', 'b=2'], str(tmp_path),
                                     '[3/4] evaluating', test_args=('--show-dir', 'show'))
    assert checkpoint == f'{work}/iter_2.pth'
    assert out == (f'test cfg.py {checkpoint} --work-dir {work} --show-dir show '
                   '--cfg-options a=1 b=2\n')
    assert (work / 'train.log').read_text() == (f'train cfg.py --work-dir {work} '
                                                '--cfg-options a=1 b=2\n')
    assert (work / 'test.log').read_text() == out
    shown = [line for line in capsys.readouterr().out.splitlines() if not line.startswith('$')]
    assert shown == ['[3/4] evaluating']


def test_results_figure_shows_truth_prediction_and_tokens(tmp_path, repo_root):
    """The demo's closing PNG: one row per image, ground truth | prediction above the stated
    score threshold | semantic tokens, at the size the rows and columns give; the objects drawn
    are the annotations and the predictions the detector scores at least the threshold."""
    import json

    import numpy as np
    import torch
    from mmdet.apis import inference_detector, init_detector
    from PIL import Image

    from stvit_mm.datasets import make_coco_instance
    from stvit_mm.demos.figure import COLUMNS, draw_results_figure
    from stvit_mm.utils import build_model, load_config

    config = os.path.join(repo_root, 'configs', 'detection',
                          'mask_rcnn_stvit_r_swin_t_synthetic.py')
    made = make_coco_instance(str(tmp_path / 'data'), num_train=1, num_val=2,
                              image_size=(128, 96))
    model = build_model(load_config(config), 'cpu')
    checkpoint = tmp_path / 'random.pth'
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': list(made['classes'])}}}, checkpoint)
    images = sorted(os.listdir(tmp_path / 'data' / 'val'))
    threshold = 0.3  # random weights: low scores; a threshold some boxes pass
    drawn = draw_results_figure(config, str(checkpoint), str(tmp_path / 'data'), images,
                                str(tmp_path / 'results.png'), 'random weights',
                                score_thr=threshold)

    assert drawn['columns'] == ['ground truth', 'prediction (score >= 0.3)', 'semantic tokens']
    assert len(COLUMNS) == 3
    with open(tmp_path / 'data' / 'annotations' / 'instances_val.json') as f:
        coco = json.load(f)
    ids = {image['file_name']: image['id'] for image in coco['images']}
    assert drawn['ground_truth'] == [
        sum(a['image_id'] == ids[name] for a in coco['annotations']) for name in images]
    reference = init_detector(config, str(checkpoint), device='cpu')
    kept = [int((inference_detector(reference, str(tmp_path / 'data' / 'val' / name))
                 .pred_instances.scores >= threshold).sum()) for name in images]
    assert drawn['predictions'] == kept
    assert drawn['tokens'] > 0
    picture = np.asarray(Image.open(tmp_path / 'results.png'))
    # figsize 3.2 in per column, 2.5 in per row + 0.9 in of titles, at 100 dpi
    assert picture.shape[:2] == (round(100 * (2.5 * 2 + 0.9)), round(100 * 3.2 * 3))
    assert picture.std() > 10  # not a blank canvas
