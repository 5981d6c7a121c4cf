"""What every config class of a model family does with its fields: replace, compare and
round-trip them through a manifest. Mixed into frozen dataclasses."""
from __future__ import annotations

import dataclasses

from .errors import SinGANError


class ConfigFields:
    family = "singan"  # the model family a model directory's manifest names

    def replace(self, **changes):
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise SinGANError(f"config: unknown option(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def differences(self, base) -> dict:
        """The options whose values differ from `base`'s (what a fit set beyond its preset;
        all of them when `base` is of another family)."""
        return {name: value for name, value in self.to_dict().items()
                if value != getattr(base, name, None)}

    @classmethod
    def from_dict(cls, values: dict):
        """Options missing from `values` (saved before they existed) take their defaults;
        unknown ones are refused, since a fit resumed without them would silently train a
        different model than the one that wrote them."""
        return cls().replace(**values)
