"""The model zoo: metafiles (model-index.yml, configs/*/metafile.yml) match the configs, and
docs/model_zoo.md, generated from them by tools/make_model_zoo.py, stays up to date."""
import dataclasses
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from mmengine.config import Config
from mmengine.config.utils import _get_cfg_metainfo

import make_model_zoo
from stvit_mm.utils import ConfigError
from stvit_mm.zoo.benchmarks import (
    PARTS,
    REQUIRED_KEYS,
    load_benchmarks,
    measurements,
    part_name,
    run_benchmarks,
    save_benchmarks,
)
from stvit_mm.zoo.figures import stale_figures
from stvit_mm.zoo.metafiles import (
    MIM_DIR,
    MODEL_INDEX,
    check_inheritance,
    config_files,
    load_sections,
    load_zoo,
    zoo_configs,
)
from stvit_mm.zoo.page import render
from stvit_mm.zoo.stock import paper_result, stock_config, stock_reference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, 'docs', 'model_zoo.md')
ZOO = load_zoo()


def test_model_index_lists_one_metafile_per_config_folder():
    with open(os.path.join(ROOT, 'model-index.yml'), encoding='utf-8') as f:
        imports = yaml.safe_load(f)['Import']
    folders = sorted(d for d in os.listdir(os.path.join(ROOT, 'configs'))
                     if os.path.isdir(os.path.join(ROOT, 'configs', d)))
    assert sorted(imports) == [f'configs/{d}/metafile.yml' for d in folders]
    assert os.path.samefile(MODEL_INDEX, os.path.join(ROOT, 'model-index.yml'))


def test_every_config_has_an_entry_and_inherits_what_it_says():
    configs = zoo_configs(ZOO)
    on_disk = {f for f in config_files() if not f.endswith('_synthetic.py')}
    assert set(configs) == on_disk
    check_inheritance(ZOO, configs)
    for entry in ZOO.values():  # every entry's Config exists (mim: relative to the package)
        assert os.path.isfile(os.path.join(ROOT, entry.config)), entry.config


def test_every_entry_resolves_as_stvit_mm_path_and_in_mmengine_metainfo():
    for config, entry in ZOO.items():
        cfg = Config.fromfile(os.path.join(ROOT, entry.config))
        rel = entry.scope_path.split('::')[1]
        # what mmengine reads for a `stvit_mm::` path: the .mim model index, then the file
        assert _get_cfg_metainfo(os.path.dirname(MIM_DIR), rel)['Name'] == entry.name
        assert os.path.isfile(os.path.join(MIM_DIR, 'configs', rel))
        assert cfg.get('default_scope') in ('mmpretrain', 'mmdet', 'mmseg', 'mmaction'), config


def test_missing_entry_and_missing_config_are_errors(tmp_path):
    for entry in ZOO.values():
        path = tmp_path / entry.task / entry.file
        path.parent.mkdir(exist_ok=True)
        path.write_text('')
    (tmp_path / 'detection' / 'new_config.py').write_text('')
    (tmp_path / 'detection' / 'demo_synthetic.py').write_text('')
    with pytest.raises(ConfigError, match='no entry for new_config.py'):
        zoo_configs(ZOO, str(tmp_path))
    (tmp_path / 'detection' / 'new_config.py').unlink()
    (tmp_path / 'classification' / 'stvit_deit_s_in1k.py').unlink()
    with pytest.raises(ConfigError, match='no config for stvit_deit_s_in1k.py'):
        zoo_configs(ZOO, str(tmp_path))


def test_changed_inheritance_is_an_error(tmp_path):
    configs = tmp_path / 'configs'
    shutil.copytree(os.path.join(ROOT, 'configs'), configs)
    path = configs / 'detection' / 'mask_rcnn_stvit_r_swin_t.py'
    path.write_text(path.read_text().replace('mask-rcnn_swin-t-p4-w7_fpn_1x_coco',
                                             'mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco'))
    with pytest.raises(ConfigError, match='mask_rcnn_stvit_r_swin_t.py inherits mmdet::swin/'
                       'mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py, its entry says'):
        check_inheritance(ZOO, zoo_configs(ZOO, str(configs)), str(configs))


