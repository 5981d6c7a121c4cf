import math

import numpy as np
import pytest
import tensorflow as tf

from singan_tf import ImageError, SinGANConfig
from singan_tf.config import FAST, PAPER, preset
from singan_tf.errors import SinGANError
from singan_tf.pyramid import fit_to_max_size, pyramid_spec, real_pyramid, resize
from singan_tf.trained_pyramid import MAX_SIDE, retargeted_size


def test_reference_examples():
    spec = pyramid_spec(188, 250, min_size=25, max_size=250)
    assert spec.num_scales == 10
    assert spec.factor == pytest.approx(0.799, abs=1e-3)
    assert spec.sizes[0] == (26, 34)  # the official ceil on 25.000000000000004
    assert spec.finest == (188, 250)
    assert pyramid_spec(250, 250, 25, 250).num_scales == 11


def test_sizes_grow_by_the_factor():
    spec = pyramid_spec(188, 250, 25, 250)
    for n, (h, w) in enumerate(spec.sizes):
        scale = spec.factor ** (spec.num_scales - 1 - n)
        assert (h, w) == (math.ceil(188 * scale), math.ceil(250 * scale))
    assert all(a < b for (a, _), (b, _) in zip(spec.sizes, spec.sizes[1:]))


def test_large_image_shrinks_to_max_size_and_keeps_official_count():
    assert fit_to_max_size(872, 1000, 250) == (218, 250)
    assert fit_to_max_size(100, 120, 250) == (100, 120)  # never enlarged
    spec = pyramid_spec(872, 1000, 25, 250)
    assert spec.finest == (218, 250)
    assert spec.num_scales == 10  # 14 scales on the original size, 5 dropped by max_size, +1


def test_scales_counted_on_the_fitted_image():
    # The official count rounds up on two sizes: one pixel over max_size costs a scale.
    assert [pyramid_spec(h, 168, 25, 250).num_scales for h in (250, 251)] == [9, 8]
    fitted = [pyramid_spec(h, 168, 25, 250, 0.8, count_on_fitted=True) for h in (250, 251)]
    assert fitted[0] == fitted[1] and fitted[0].num_scales == 10
    assert fitted[0].factor == pytest.approx((25 / 168) ** (1 / 9))
    assert fitted[0].sizes[0] == (38, 25) and fitted[0].finest == (250, 168)
    # 188x250: 9.04 steps of 0.8 round to the official 9
    assert pyramid_spec(188, 250, 25, 250, 0.8, count_on_fitted=True) == \
        pyramid_spec(188, 250, 25, 250)
    assert pyramid_spec(25, 40, 25, 250, 0.8, count_on_fitted=True).num_scales == 2
    # a config's pyramid: quality counts on the fitted image, fast officially
    assert preset("quality").pyramid_spec(251, 168) == fitted[1]
    assert FAST.pyramid_spec(251, 168).num_scales == 8


def test_too_small_image_is_refused():
    with pytest.raises(ImageError, match="smaller than min_size"):
        pyramid_spec(20, 60, 25, 250)
    with pytest.raises(ImageError, match="max_size"):
        pyramid_spec(100, 1000, 25, 120)  # short side 12 after shrinking


def test_retarget_and_noise_channels():
    assert retargeted_size(26, 34, 1.5, 0.5).numpy().tolist() == [39, 17]
    assert retargeted_size(3, 3, 0.1, 0.1).numpy().tolist() == [1, 1]
    assert retargeted_size(25, 26, 0.5, 0.5).numpy().tolist() == [12, 13]  # half to even
    assert retargeted_size(250, 250, 1e30, 1.0).numpy().tolist() == [MAX_SIDE, 250]
    assert PAPER.noise_channels(0) == 1 and PAPER.noise_channels(3) == 3
    assert PAPER.replace(real_coarsest_z_opt=True).noise_channels(0) == 3


def test_resize_shrinks_with_antialias_and_clips():
    image = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, 40, 60, 3)), tf.float32)
    small = resize(image, (20, 30))
    assert small.shape == (1, 20, 30, 3)
    assert float(tf.reduce_max(tf.abs(small))) <= 1.0
    # Antialiasing averages the noise: a plain bicubic shrink would keep its variance.
    assert float(tf.math.reduce_std(small)) < 0.8 * float(tf.math.reduce_std(image))


def test_real_pyramid_sizes():
    spec = pyramid_spec(40, 48, 24, 40)
    reals = real_pyramid(tf.zeros((40, 48, 3)), spec)
    assert [tuple(r.shape[1:3]) for r in reals] == list(spec.sizes)


def test_paper_preset_is_the_reference():
    assert PAPER.max_size == 250 and PAPER.min_size == 25
    assert PAPER.iters_per_scale == 2000 and PAPER.critic_steps == 3 == PAPER.generator_steps
    assert (PAPER.lr_g, PAPER.lr_d, PAPER.beta_1) == (5e-4, 5e-4, 0.5)
    assert (PAPER.alpha, PAPER.gp_weight, PAPER.noise_amp_init) == (10.0, 0.1, 0.1)
    assert [PAPER.channels(n) for n in range(14)] == [32] * 4 + [64] * 4 + [128] * 6
    assert PAPER.receptive_pad_of(PAPER.num_layers) == 5
    assert PAPER.crop_size == 0 and PAPER.random_path_bank == 0  # no approximations
    assert preset("fast") is FAST


