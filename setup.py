from setuptools import find_packages, setup

version = {}
with open("keras_edda/version.py") as f:
    exec(f.read(), version)

setup(
    name="keras_edda",
    version=version["__version__"],
    description="Explanation-driven data augmentation (EDDA) for Keras 3 on TensorFlow",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_edda", "keras_edda.*"]),
    python_requires=">=3.10",
    # TensorFlow comes from an extra, as with keras-hub: pick the CPU or the
    # CUDA build. Tested: TensorFlow 2.21, Keras 3.15.
    install_requires=[
        "keras>=3.6",
        "numpy",
        "tensorboard",
        "scikit-learn",
        "scipy",
        "pillow",
        "matplotlib",
        "tqdm",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.16"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        "tfds": ["tensorflow-datasets"],
        # compare --executor ray (docs/scaling.md)
        "ray": ["ray>=2.9"],
        "test": [
            "pytest",
            "pytest-xdist",
            "tf-explain==0.3.1",
            "opencv-python-headless",
            "tensorflow-datasets",
            "ruff",
            "scipy",
            "lime==0.2.0.1",
            "scikit-image",
            "pandas",
            "cachetools",
            "shap",
            "tf-keras-vis==0.8.7",
        ],
    },
    entry_points={"console_scripts": ["keras-edda=keras_edda.cli:main"]},
)
