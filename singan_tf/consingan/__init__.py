"""ConSinGAN (Hinz et al., WACV 2021) as a second model family: one generator that grows
a stage at a time and trains its last stages together. Same model directory, sampling,
export and CLI as the SinGAN pyramid; see README "Presets"."""
