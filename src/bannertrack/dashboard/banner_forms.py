"""The banner form, built from ``BannerCreate``'s own fields and checked by the same rules.

The fields are read from the struct (``msgspec.inspect``), so a field the domain gains
(a schedule, targeting, a cap, a click-id parameter) appears in the form with no change
here: text for strings, a checkbox for booleans, a number, a UTC date-time, or a
comma-separated list. A submitted form is converted to the struct the API decodes, with
the API's strictness and messages; each message is shown next to the field it names
(``$.name`` in msgspec's, the field's name in the domain's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import msgspec
from msgspec import inspect as mi

from bannertrack.clicks.links import to_uri
from bannertrack.errors import InvalidInputError
from bannertrack.models import Banner, BannerCreate, BannerUpdate
from bannertrack.placements.rules import checked

Kind = Literal["text", "url", "checkbox", "number", "datetime", "list"]
T = TypeVar("T", BannerCreate, BannerUpdate)

# What a marketer reads beside each known field; a new field gets its name, readable.
LABELS: dict[str, tuple[str, str]] = {
    "name": ("Name", "Shown in the dashboard and as the image's alt text."),
    "image_url": ("Image URL", "An absolute http(s) address of the banner image."),
    "target_url": ("Target URL", "Where the tracking link sends a visitor."),
    "active": ("Active", "A paused banner's link still redirects; placements skip it."),
    "forward_query": (
        "Forward the link's query string",
        "utm_* and friends on the tracking link are passed on to the target.",
    ),
    "starts_at": ("Starts at (UTC)", "Leave empty to start now."),
    "ends_at": ("Ends at (UTC)", "Leave empty to run until paused."),
    "countries": ("Countries", "ISO codes separated by commas, e.g. DE, AT; empty: all."),
    "devices": ("Devices", "desktop, mobile, tablet separated by commas; empty: all."),
    "cap_per_day": ("Cap per visitor and day", "Impressions per visitor and day; empty: none."),
    "click_id_param": (
        "Click-id parameter",
        "Query parameter the link adds with a click id for conversions; empty: none.",
    ),
}
_PATH = re.compile(r"at `\$\.(\w+)")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    help: str
    kind: Kind
    required: bool
    nullable: bool = False  # empty sends null (no schedule, no cap)
    max_length: int | None = None


def _kind(t: mi.Type) -> tuple[Kind, bool, int | None]:
    """The input kind of a field's type, whether it may be empty, and its longest value."""
    optional = False
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        optional = len(rest) < len(t.types)
        t = rest[0] if len(rest) == 1 else mi.StrType()
    if isinstance(t, mi.BoolType):
        return "checkbox", True, None
    if isinstance(t, mi.IntType):
        return "number", optional, None
    if isinstance(t, mi.DateTimeType):
        return "datetime", optional, None
    if isinstance(t, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        return "list", True, None
    if isinstance(t, mi.StrType):
        kind: Kind = "text"
        if t.min_length is not None and t.min_length >= 8 and (t.max_length or 0) >= 2048:
            kind = "url"
        return kind, optional, t.max_length
    return "text", optional, None


def form_fields() -> tuple[Field, ...]:
    info = mi.type_info(BannerCreate)
    assert isinstance(info, mi.StructType)
    fields = []
    for f in info.fields:
        kind, optional, longest = _kind(f.type)
        label, help_text = LABELS.get(f.name, (f.name.replace("_", " ").capitalize(), ""))
        fields.append(
            Field(
                name=f.name,
                label=label,
                help=help_text,
                kind=kind,
                required=f.required and not optional and kind != "checkbox",
                nullable=optional,
                max_length=longest,
            )
        )
    return tuple(fields)


def values_of(banner: Banner | None) -> dict[str, str | bool]:
    """What the form shows: a banner's values, or the defaults of a new one."""
    shown: dict[str, str | bool] = {}
    defaults = {f.name: f.default for f in msgspec.structs.fields(BannerCreate)}
    for field in form_fields():
        value = getattr(banner, field.name, None) if banner else defaults.get(field.name)
        if value is msgspec.NODEFAULT or value is None or value is msgspec.UNSET:
            value = ""
        if field.kind == "checkbox":
            shown[field.name] = bool(value)
        elif field.kind == "datetime" and isinstance(value, datetime):
            shown[field.name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        elif field.kind == "list" and isinstance(value, list | tuple | set | frozenset):
            shown[field.name] = ", ".join(str(v) for v in value)
        else:
            shown[field.name] = str(value)
    return shown


def _payload(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    payload: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in form_fields():
        raw = form.get(field.name, "")
        text = raw.strip() if field.kind != "checkbox" else raw
        if field.kind == "checkbox":
            payload[field.name] = bool(raw)
        elif text == "" and not field.required:
            if field.nullable:
                payload[field.name] = None
            # else: left out, the struct's default applies
        elif field.kind == "number":
            if re.fullmatch(r"-?\d{1,18}", text):
                payload[field.name] = int(text)
            else:
                errors[field.name] = "a whole number"
        elif field.kind == "datetime":
            try:
                at = datetime.fromisoformat(text)
            except ValueError:
                errors[field.name] = "a date and time, e.g. 2026-12-24T09:00"
            else:
                payload[field.name] = (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()
        elif field.kind == "list":
            payload[field.name] = [v for v in re.split(r"[\s,]+", text) if v]
        else:
            payload[field.name] = text
    return payload, errors


def parse(form: Mapping[str, str], struct: type[T]) -> tuple[T | None, dict[str, str]]:
    """The form as ``struct`` (decoded as the API decodes a body), or messages per field.

    A message naming no field is keyed ``""`` and shown above the form.
    """
    payload, errors = _payload(form)
    if errors:
        return None, errors
    try:
        data = msgspec.convert(payload, struct, strict=True)
    except msgspec.ValidationError as exc:
        found = _PATH.search(str(exc))
        return None, {found.group(1) if found else "": str(exc).split(" - at ")[0]}
    # What the API does with a decoded body (api/banners.py): the schedule and targeting
    # checked and normalised, the URLs checked and made URIs.
    try:
        data = checked(data)
        changes = {
            name: to_uri(value, name)
            for name in ("image_url", "target_url")
            if isinstance(value := getattr(data, name), str)
        }
    except InvalidInputError as exc:
        return None, domain_error(exc)
    return msgspec.structs.replace(data, **changes), {}


def domain_error(exc: InvalidInputError) -> dict[str, str]:
    """A message of the repository (say, an end before the start) beside its field."""
    message = str(exc)
    # The longest name first: "ends_at" is no prefix of another, but be sure.
    names = sorted((f.name for f in form_fields()), key=len, reverse=True)
    named = next((n for n in names if message.startswith(n)), "")
    return {named: message}
