"""Checks of the shape fields every family's spec carries."""

from __future__ import annotations

from spikesmith.errors import InputError


def check_shape(where: str, input_shape, num_classes, *, dims: int | None = None) -> tuple[tuple[int, ...], int]:
    """(input_shape as ints, num_classes) or InputError naming ``where`` and the field."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise InputError(f"{where}.input_shape: expected a list of sizes, got {input_shape!r}") from None
    if not shape or any(s < 1 for s in shape) or (dims is not None and len(shape) != dims):
        need = f"{dims} positive sizes" if dims else "positive sizes"
        raise InputError(f"{where}.input_shape: expected {need}, got {list(shape)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise InputError(f"{where}.num_classes: expected a positive integer, got {num_classes!r}")
    return shape, int(num_classes)
