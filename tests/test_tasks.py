"""Paint-to-image, editing, harmonization, super-resolution and animation on tiny models."""
import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from PIL import Image

from singan_tf import SinGANError
from singan_tf.cli import main
from singan_tf.images import to_uint8
from singan_tf.tasks import animate, animation_frames, edit, harmonize, paint2image, save_gif, super_resolve
from singan_tf.tasks.paint import main_colours, quantize
from singan_tf.trained_pyramid import SAMPLE_CHUNK, to_uint8 as tf_to_uint8


def real_uint8(model):
    return to_uint8(model.reals[-1])


@pytest.fixture
def edit_files(fitted_model, tmp_path):
    """The training image with a red box painted in, and the box's mask."""
    image = real_uint8(fitted_model).copy()
    image[8:18, 10:22] = [230, 20, 20]
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[8:18, 10:22] = 255
    Image.fromarray(image).save(tmp_path / "edited.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return tmp_path / "edited.png", tmp_path / "mask.png", image


@pytest.mark.parametrize("task", [edit, harmonize])
def test_blend_tasks_keep_the_input_outside_the_mask(fitted_model, edit_files, task):
    edited, mask, image = edit_files
    for start in range(1, fitted_model.num_scales):
        # The reference's 20 px / 7 px dilation would cover all of a 34x40 image.
        result = task(fitted_model, edited, mask, start_scale=start, seed=1, dilation=2,
                      sigma=1.0)
        assert result.raw.shape == result.blended.shape == image.shape
        outside = result.mask == 0
        assert outside.sum() > image.shape[0] * image.shape[1] // 3
        np.testing.assert_array_equal(result.blended[outside], image[outside])
        inside = result.mask == 1
        np.testing.assert_array_equal(result.blended[inside], result.raw[inside])
        assert not np.array_equal(result.raw, image)


def test_blend_mask_is_dilated_and_blurred(fitted_model, edit_files):
    edited, mask, _ = edit_files
    weights = edit(fitted_model, edited, mask, start_scale=1, seed=0, dilation=2, sigma=1.0).mask
    assert weights[12, 15] == pytest.approx(1.0)        # inside the box
    assert 0 < weights[8 - 3, 15] < 1                   # soft edge beyond the box
    assert weights[30, 38] == 0                          # far away


def test_blend_task_input_errors(fitted_model, edit_files, tmp_path):
    edited, mask, image = edit_files
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small_mask.png")
    with pytest.raises(SinGANError, match="same size"):
        edit(fitted_model, edited, tmp_path / "small_mask.png", 1)
    Image.fromarray(np.zeros(image.shape[:2], np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(SinGANError, match="empty"):
        harmonize(fitted_model, edited, tmp_path / "black.png", 1)
    Image.fromarray(np.full(image.shape[:2], 255, np.uint8)).save(tmp_path / "white.png")
    with pytest.raises(SinGANError, match="whole image"):
        edit(fitted_model, edited, tmp_path / "white.png", 1)
    Image.fromarray(np.zeros((*image.shape[:2], 4), np.uint8)).convert("CMYK").save(
        tmp_path / "cmyk.jpg")
    with pytest.raises(SinGANError, match="single-channel or RGB"):
        edit(fitted_model, edited, tmp_path / "cmyk.jpg", 1)
    for bad in (0, fitted_model.num_scales):
        with pytest.raises(SinGANError, match="start scale"):
            edit(fitted_model, edited, mask, bad)


def test_reference_of_another_size_is_resized_with_a_note(fitted_model, edit_files, tmp_path):
    _, _, image = edit_files
    Image.fromarray(image).resize((80, 68)).save(tmp_path / "big.png")
    mask = np.zeros((68, 80), np.uint8)
    mask[10:30, 10:30] = 255
    Image.fromarray(mask).save(tmp_path / "big_mask.png")
    result = edit(fitted_model, tmp_path / "big.png", tmp_path / "big_mask.png", 1, seed=0,
                  dilation=1, sigma=1.0)
    assert result.blended.shape == image.shape
    assert any("resized" in note for note in result.notes)


def test_a_much_larger_reference_and_mask_are_shrunk_while_read(fitted_model, edit_files,
                                                                 tmp_path):
    """8x the model's size: both files are box-reduced as they are read (a note says so),
    and the mask still lands where it was drawn."""
    _, _, image = edit_files
    height, width = 8 * image.shape[0], 8 * image.shape[1]
    Image.fromarray(image).resize((width, height)).save(tmp_path / "huge.png")
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2, : width // 2] = 255
    Image.fromarray(mask).save(tmp_path / "huge_mask.png")
    result = edit(fitted_model, tmp_path / "huge.png", tmp_path / "huge_mask.png", 1, seed=0,
                  dilation=1, sigma=1.0)
    assert result.blended.shape == image.shape
    assert any("at 1/4 size" in note for note in result.notes), result.notes
    assert result.mask[2, 2] == pytest.approx(1.0) and result.mask[-3, -3] == 0


def test_paint_to_image(fitted_model, edit_files):
    edited, _, image = edit_files
    for start in range(1, fitted_model.num_scales):
        result = paint2image(fitted_model, edited, start, seed=0)
        assert result.image.shape == image.shape and result.quantized_paint is None
    with pytest.raises(SinGANError, match="start scale"):
        paint2image(fitted_model, edited, 0)


def test_quantized_paint_to_image_fine_tunes_a_copy(fitted_model, edit_files):
    edited, _, image = edit_files
    before = [w.copy() for w in fitted_model.pyramid.scales[1].generator.get_weights()]
    result = paint2image(fitted_model, edited, 1, quantize_colours=True, seed=0,
                         finetune_iters=5, verbose=0)
    assert result.image.shape == image.shape
    assert len(np.unique(result.quantized_paint.reshape(-1, 3), axis=0)) <= 5
    for a, b in zip(before, fitted_model.pyramid.scales[1].generator.get_weights()):
        np.testing.assert_array_equal(a, b)  # the loaded model is left as it was


def test_quantize_maps_to_the_main_colours():
    rng = np.random.default_rng(0)
    palette = np.array([[-1, -1, -1], [1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], np.float32)
    image = palette[rng.integers(0, 5, (20, 20))] + rng.normal(0, 0.05, (20, 20, 3))
    centres = main_colours(image.astype(np.float32))
    assert np.abs(np.sort(centres, axis=0) - np.sort(palette, axis=0)).max() < 0.1
    assert np.abs(quantize(image, centres) - image).max() < 0.3


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


def test_super_resolution_size_and_fidelity(sr_model):
    low = to_uint8(sr_model.reals[-1])
    shrink = lambda image: np.asarray(Image.fromarray(image).resize(low.shape[1::-1],
                                                                    Image.BICUBIC))
    for factor in (2.0, 3.0):
        high = super_resolve(sr_model, factor, seed=0)
        assert abs(high.shape[0] - factor * low.shape[0]) <= 1
        assert abs(high.shape[1] - factor * low.shape[1]) <= 1
        assert _psnr(shrink(high), low) > 25
        # The generator's detail is still there: not just the bicubic upsampling.
        bicubic = np.asarray(Image.fromarray(low).resize(high.shape[1::-1], Image.BICUBIC))
        assert np.sqrt(np.mean((high.astype(float) - bicubic) ** 2)) > 2
    # Without back-projection (the reference's output) the passes of G_N drift: on this
    # fixture, whose texture is noise, about 20 dB at x2 (measured; see super_resolution.py).
    raw = super_resolve(sr_model, 2.0, seed=0, back_projection=False)
    corrected = super_resolve(sr_model, 2.0, seed=0)
    assert raw.shape == corrected.shape
    assert _psnr(shrink(raw), low) < _psnr(shrink(corrected), low)


def test_super_resolution_errors(fitted_model, sr_model):
    with pytest.raises(SinGANError, match="--task sr"):
        super_resolve(fitted_model, 4)
    with pytest.raises(SinGANError, match="> 1"):
        super_resolve(sr_model, 1.0)


def test_animation_moves_smoothly(fitted_model, tmp_path):
    frames = animate(fitted_model, start_scale=1, frames=16, seed=0)
    streamed = animation_frames(fitted_model, start_scale=1, frames=16, seed=0)
    np.testing.assert_array_equal(next(streamed), frames[0])  # frame by frame, the same
    assert frames.shape == (16, *fitted_model.sizes[-1], 3) and frames.dtype == np.uint8
    def distance(a, b):
        return np.abs(frames[a].astype(float) - frames[b]).mean()
    near = np.mean([distance(i, i + 1) for i in range(15)])
    far = np.mean([distance(i, i + 8) for i in range(8)])
    assert 0 < near < far
    save_gif(frames, tmp_path / "a.gif", fps=10)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 16 and gif.info["duration"] == 100
    for kwargs in ({"start_scale": 5}, {"frames": 1}, {"alpha": 2}):
        with pytest.raises(SinGANError):
            animate(fitted_model, **{"start_scale": 1, **kwargs})


def test_task_commands(fitted_model_dir, edit_files, tmp_path):
    edited, mask, image = edit_files
    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])
    out = tmp_path / "out"
    assert run("edit", fitted_model_dir, "--edited", edited, "--mask", mask,
               "-o", out / "e.png", "--seed", 1).exit_code == 0
    assert Image.open(out / "e.png").size == Image.open(out / "e_raw.png").size == (40, 34)
    assert run("harmonize", fitted_model_dir, "--naive", edited, "--mask", mask,
               "-o", out / "h.png", "--start-scale", 2).exit_code == 0
    assert run("paint2image", fitted_model_dir, "--paint", edited, "-o", out / "p.png",
               "--start-scale", 1).exit_code == 0
    result = run("animate", fitted_model_dir, "-o", out / "a.gif", "--frames", 5)
    assert result.exit_code == 0 and Image.open(out / "a.gif").n_frames == 5
    result = run("super-resolve", fitted_model_dir, "--factor", 4, "-o", out / "sr.png")
    assert result.exit_code == 1 and "--task sr" in result.output
    result = run("edit", fitted_model_dir, "--edited", edited, "--mask", mask,
                 "-o", out / "e.png", "--start-scale", 9)
    assert result.exit_code == 1 and "start scale" in result.output
    result = run("animate", fitted_model_dir, "-o", out / "a.txt")
    assert result.exit_code == 1 and ".gif" in result.output


def test_output_limits_and_nothing_half_written(fitted_model_dir, sr_model, tmp_path,
                                                monkeypatch):
    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])
    out = tmp_path / "out"
    result = run("sample", fitted_model_dir, "-o", out, "--scale-h", 1000, "--scale-w", 1000)
    assert result.exit_code == 1 and "over the limit of 16,777,216" in result.output
    assert "--max-pixels raises" in result.output and not out.exists()
    # Under a lower limit, batches shrink to fit it: 3 samples of 34x40, 2 per batch.
    result = run("sample", fitted_model_dir, "-o", out, "-n", 3, "--max-pixels", 2 * 34 * 40)
    assert result.exit_code == 0 and len(list(out.glob("*.png"))) == 3
    result = run("super-resolve", sr_model.path, "--factor", 200, "-o", out / "sr.png")
    height, width = (200 * length for length in sr_model.sizes[-1])
    assert result.exit_code == 1 and f"a {height}x{width} result" in result.output
    assert not (out / "sr.png").exists()
    result = run("animate", fitted_model_dir, "-o", out / "a.gif", "--frames", 10 ** 9)
    assert result.exit_code == 2 and "--frames" in result.output
    # A very slow GIF is clamped to GIF's longest frame, not an overflow.
    result = run("animate", fitted_model_dir, "-o", out / "slow.gif", "--frames", 2,
                 "--fps", 0.0001)
    assert result.exit_code == 0 and Image.open(out / "slow.gif").info["duration"] == 655_350
    # An MP4 writer that fails leaves no file behind.
    import sys
    monkeypatch.setitem(sys.modules, "imageio", None)
    monkeypatch.setitem(sys.modules, "imageio.v2", None)
    result = run("animate", fitted_model_dir, "-o", out / "a.mp4", "--frames", 2)
    assert result.exit_code == 1 and "imageio-ffmpeg" in result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".png")) == ["slow.gif"]


def test_super_resolve_command_matches_the_api(sr_model, tmp_path):
    for flag, back_projection in (("--back-projection", True), ("--no-back-projection", False)):
        out = tmp_path / f"{back_projection}.png"
        result = CliRunner().invoke(main, ["super-resolve", str(sr_model.path), "--factor", "2",
                                           flag, "-o", str(out), "--seed", "4"])
        assert result.exit_code == 0, result.output
        expected = super_resolve(sr_model, 2.0, seed=4, back_projection=back_projection)
        np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)


def test_sampling_in_chunks_gives_the_images_of_one_batch(fitted_model):
    """Samples are generated SAMPLE_CHUNK at a time (bounded memory) from noise drawn for
    the whole batch: the same images as one graph run over the whole batch."""
    pyramid, num = fitted_model.pyramid, SAMPLE_CHUNK + 2
    whole_batch = tf.function(lambda: tf_to_uint8(pyramid.run(3, num, pyramid.sizes, 1)),
                              autograph=False)
    np.testing.assert_array_equal(fitted_model.sample(num, start_scale=1, seed=3),
                                  whole_batch().numpy())
