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
