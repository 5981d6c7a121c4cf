"""Everything one trained model does without retraining (reference: "Using a trained model")."""
from .animation import animate, save_gif
from .editing import edit, harmonize
from .injection import inject
from .paint import paint2image
from .super_resolution import super_resolve

__all__ = ["animate", "save_gif", "edit", "harmonize", "inject", "paint2image", "super_resolve"]
