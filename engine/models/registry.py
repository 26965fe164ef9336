"""Every model family by the kind name its model files and run links store."""

from __future__ import annotations

from types import MappingProxyType

from engine.cnn.family import CNN
from engine.ffnn.family import FFNN
from engine.models.family import Family

FAMILIES = MappingProxyType({family.kind: family for family in (FFNN, CNN)})


class UnknownFamilyError(LookupError):
    """A kind name no registered family answers to (a damaged or foreign file)."""


def family_named(kind: object) -> Family:
    """The family stored as `kind` in model files; UnknownFamilyError for any other name."""
    family = FAMILIES.get(kind) if isinstance(kind, str) else None
    if family is None:
        raise UnknownFamilyError(f"No model family here is called {kind!r}; this app knows "
                                 f"{', '.join(sorted(FAMILIES))}.")
    return family
