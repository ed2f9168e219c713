"""The placement forms: a placement's name and size, and its weighted banners.

Each form is converted to the struct the API decodes (``PlacementCreate``,
``PlacementUpdate``, ``PlacementBannersIn``) with the API's strictness, so a refused form
shows the API's own message, beside the field it names: ``$.width`` is the width field,
``$.banners[2].weight`` the weight of the third banner the form sent.

The weights form sends one ``weight-{id}`` per linked banner (``remove-{id}`` ticked
unlinks it) and one new link (``add_banner``, ``add_weight``); it replaces the whole
set, as ``PUT /api/v1/placements/{id}/banners`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from bannertrack.models import (
    Placement,
    PlacementBanner,
    PlacementBannersIn,
    PlacementCreate,
    PlacementUpdate,
)

T = TypeVar("T", PlacementCreate, PlacementUpdate)
SIZE_FIELDS = ("width", "height")
_PATH = re.compile(r"at `\$\.(\w+)(?:\[(\d+)\]\.(\w+))?`")
_NUMBER = re.compile(r"-?\d{1,18}")
ADD_WEIGHT = 100  # a new link's weight when the form leaves it empty


def placement_values(placement: Placement | None) -> dict[str, str]:
    if placement is None:
        return {"name": "", "width": "", "height": ""}
    return {
        "name": placement.name,
        "width": "" if placement.width is None else str(placement.width),
        "height": "" if placement.height is None else str(placement.height),
    }


def parse_placement(form: Mapping[str, str], struct: type[T]) -> tuple[T | None, dict[str, str]]:
    """The form as ``struct`` (an empty size is "no size"), or messages by field."""
    payload: dict[str, Any] = {"name": form.get("name", "").strip()}
    errors: dict[str, str] = {}
    for name in SIZE_FIELDS:
        text = form.get(name, "").strip()
        if not text:
            payload[name] = None
        elif _NUMBER.fullmatch(text):
            payload[name] = int(text)
        else:
            errors[name] = "a whole number of pixels, or empty"
    if errors:
        return None, errors
    try:
        return msgspec.convert(payload, struct, strict=True), {}
    except msgspec.ValidationError as exc:
        found = _PATH.search(str(exc))
        return None, {found.group(1) if found else "": str(exc).split(" - at ")[0]}


@dataclass(frozen=True, slots=True)
class WeightsForm:
    """What the weights form asked for: the links in the order sent, and each one's field."""

    links: tuple[PlacementBanner, ...]
    fields: tuple[str, ...]  # the form field of each link, for its message


def parse_weights(
    form: Mapping[str, str], linked: tuple[PlacementBanner, ...]
) -> tuple[WeightsForm | None, dict[str, str]]:
    """The banners the form keeps, with their weights, checked as the API checks them."""
    payload: list[dict[str, Any]] = []
    fields: list[str] = []
    errors: dict[str, str] = {}
    for link in linked:
        if form.get(f"remove-{link.banner_id}"):
            continue
        field = f"weight-{link.banner_id}"
        text = form.get(field, "").strip()
        if not _NUMBER.fullmatch(text):
            errors[field] = "a whole number from 1 to 1000"
            continue
        payload.append({"banner_id": link.banner_id, "weight": int(text)})
        fields.append(field)
    added = form.get("add_banner", "").strip()
    if added:
        text = form.get("add_weight", "").strip() or str(ADD_WEIGHT)
        if not _NUMBER.fullmatch(added):
            errors["add_banner"] = "a banner id"
        elif not _NUMBER.fullmatch(text):
            errors["add_weight"] = "a whole number from 1 to 1000"
        else:
            payload.append({"banner_id": int(added), "weight": int(text)})
            fields.append("add_weight")
    if errors:
        return None, errors
    try:
        parsed = msgspec.convert({"banners": payload}, PlacementBannersIn, strict=True)
    except msgspec.ValidationError as exc:
        found = _PATH.search(str(exc))
        message = str(exc).split(" - at ")[0]
        if found and found.group(2) is not None:
            return None, {fields[int(found.group(2))]: message}
        return None, {"": message}
    return WeightsForm(links=parsed.banners, fields=tuple(fields)), {}


def weights_error(message: str) -> dict[str, str]:
    """A message of the repository (an unknown banner, one given twice): by the new link."""
    return {"add_banner": message}
