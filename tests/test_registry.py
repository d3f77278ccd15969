"""STViT builds from configs under every codebase's default scope."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings

SCOPES = {
    'mmdet': 'mmdet.registry',
    'mmpretrain': 'mmpretrain.registry',
    'mmaction': 'mmaction.registry',
}


@pytest.mark.parametrize('scope', sorted(SCOPES))
def test_stvit_builds_under_each_scope(scope):
    cfg = Config(dict(custom_imports=dict(imports=['stvit_mm.models'],
                                          allow_failed_imports=False)))
    import_modules_from_strings(**cfg.custom_imports)
    registry = import_modules_from_strings(SCOPES[scope]).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type='STViT', arch='tiny', img_size=32, patch_size=8))
    assert type(model).__name__ == 'STViT'
    with torch.no_grad():
        (out, ) = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 192)


def test_registered_in_root_registry_only_once():
    from mmengine.registry import MODELS

    import stvit_mm.models  # noqa: F401
    assert MODELS.get('STViT') is stvit_mm.models.STViT
    import mmdet.registry
    assert 'STViT' not in mmdet.registry.MODELS.module_dict  # resolved through the root
