"""mmrefvlm: REF-VLM as an MMDetection 3.x plugin.

The pinned stack is installed by ``tools/setup_env.sh`` (see README); ``install_requires`` lists
only what the package imports, without pins, so that ``pip install -e . --no-deps`` into that
environment never re-resolves torch.
"""
from setuptools import find_packages, setup

setup(
    name='mmrefvlm',
    version='0.1.0',
    description='REF-VLM (triplet-based referring paradigm) as an MMDetection 3.x plugin',
    packages=find_packages(include=['mmrefvlm', 'mmrefvlm.*']),
    include_package_data=True,
    python_requires='>=3.10',
    install_requires=[
        'mmengine', 'mmcv', 'mmdet', 'mmpretrain', 'transformers', 'open_clip_torch',
        'pycocotools', 'pycocoevalcap', 'scipy', 'tqdm', 'pillow'
    ],
)
