"""Everything one trained model does without retraining (reference: "Using a trained model")."""
from .animation import animate, animation_frames, save_gif
from .editing import edit, harmonize
from .injection import inject
from .paint import paint2image
from .super_resolution import super_resolve

__all__ = ["animate", "animation_frames", "save_gif", "edit", "harmonize", "inject", "paint2image", "super_resolve"]