def test_metafile_schema_errors_name_the_model(tmp_path):
    (tmp_path / 'configs' / 'video').mkdir(parents=True)
    (tmp_path / 'model-index.yml').write_text('Import:\n- configs/video/metafile.yml\n')
    with open(os.path.join(ROOT, 'configs', 'video', 'metafile.yml'), encoding='utf-8') as f:
        data = yaml.safe_load(f)
    data['Models'][0]['Config'] = 'configs/video/elsewhere.py'
    (tmp_path / 'configs' / 'video' / 'metafile.yml').write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="video_stvit_r_swin_t_k400: Config 'configs/video/"
                       "elsewhere.py' is not"):
        load_sections(str(tmp_path / 'model-index.yml'))
    del data['Models'][0]['Metadata']['Stock']
    data['Models'][0]['Config'] = 'configs/video/video_stvit_r_swin_t_k400.py'
    (tmp_path / 'configs' / 'video' / 'metafile.yml').write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="video_stvit_r_swin_t_k400: 'Stock' missing"):
        load_sections(str(tmp_path / 'model-index.yml'))


def test_every_entry_has_figures_and_weights_or_a_reason():
    for config, entry in ZOO.items():
        for key in ('Input', 'Parameters', 'FLOPs', 'Backbone FLOPs'):
            assert entry.figures.get(key), (config, key)
            if key != 'Input':
                assert entry.figures['Stock'].get(key), (config, 'Stock', key)
        assert entry.checkpoints, config
        for checkpoint in entry.checkpoints:
            if checkpoint.url:
                assert checkpoint.url.startswith('https://') and checkpoint.source, config
            if checkpoint.convert:
                assert checkpoint.convert.startswith('python tools/convert_checkpoint.py ')
                assert checkpoint.convert.endswith(f'--config {entry.config}'), config


def test_stale_figures_are_reported():
    entry = ZOO['stvit_deit_s_in1k.py']
    f, s = entry.figures, entry.figures['Stock']
    counts = dict(params=f['Parameters'], flops=f['FLOPs'], backbone_flops=f['Backbone FLOPs'],
                  backbone_input_shape=[1, 3, 224, 224])
    stock = dict(params=s['Parameters'], flops=s['FLOPs'], backbone_flops=s['Backbone FLOPs'])
    assert stale_figures(ZOO, {entry.file: (counts, stock)}) == []
    stale = stale_figures(ZOO, {entry.file: (dict(counts, flops=1), stock)})
    assert len(stale) == 1 and stale[0].startswith('stvit_deit_s_in1k.py: metafile')


def test_stock_models_and_references():
    for entry in ZOO.values():
        accuracy, url, source = stock_reference(entry)
        assert source
        if entry.stock.backbone is None:  # read from the installed package's metafile
            assert 'metafile' in source and url.startswith('https://')
            assert 'top-1' in accuracy or 'box' in accuracy or 'mIoU' in accuracy
    # mmseg's metafile.yaml: single-scale mIoU of the inherited UperNet Swin configs
    assert stock_reference(ZOO['upernet_stvit_r_swin_s_ade20k.py'])[0] == '47.72 mIoU'
    assert paper_result(ZOO['upernet_stvit_r_swin_b_ade20k.py']) == '48.9 mIoU (paper)'
    assert paper_result(ZOO['cascade_mask_rcnn_stvit_r_swin_s_3x.py']) == (
        '51.8 box / 44.7 mask (paper; official detection README)')
    assert paper_result(ZOO['stvit_swin_b_in1k.py']).startswith('-0.1 top-1 vs Swin-B (paper')
    assert paper_result(ZOO['stvit_r_swin_t_in1k.py']) == ''
    cascade = stock_config(ZOO['cascade_mask_rcnn_stvit_r_swin_b_3x.py'])
    assert cascade.model.backbone.type == 'SwinTransformer'
    assert cascade.model.backbone.embed_dims == 128
    assert list(cascade.model.neck.in_channels) == [128, 256, 512, 1024]
    assert cascade.model.roi_head.type == 'CascadeRoIHead'


