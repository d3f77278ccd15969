"""One name per model: the backbones, the converter's --arch targets and the stock-size lookup
all read stvit_mm/archs.py."""
import pytest

from stvit_mm.archs import ARCHS, aliases, resolve_arch, size_for, size_of
from stvit_mm.checkpoints.whole_checkpoint import TARGET_ARCHS
from stvit_mm.models import STViTSwin


def test_converter_targets_are_the_tables_sizes():
    assert sorted(TARGET_ARCHS) == sorted(
        f"stvit{r}-{family}-{size[0]}" for family in ('deit', 'swin')
        for size in ARCHS[family] for r in ('', '-r'))
    assert TARGET_ARCHS['stvit-r-swin-b'] == dict(type='STViTSwin', arch='base', recovery=True)


@pytest.mark.parametrize('family', sorted(ARCHS))
def test_every_alias_names_its_size(family):
    for size in ARCHS[family]:
        assert {size_of(family, name) for name in aliases(family, size)} == {size}


def test_stock_sizes_give_the_named_arch():
    small = ARCHS['swin']['small']
    sizes = {k: small[k] for k in ('embed_dims', 'depths', 'num_heads')}
    assert size_for('swin', sizes) == 'small'
    assert STViTSwin(**sizes).arch_settings == STViTSwin._resolve_arch('small')


def test_unknown_arch_is_one_line_naming_the_choices():
    with pytest.raises(ValueError, match=r"^STViTSwin: unknown arch 'swin-xl'; choose one of "):
        resolve_arch('STViTSwin', 'swin', 'swin-xl', ('embed_dims', ), {})
