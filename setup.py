"""stvit-mm: STViT / STViT-R token sparsification backbones for OpenMMLab 2.x."""
from setuptools import find_packages, setup

setup(
    name='stvit-mm',
    version='0.1.0',
    description='STViT and STViT-R (CVPR 2023) backbones for mmdet, mmseg, mmpretrain and '
    'mmaction2',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['stvit_mm', 'stvit_mm.*']),
    # `_base_ = 'stvit_mm::<folder>/<config>.py'` reads stvit_mm/.mim (stvit_mm/config_scope.py):
    # symlinks to configs/ and model-index.yml in a checkout, copies in a wheel
    package_data={'stvit_mm': ['.mim/model-index.yml', '.mim/configs/*.py', '.mim/configs/*/*.py',
                               '.mim/configs/*/metafile.yml']},
    python_requires='>=3.9',
    # Ranges, not pins: GPU users bring their own CUDA torch; requirements.txt pins the
    # combination verified on CPU. The core (backbones, neck, converters, tools' package code)
    # needs only these; each OpenMMLab task package is an extra (`import stvit_mm.models`
    # works without any of them). `make install` installs everything (requirements.txt).
    install_requires=[
        'torch>=2.1',
        'torchvision>=0.16',
        'mmengine>=0.10.3,<1.0',
        'mmcv>=2.0.0,<2.2.0',
        'safetensors>=0.4',
        'numpy>=1.23',
        'Pillow>=9',
        'PyYAML>=6',
        'matplotlib>=3.5',
        'setuptools>=69,<82',
    ],
    # One extra per OpenMMLab task package: `pip install stvit-mm[det]` etc.; `all` is every
    # task extra (tests/test_requirements.py checks that it is their union).
    extras_require={
        'det': ['mmdet>=3.2,<3.4', 'pycocotools>=2.0.6'],
        'cls': ['mmpretrain>=1.1,<1.3'],
        'video': ['mmaction2>=1.1,<1.3'],
        # ftfy and regex: `import mmseg.models` needs them (mmseg's CLIP tokenizer, its
        # `multimodal` extra, not its install_requires)
        'seg': ['mmsegmentation>=1.2,<1.3', 'ftfy>=6', 'regex'],
        'all': ['mmdet>=3.2,<3.4', 'pycocotools>=2.0.6', 'mmpretrain>=1.1,<1.3',
                'mmaction2>=1.1,<1.3', 'mmsegmentation>=1.2,<1.3', 'ftfy>=6', 'regex'],
        'tests': ['pytest>=7', 'hypothesis>=6'],
    },
)
