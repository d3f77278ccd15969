"""tools/visualize_semantic_tokens.py and stvit_mm.analysis.{semantic_maps,visualize}."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import visualize_semantic_tokens
from stvit_mm.analysis.semantic_maps import semantic_maps
from stvit_mm.analysis.visualize import build_visualization_model, image_to_input, load_image
from stvit_mm.models.backbones.stvit_swin import STViTSwin
from stvit_mm.models.layers.unit import semantic_tokens_to_grid
from stvit_mm.utils import build_model, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLS_CONFIG = os.path.join(ROOT, 'configs', 'classification', 'stvit_deit_t_synthetic.py')
DET_CONFIG = os.path.join(ROOT, 'configs', 'detection', 'mask_rcnn_stvit_r_swin_t_synthetic.py')
VIDEO_CONFIG = os.path.join(ROOT, 'configs', 'video', 'video_stvit_r_swin_t_synthetic.py')
TOOL = os.path.join(ROOT, 'tools', 'visualize_semantic_tokens.py')
H, W = 160, 224  # non-square on purpose


@pytest.fixture(scope='module')
def image_path(tmp_path_factory):
    """A 160x224 image with a few shapes on a gradient."""
    yy, xx = np.mgrid[:H, :W]
    image = np.stack([xx * 255 // W, yy * 255 // H, np.full_like(xx, 60)], -1)
    image[(yy - 70)**2 + (xx - 60)**2 < 35**2] = (230, 30, 30)
    image[30:110, 130:200] = (40, 220, 230)
    image[120:150, 20:110] = (40, 200, 40)
    path = tmp_path_factory.mktemp('images') / 'shapes.png'
    Image.fromarray(image.astype(np.uint8)).save(path)
    return str(path)


def _checkpoint(config: str, path, seed: int = 1) -> str:
    """A checkpoint of a random-init model (another seed than the tool's own init)."""
    model = build_model(load_config(config), seed=seed)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def _panels(png: str, count: int) -> list:
    """Interior crops of the token panels of a grid figure (cells x cells)."""
    pixels = np.asarray(Image.open(png).convert('RGB')).astype(np.float32)
    cells = math.ceil(math.sqrt(count))
    height, width = pixels.shape[:2]
    crops = []
    for i in range(count):
        r, c = divmod(i, cells)
        y0, y1 = r * height // cells, (r + 1) * height // cells
        x0, x1 = c * width // cells, (c + 1) * width // cells
        # skip the borders and the label in the top-left corner
        crops.append(pixels[y0 + (y1 - y0) // 4:y1 - 3, x0 + 3:x1 - 3])
    side = min(c.shape[0] for c in crops), min(c.shape[1] for c in crops)
    return [c[:side[0], :side[1]] for c in crops]


def _check_outputs(out_dir: str, names: list, maps_key: str, distinct: int) -> dict:
    """Files, aspect ratios, and that the first ``distinct`` tokens' maps and panels differ.

    (Tokens pooled from bins of pure padding are zero vectors, so their maps may coincide.)
    """
    for name in names + ['maps.npz']:
        assert os.path.isfile(os.path.join(out_dir, name)), name
    for name in names:
        width, height = Image.open(os.path.join(out_dir, name)).size
        assert abs(height - width * H / W) <= 1, (name, width, height)  # the input's aspect
        assert max(width, height) >= 640
    data = np.load(os.path.join(out_dir, 'maps.npz'))
    layer1 = data[f'{maps_key}.layer1']
    count = layer1.shape[0]
    assert len(data[f'{maps_key}.labels']) == count
    flat = layer1.reshape(count, -1)
    assert all(np.abs(flat[i] - flat[j]).max() > 0 for i in range(distinct)
               for j in range(i + 1, count))
    panels = _panels(os.path.join(out_dir, f'{maps_key}_layer1.png'), count)
    differences = [np.abs(panels[i] - panels[j]).mean() for i in range(distinct)
                   for j in range(i + 1, count)]
    assert min(differences) > 0.5, differences
    return data


def _maps_of(config: str, checkpoint: str, image: str):
    model = build_visualization_model(config, checkpoint)
    return semantic_maps(model.backbone, image_to_input(model, load_image(image)))


def test_classification_stvit_deit(image_path, tmp_path):
    checkpoint = _checkpoint(CLS_CONFIG, tmp_path / 'cls.pth')
    out = tmp_path / 'out'
    assert visualize_semantic_tokens.main(
        [CLS_CONFIG, checkpoint, image_path, '--out', str(out)]) == 0
    data = _check_outputs(str(out / 'shapes'), ['generator_layer1.png', 'generator_layer2.png',
                                                'generator_assignment.png'], 'generator', 16)
    # patch 8 on 160x224: a 20x28 token grid, pooled to 4x4 semantic tokens
    assert data['generator.layer1'].shape == (16, 20, 28)
    assert 'generator.recovery' not in data  # STViT for classification has no recovery
    assert list(data['generator.labels'][:5]) == ['0,0', '0,1', '0,2', '0,3', '1,0']
    # the maps come from the checkpoint's weights, not from the random init
    (loaded, ) = _maps_of(CLS_CONFIG, checkpoint, image_path)
    (fresh, ) = _maps_of(CLS_CONFIG, 'none', image_path)
    np.testing.assert_allclose(data['generator.layer2'], loaded.layer2, rtol=1e-4, atol=1e-7)
    assert np.abs(loaded.layer2 - fresh.layer2).max() > 1e-6
    # layer 1 attends to image tokens only; layer 2 also to the semantic tokens
    sums = data['generator.layer1'].reshape(16, -1).sum(1)
    np.testing.assert_allclose(sums, 1, rtol=1e-4)
    assert (data['generator.layer2'].reshape(16, -1).sum(1) < 1).all()


def test_detection_stvit_r_swin_subprocess(image_path, tmp_path):
    checkpoint = _checkpoint(DET_CONFIG, tmp_path / 'det.pth')
    out = tmp_path / 'out'
    proc = subprocess.run([sys.executable, TOOL, DET_CONFIG, checkpoint, image_path,
                           '--out', str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert 'loaded' in proc.stderr and 'into the model' in proc.stderr
    unit = 'stage2_unit0'
    names = [f'{unit}_{n}.png' for n in ('layer1', 'layer2', 'recovery', 'recovery_tokens')]
    data = _check_outputs(str(out / 'shapes'), names, unit, distinct=4)  # window (0, 0)
    assert sorted(proc.stdout.split()) == sorted(str(out / 'shapes' / n)
                                                 for n in names + ['maps.npz'])
    # stride 16: 160x224 -> 10x14 tokens; 2x2 windows of 2x2 semantic tokens (Swin-T plan)
    assert data[f'{unit}.layer1'].shape == (16, 10, 14)
    recovery = data[f'{unit}.recovery']
    np.testing.assert_allclose(recovery.sum(0), 1, rtol=1e-4)  # each region over the tokens
    # layer 1 is local: window (0, 0) sees its 10x10 neighbourhood, clipped to 9x9 in the image
    assert (data[f'{unit}.layer1'][0] > 0).sum() == 81


def _swin_maps(scope: str, image: torch.Tensor, **kwargs):
    torch.manual_seed(0)
    model = STViTSwin('tiny', recovery_scope=scope, window_neighbours=3, **kwargs).eval()
    return semantic_maps(model, image)[0]


@pytest.mark.parametrize('size, fit_window, tokens, grid', [
    ((150, 220), False, 16, (10, 14)),  # 2x2 windows, the lower/right ones padded
    ((64, 96), True, 4, (4, 6)),  # one window shrunk to the 4x6 grid (fit_window)
])
def test_window_mapping_local_equals_global(size, fit_window, tokens, grid):
    """Local recovery over 3x3 windows sees the tokens of all (at most 2x2) windows: the same
    attention as global recovery, so the per-window weights mapped back must match it."""
    image = torch.randn(1, 3, *size)
    local = _swin_maps('local', image, fit_window=fit_window)
    whole = _swin_maps('global', image, fit_window=fit_window)
    assert local.recovery.shape == whole.recovery.shape == (tokens, *grid)
    np.testing.assert_allclose(local.recovery, whole.recovery, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(local.recovery.sum(0), 1, rtol=1e-4)
    np.testing.assert_allclose(local.layer1, whole.layer1)


def test_labels_follow_the_semantic_grid():
    torch.manual_seed(0)
    model = STViTSwin('tiny').eval()
    maps = semantic_maps(model, torch.randn(1, 3, 150, 220))[0]
    unit = model.stages[2].units[0]
    ids = torch.arange(maps.num_tokens, dtype=torch.float32).reshape(1, -1, 1)
    grid = semantic_tokens_to_grid(ids, maps.grid, unit.window_for(maps.grid), unit.pool_size)
    rows, cols = maps.semantic_grid
    layout = grid.reshape(rows, cols)
    for t, label in enumerate(maps.labels):
        r, c = map(int, label.split(','))
        assert layout[r, c] == t


@pytest.mark.parametrize('case', ['video', 'missing image', 'foreign checkpoint'])
def test_bad_input_one_line_error(case, image_path, tmp_path, capsys):
    if case == 'video':
        args = [VIDEO_CONFIG, 'none', image_path]
    elif case == 'missing image':
        args = [CLS_CONFIG, 'none', str(tmp_path / 'nope.png')]
    else:
        path = tmp_path / 'other.pth'
        torch.save({'state_dict': {'something.else': torch.zeros(3)}}, path)
        args = [CLS_CONFIG, str(path), image_path]
    assert visualize_semantic_tokens.main([*args, '--out', str(tmp_path / 'out')]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith('visualize_semantic_tokens.py: error:')]
    assert len(errors) == 1
    assert not (tmp_path / 'out').exists()