def _with_figures(sections):
    figures = {'Input': '224x224', 'Parameters': 1e6, 'FLOPs': 2e9, 'Backbone FLOPs': 1e9,
               'Stock': {'Parameters': 1e6, 'FLOPs': 4e9, 'Backbone FLOPs': 2e9}}
    return [dataclasses.replace(s, entries=tuple(dataclasses.replace(e, figures=figures)
                                                 for e in s.entries)) for s in sections]


def test_render_marks_unmeasured_speed_and_lists_commands():
    bench = dict(ratio=2.0, latency_speedup=1.5, batch_size=8, throughput=20.0,
                 stock_throughput=10.0, unit='images', latency_ms=50.0, stock_latency_ms=75.0,
                 device='cpu (2 threads)', shape=[224, 224], date='2026-01-01', machine='m',
                 command='python tools/make_model_zoo.py --benchmark stvit_deit_s_in1k.py')
    backbone = dict(bench, ratio=3.0, batch_size=1, command='python tools/make_model_zoo.py '
                    '--benchmark mask_rcnn_stvit_r_swin_t.py --backbone-only')
    train = dict(bench, ratio=2.5, latency_ms=None, latency_speedup=None, peak_mem_mb=700.0,
                 stock_peak_mem_mb=1800.0, command='python tools/make_model_zoo.py '
                 '--benchmark stvit_deit_s_in1k.py --train')
    predict = dict(bench, ratio=1.1, batch_size=1, command='python tools/make_model_zoo.py '
                   '--benchmark mask_rcnn_stvit_r_swin_t.py --mode predict')
    benchmarks = {'stvit_deit_s_in1k.py': dict(bench, train=train),
                  'mask_rcnn_stvit_r_swin_t.py': dict(backbone=backbone, predict=predict)}
    page = render(_with_figures(load_sections()), benchmarks)
    # 3 speed cells a config: whole-model throughput and latency, backbone throughput
    # the detector's whole-model cells come from its predict-mode record
    assert page.count('not measured') == 3 * len(ZOO) - 2 - 3
    assert '| 2.00x, spread not recorded (b=8) | 1.50x | not measured |' in page
    assert ('| 1.10x, spread not recorded (b=1, predict) | 1.50x | 3.00x, spread not recorded '
            '(b=1) |') in page
    for command in (bench, backbone, train, predict):
        assert command['command'] in page
    assert '| `mask_rcnn_stvit_r_swin_t.py` | backbone | 20.00 image/s |' in page
    assert ('| `stvit_deit_s_in1k.py` | training step, whole model | 2.50x, spread not '
            'recorded | - | 700.0 / 1800.0 | 8, 224x224 |') in page
    assert ('| `mask_rcnn_stvit_r_swin_t.py` | inference, whole model (predict mode, as '
            'tools/test.py) | 1.10x, spread not recorded | 1.50x | - | 1, 224x224 |') in page
    for config in ZOO:
        assert f'`{config}`' in page
    assert ('python tools/convert_checkpoint.py STViT-R-Swin-S.pth stvit_r_swin_s_in1k.pth '
            '--from official-stvit-r-swin --config configs/classification/stvit_r_swin_s_in1k.py'
            ) in page


def test_measurements_of_each_kind_are_kept_side_by_side(tmp_path):
    path = str(tmp_path / 'benchmarks.json')
    model, backbone = dict(ratio=1.1, command='a'), dict(ratio=1.3, command='b')
    train = dict(ratio=2.5, command='t')
    save_benchmarks({'stvit_deit_s_in1k.py': model}, path)
    save_benchmarks({'stvit_deit_s_in1k.py': dict(backbone=backbone)}, path)
    save_benchmarks({'stvit_deit_s_in1k.py': {part_name(train=True): train}}, path)
    assert load_benchmarks(path) == {
        'stvit_deit_s_in1k.py': dict(model, backbone=backbone, train=train)}
    newer = dict(ratio=1.2, command='c')
    save_benchmarks({'stvit_deit_s_in1k.py': newer}, path)
    assert load_benchmarks(path) == {
        'stvit_deit_s_in1k.py': dict(newer, backbone=backbone, train=train)}
    assert [part for part, _ in measurements(load_benchmarks(path)['stvit_deit_s_in1k.py'])] \
        == ['model', 'backbone', 'train']
    assert {part_name(True, False), part_name(True, True), part_name(mode='predict')} == {
        'backbone', 'backbone_train', 'predict'} and set(PARTS) >= {'model', 'train'}


