import numpy as np
import pytest
from PIL import Image

from singan_tf.errors import ImageError
from singan_tf.images import (contact_sheet, default_image_path, load_image, load_mask,
                              to_uint8)

from conftest import make_image, write_image


def test_rgb_round_trip(tmp_path):
    path = write_image(tmp_path / "a.png")
    array, notes = load_image(path)
    assert notes == []
    assert array.dtype == np.float32 and array.min() >= -1 and array.max() <= 1
    np.testing.assert_array_equal(to_uint8(array), make_image())


@pytest.mark.parametrize("mode,note", [("L", "converted L"), ("P", "converted P"),
                                       ("RGBA", "alpha"), ("LA", "alpha"), ("CMYK", "converted CMYK")])
def test_other_modes_become_rgb_with_a_note(tmp_path, mode, note):
    path = write_image(tmp_path / ("a.jpg" if mode == "CMYK" else "a.png"), mode=mode)
    array, notes = load_image(path)
    assert array.shape == (40, 48, 3)
    assert any(note in n for n in notes)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.linspace(0, 65535, 40 * 48).reshape(40, 48).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    array, notes = load_image(path)
    assert any("bit depth" in n for n in notes)
    assert array[0, 0, 0] == pytest.approx(-1.0)
    assert array[-1, -1, 0] == pytest.approx(1.0)
    expected = np.round(values[20, 24] / 65535 * 255) / 255 * 2 - 1
    assert array[20, 24, 0] == pytest.approx(expected, abs=1e-6)  # grey, not clipped to white
    assert abs(expected) < 0.1


def test_missing_directory_and_non_image_inputs(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(ImageError, match="not an image"):
        load_image(text)


def test_truncated_file_is_reported(tmp_path):
    path = write_image(tmp_path / "full.png", 200, 200)
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:400])
    with pytest.raises(ImageError, match="cannot read"):
        load_image(cut)


def test_masks(tmp_path):
    mask = np.zeros((40, 48), np.uint8)
    mask[10:20, 10:20] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    loaded = load_mask(tmp_path / "m.png", (40, 48))
    assert loaded.sum() == 100
    with pytest.raises(ImageError, match="same size"):
        load_mask(tmp_path / "m.png", (41, 48))
    Image.fromarray(mask).convert("RGBA").save(tmp_path / "rgba.png")
    notes = []
    assert load_mask(tmp_path / "rgba.png", notes=notes).sum() == 100  # alpha dropped
    assert "alpha" in notes[0]
    Image.fromarray(mask).convert("CMYK").save(tmp_path / "cmyk.jpg")
    with pytest.raises(ImageError, match="single-channel or RGB"):
        load_mask(tmp_path / "cmyk.jpg")


def test_default_image_is_a_shipped_photo():
    array, _ = load_image(default_image_path())
    assert array.shape[0] >= 250 and array.shape[1] >= 250 and array.std() > 0.1


def test_contact_sheet_places_every_image():
    images = [np.full((10, 12, 3), v, np.uint8) for v in (0, 100, 200)]
    sheet = contact_sheet(images, ["a", "b", "c"])
    assert sheet.shape[1] == 3 * 12 + 4 * 4
    for value in (0, 100, 200):
        assert (sheet == value).all(axis=-1).sum() >= 10 * 12 - 20  # labels may overlap a little


def test_contact_sheet_enlarges_images_too_narrow_for_their_captions():
    """A coarse scale's preview is 25 px wide: "reconstruction" must not run into the
    next caption, so every image is enlarged by one integer factor, pixels kept."""
    images = [np.full((10, 12, 3), v, np.uint8) for v in (0, 100)]
    images[1][0, 0] = 255
    sheet = contact_sheet(images, ["real", "reconstruction"])
    factor = (sheet.shape[1] - 3 * 4) // 24
    assert factor >= 5 and sheet.shape[1] == 2 * 12 * factor + 3 * 4
    right = sheet[14 + 4:14 + 4 + 10 * factor, 4 + 12 * factor + 4:-4]
    assert (right[:factor, :factor] == 255).all() and (right[factor:, factor:] == 100).all()


def test_a_large_photo_is_shrunk_while_it_is_read(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(make_image(2000, 3000)).save(path)
    array, notes = load_image(path, max_side=250)
    assert array.shape == (334, 500, 3)  # 1/6: no less than twice max_side
    assert any("at 1/6 size" in note for note in notes)
    assert load_image(path)[0].shape == (2000, 3000, 3)  # no max_side: as stored


def test_a_100_megapixel_photo_fits_in_well_under_a_gigabyte(tmp_path):
    """Read in a fresh process: its peak RSS rises by less than 600 MiB (as floats at
    full size the photo alone would take 2.4 GB)."""
    import subprocess
    import sys
    path = tmp_path / "huge.png"
    Image.new("RGB", (10_000, 10_000), (90, 140, 200)).save(path)
    script = (
        "import resource, sys\n"
        "from singan_tf.images import load_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "array, _ = load_image(sys.argv[1], max_side=250)\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(array.shape, grown // 1024)\n")
    output = subprocess.run([sys.executable, "-W", "ignore", "-c", script, str(path)],
                            capture_output=True, text=True, check=True).stdout.split()
    assert output[:3] == ["(500,", "500,", "3)"]
    assert int(output[3]) < 600, f"peak RSS grew by {output[3]} MiB"


def test_decompression_bombs_and_animations(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.fromarray(make_image(100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100x100 is then a "bomb"
    with pytest.raises(ImageError, match="refusing .*decompression bomb"):
        load_image(path)
    monkeypatch.undo()
    frames = [Image.fromarray(make_image(30, 30, seed=s)) for s in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    _, notes = load_image(tmp_path / "a.gif")
    assert any("has 3 frames; using the first" in note for note in notes)
