"""One home for the seed default: the caller's seed, or a fresh random one."""
from __future__ import annotations

import secrets


def resolve_seed(seed: int | None) -> int:
    """62 random bits when no seed is given, so `seed + batch index` stays an int64."""
    return secrets.randbits(62) if seed is None else int(seed)