def test_quality_is_fast_with_the_papers_length_and_a_deep_generator_at_the_coarse_scales_and_a_joint_critic():
    quality = preset("quality")
    assert quality.differences(FAST) == {
        "coarse_iters_per_scale": 2000, "discriminator_joint_batchnorm": True,
        "alpha": 50.0, "coarse_alpha": 10.0, "whole_image_scales": 6,
        "coarse_num_layers": 9, "coarse_deep_critic": False,
        "scale_factor": 0.8, "count_scales_on_fitted": True}
    assert [quality.iterations(n) for n in range(6)] == [2000] * 4 + [300] * 2
    assert [quality.layers(n) for n in range(6)] == [5, 5, 9, 9, 5, 5]
    assert [quality.critic_layers(n) for n in range(6)] == [5] * 6
    assert [quality.inherits_weights(n) for n in range(1, 7)] == [True, False, True, False, True, True]
    assert [quality.reconstruction_weight(n) for n in (3, 4)] == [10.0, 50.0]
    assert [quality.joint_critic_batch(n) for n in (3, 4)] == [False, True]
    assert [quality.training_size((100, 130), n) for n in (5, 6)] == [(100, 130), (64, 64)]


def test_config_validation_and_round_trip():
    with pytest.raises(SinGANError, match="max_size"):
        SinGANConfig(max_size=0)
    with pytest.raises(SinGANError, match="min_size"):
        SinGANConfig(min_size=300)
    with pytest.raises(SinGANError, match="unknown option"):
        PAPER.replace(nonsense=1)
    with pytest.raises(SinGANError, match="crop_size must be 0 .* at least 11"):
        SinGANConfig(crop_size=8)
    with pytest.raises(SinGANError, match="random_path_bank must be 0 .* at least critic_steps"):
        SinGANConfig(random_path_bank=2)
    with pytest.raises(SinGANError, match="crop_size must be a non-negative integer"):
        SinGANConfig(crop_size=-1)
    with pytest.raises(SinGANError, match="coarse_scales must be a non-negative integer"):
        SinGANConfig(coarse_scales=-2)
    with pytest.raises(SinGANError, match="whole_image_scales must be a non-negative integer"):
        SinGANConfig(whole_image_scales=1.5)
    with pytest.raises(SinGANError, match="renormalize_windows must be true or false"):
        SinGANConfig(renormalize_windows="yes")
    with pytest.raises(SinGANError, match="discriminator_joint_batchnorm must be true or false"):
        SinGANConfig(discriminator_joint_batchnorm=1)
    with pytest.raises(SinGANError, match="needs redraw_coarsest_z_opt=false"):
        FAST.replace(real_coarsest_z_opt=True)  # FAST redraws scale 0's noise
    with pytest.raises(SinGANError, match="unknown preset"):
        preset("slow")
    assert SinGANConfig.from_dict(FAST.to_dict()) == FAST
    with pytest.raises(SinGANError, match=r"unknown option\(s\) \['from_a_newer_version'\]"):
        SinGANConfig.from_dict({**FAST.to_dict(), "from_a_newer_version": 1})


def test_super_resolution_settings():
    cfg = FAST.for_super_resolution(4.0)
    assert (cfg.alpha, cfg.min_size, cfg.random_path_bank) == (100.0, 18, 0)
    assert cfg.scale_factor == pytest.approx(4.0 ** (-1 / 6))
    # the reference's alpha 100 at every scale, whatever coarse_alpha was
    sr = FAST.replace(coarse_alpha=10.0).for_super_resolution(4.0)
    assert sr.reconstruction_weight(0) == 100.0
    # the official SR training's fixed noise at scale 0, whatever the fit's choice was
    consingan = FAST.replace(redraw_coarsest_z_opt=False, real_coarsest_z_opt=True)
    assert not consingan.for_super_resolution(4.0).real_coarsest_z_opt
    # and the official scale count that its factor was chosen for
    assert not FAST.replace(count_scales_on_fitted=True).for_super_resolution(4.0) \
        .count_scales_on_fitted


def test_coarse_scales_can_train_longer():
    cfg = PAPER.replace(iters_per_scale=300, coarse_scales=2, coarse_iters_per_scale=900)
    assert [cfg.iterations(n) for n in range(4)] == [900, 900, 300, 300]
    assert [PAPER.iterations(n) for n in range(3)] == [2000] * 3


def test_coarse_scales_can_train_with_the_ones_below():
    cfg = PAPER.replace(coarse_scales=4, coarse_joint_stages=3)
    assert [list(cfg.lower_stages(n)) for n in range(6)] == [[], [0], [0, 1], [1, 2], [], []]
    assert all(not PAPER.lower_stages(n) for n in range(4))
    with pytest.raises(SinGANError, match="coarse_joint_stages must be a positive integer"):
        SinGANConfig(coarse_joint_stages=0)
    with pytest.raises(SinGANError, match="joint_lr_scale must be non-negative"):
        SinGANConfig(joint_lr_scale=-0.1)


def test_training_window():
    assert PAPER.training_size((188, 250), 5) == (188, 250)
    assert FAST.replace(crop_size=64).training_size((50, 250), 3) == (50, 64)
    assert FAST.training_size((50, 250), 0) == (50, 250)  # a fresh G: the whole image
    assert PAPER.replace(crop_size=64).training_size((50, 250), 4) == (50, 250)  # new width
    whole_below_6 = FAST.replace(whole_image_scales=6)
    assert [whole_below_6.training_size((100, 130), n) for n in (5, 6)] == [(100, 130), (64, 64)]


def test_coarse_scales_can_draw_more_noise():
    cfg = FAST.replace(coarse_scales=3, coarse_noise_amp_init=0.3)
    assert [cfg.noise_amp_factor(n) for n in range(1, 5)] == [0.3, 0.3, 0.1, 0.1]
    assert [FAST.noise_amp_factor(n) for n in range(1, 6)] == [0.1] * 5  # 0: noise_amp_init
    with pytest.raises(SinGANError, match="coarse_noise_amp_init must be non-negative"):
        SinGANConfig(coarse_noise_amp_init=-0.1)