def test_recorded_benchmarks_are_complete():
    recorded = load_benchmarks(make_model_zoo.BENCHMARKS)
    parts = {part for entry in recorded.values() for part, _ in measurements(entry)}
    assert {'model', 'backbone', 'train', 'backbone_train', 'predict'} <= parts
    for config, entry in recorded.items():
        assert config in ZOO
        records = measurements(entry)
        assert records, config
        for part, record in records:
            for key in REQUIRED_KEYS:
                assert record.get(key), (config, part, key)
            if part in ('model', 'backbone'):
                assert record.get('latency_speedup'), (config, part)
            if part.endswith('train'):
                assert record['peak_mem_mb'] < record['stock_peak_mem_mb'], (config, part)


def test_benchmark_flags():
    args = make_model_zoo.parse_args(['--benchmark', 'stvit_deit_s_in1k.py', '--train',
                                      '--backbone-only'])
    assert args.train and args.backbone_only and args.mode == 'tensor'
    assert make_model_zoo.parse_args(['--benchmark', '--mode', 'predict']).mode == 'predict'
    with pytest.raises(SystemExit):
        make_model_zoo.parse_args(['--benchmark', '--mode', 'eval'])


def test_committed_page_lists_every_config():
    with open(DOC, encoding='utf-8') as f:
        page = f.read()
    assert page.startswith('# Model zoo')
    for config in ZOO:
        assert f'`{config}`' in page


@pytest.mark.slow
def test_committed_page_and_metafiles_are_up_to_date():
    """Counts every figure again (MACs of all configs and their stock models: minutes)."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'make_model_zoo.py'),
                           '--check'], capture_output=True, text=True, cwd=ROOT, timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


def test_benchmark_run_records_training_steps_with_memory():
    """The harness's training steps reach the record (one tiny run: a check, not a figure)."""
    command = 'python tools/make_model_zoo.py --benchmark stvit_deit_t_in1k.py --train'
    entries = run_benchmarks(ZOO, ['stvit_deit_t_in1k.py'], command, batch_size=1, warmup=0,
                             repeats=1, iters=1, train=True)
    record = entries['stvit_deit_t_in1k.py']['train']
    assert record['step'] == 'training step (forward + backward)'
    assert record['peak_mem_mb'] > 0 and record['stock_peak_mem_mb'] > 0
    assert record['command'] == command and record['stock'] == ZOO[
        'stvit_deit_t_in1k.py'].stock.config
    for key in REQUIRED_KEYS:
        assert record[key], key


def test_records_carry_their_spread_and_identical_models_share_one_measurement():
    """The 1x and 3x STViT-R-Swin-T detectors have the same backbone: one measurement (tiny
    input here: a check of the record, not a figure)."""
    configs = ['mask_rcnn_stvit_r_swin_t.py', 'mask_rcnn_stvit_r_swin_t_3x.py']
    zoo = {c: dataclasses.replace(ZOO[c], input_size=(64, 96)) for c in configs}
    entries = run_benchmarks(zoo, configs, 'cmd', batch_size=1, warmup=0, repeats=3, iters=1,
                             backbone_only=True)
    first, second = (entries[c]['backbone'] for c in configs)
    assert first['rounds'] == 3 and first['ratio_min'] <= first['ratio'] <= first['ratio_max']
    assert first['throughput_min'] <= first['throughput'] <= first['throughput_max']
    assert first['latency_ms_min'] <= first['latency_ms'] <= first['latency_ms_max']
    assert second == dict(first, shared_with=configs[0])
    page = render(_with_figures(load_sections()), entries)
    assert (f"{first['ratio']:.2f}x [{first['ratio_min']:.2f}, {first['ratio_max']:.2f}], "
            '3 rounds (b=1) |') in page
    assert f'`{configs[1]}` (one measurement with `{configs[0]}`) | backbone |' in page
