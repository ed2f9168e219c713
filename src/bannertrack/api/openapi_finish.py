"""``finish(openapi)``: what schema generation gets wrong for us, fixed in place.

Request structs that refuse unknown fields say ``additionalProperties: false``; integer
bounds are exact integers (2^63-1, not the float 9.223372036854776e+18); every field of
a response body is ``required`` (msgspec sends every field, defaults and nulls too, so a
generated client must not type ``valid_clicks`` as "maybe unset"); each set of choices
(the breakdown dimension, the interval, ...) is one shared component; and fields whose
type says less than the server checks (URLs, addresses, amounts) carry the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, get_args

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.base import BaseSchemaObject
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from bannertrack.api.examples import EXAMPLES, OPTIONAL_BODIES, REQUEST_STRUCTS
from bannertrack.bootstrap.web import MAX_ID, MAX_OFFSET
from bannertrack.caching.keys import Namespace
from bannertrack.models import (
    BreakdownCount,
    CountKind,
    Device,
    Dimension,
    Interval,
    ServeFormat,
)

# Litestar turns every bound into a float, and float(2**63 - 1) is 2**63: the ids' upper
# bound would read one too high. The bounds the API uses, keyed by their float.
_EXACT = {float(n): n for n in (MAX_ID, MAX_OFFSET)}


def finish(openapi: OpenAPI) -> None:
    """Fix, in place, what schema generation states wrongly or leaves out.

    - request structs that refuse unknown fields say ``additionalProperties: false``, so
      a generated client does not send extras the server answers with 400;
    - integer bounds are exact integers;
    - every component schema carries a real example (``api/examples.py``);
    - a request body the handler defaults (the click report) is optional;
    - a redirect (the tracking link's 302) has headers and no body.
    """
    schemas = openapi.components.schemas if openapi.components else {}
    for struct in REQUEST_STRUCTS:
        schema = schemas.get(struct.__name__)
        if schema is not None and struct.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
    for (name, field), refine in _FIELDS.items():
        schema = schemas.get(name)
        if schema is not None and schema.properties and field in schema.properties:
            prop = schema.properties[field]
            if isinstance(prop, Schema):
                refine(prop)
    for name, example in EXAMPLES.items():
        if name in schemas:
            schemas[name].examples = [example]
    for schema in _walk(openapi):
        for bound in ("maximum", "minimum", "exclusive_maximum", "exclusive_minimum"):
            value = getattr(schema, bound)
            if isinstance(value, float) and value.is_integer():
                setattr(schema, bound, _EXACT.get(value, int(value)))
    for path_item in (openapi.paths or {}).values():
        for operation in (path_item.get, path_item.head):
            redirect = operation.responses.get("302") if operation and operation.responses else None
            if isinstance(redirect, OpenAPIResponse):
                redirect.content = None  # a redirect has an empty body
    _serve_responses((openapi.paths or {}).get("/p/{placement_id}"))
    for path, method in OPTIONAL_BODIES:
        item = (openapi.paths or {}).get(path)
        operation = getattr(item, method, None) if item is not None else None
        if operation is not None and isinstance(operation.request_body, RequestBody):
            operation.request_body.required = False
    requests = {struct.__name__ for struct in REQUEST_STRUCTS}
    for name, schema in schemas.items():
        if name not in requests and schema.properties:
            # msgspec sends every field, but those of ``omit_defaults`` structs left at
            # their default: ``incomplete_before`` only comes with a filtered range.
            schema.required = sorted(p for p in schema.properties if p not in OMITTED_AT_DEFAULT)
    _share_enums(openapi, schemas)


OMITTED_AT_DEFAULT = frozenset({"incomplete_before"})

# Each set of choices the API takes or answers, by the component that names it.
ENUMS: dict[frozenset[str], str] = {
    frozenset(get_args(name)): component
    for name, component in (
        (Dimension, "BreakdownDimension"),
        (Interval, "Interval"),
        (CountKind, "CountKind"),
        (BreakdownCount, "BreakdownCount"),
        (Namespace, "CacheNamespace"),
        (Device, "Device"),
        (ServeFormat, "ServeFormat"),
    )
}


def _share_enums(openapi: OpenAPI, schemas: dict[str, Schema]) -> None:
    """Replace every inline string enum of a known set by a reference to one component,
    so a generated client has one ``BreakdownDimension``, not one per place it appears."""

    def shared(node: Any) -> Any:
        if not isinstance(node, Schema) or not node.enum:
            return node
        name = ENUMS.get(frozenset(map(str, node.enum)))
        if name is None:
            return node
        schemas.setdefault(name, Schema(type=OpenAPIType.STRING, enum=list(node.enum)))
        return Reference(ref=f"#/components/schemas/{name}", description=node.description)

    for node in list(_walk(openapi)) + [p for p in _parameters(openapi)]:
        if isinstance(node, Parameter):
            node.schema = shared(node.schema)
            continue
        if node.properties:
            node.properties = {k: shared(v) for k, v in node.properties.items()}
        node.items = shared(node.items)
        for branches in ("one_of", "any_of", "all_of"):
            listed = getattr(node, branches)
            if listed:
                setattr(node, branches, [shared(b) for b in listed])


def _parameters(openapi: OpenAPI) -> Iterator[Parameter]:
    for item in (openapi.paths or {}).values():
        for operation in (item.get, item.put, item.post, item.delete, item.head, item.patch):
            for parameter in (operation.parameters or []) if operation is not None else []:
                if isinstance(parameter, Parameter):
                    yield parameter


# What the server accepts for a banner URL, as far as JSON Schema can say it: an http(s)
# URL whose host is plain ASCII. The server also takes IRIs (non-ASCII, converted to a
# URI) and IPv6 literals; the description says so, the pattern cannot.
_PCHARS = r"([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*"
_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~!$&'()*+,;=-]+(:[0-9]{1,4})?"
    rf"(/{_PCHARS})?(\?{_PCHARS})?(#{_PCHARS})?$"
)
_URL_NOTE = (
    "An absolute http(s) URL. Control characters and spaces are refused; a non-ASCII URL "
    "(an IRI) is stored converted to a URI (host through IDNA, the rest percent-encoded)."
)


def _url(prop: Schema) -> None:
    for branch in [prop, *(prop.one_of or [])]:
        if isinstance(branch, Schema) and branch.type == OpenAPIType.STRING:
            branch.pattern = _URL_PATTERN
            branch.format = OpenAPIFormat.URI
            branch.description = _URL_NOTE


def _ip(prop: Schema) -> None:
    prop.one_of = [
        Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.IPV4),
        Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.IPV6),
        Schema(type=OpenAPIType.NULL),
    ]
    prop.type = None
    prop.max_length = None
    prop.description = (
        "The end user's address (IPv4 or IPv6, no port): hashed into the visitor key, "
        "never stored; left out, the click has no visitor and cannot be a repeat."
    )


def _amount(prop: Schema) -> None:
    prop.one_of = [
        Schema(type=OpenAPIType.NUMBER, minimum=0, exclusive_maximum=10**12),
        Schema(type=OpenAPIType.STRING, pattern=r"^[0-9]{1,12}(\.[0-9]{1,6})?$"),
        Schema(type=OpenAPIType.NULL),
    ]
    prop.description = (
        "A decimal >= 0 and < 10^12 with at most 6 decimal places, as a JSON number or a "
        "decimal string; read exactly, never through a binary float. With currency."
    )


def _text(pattern: str, description: str) -> Callable[[Schema], None]:
    def refine(prop: Schema) -> None:
        for branch in [prop, *(prop.one_of or [])]:
            if isinstance(branch, Schema) and branch.type == OpenAPIType.STRING:
                branch.pattern = pattern
        prop.description = description

    return refine


_FIELDS: dict[tuple[str, str], Callable[[Schema], None]] = {
    ("ConversionReport", "value"): _amount,
    ("ConversionReport", "click_id"): _text(
        r"^[A-Za-z0-9_-]{16,64}$", "The click id the tracking link added to the Location."
    ),
    ("ConversionReport", "goal"): _text(
        r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$", "A short name of the goal: signup, sale, ..."
    ),
    ("ConversionReport", "currency"): _text(
        r"^[A-Z]{3}$", "An ISO 4217 code (active currencies). With value."
    ),
    **{
        (model, url): _url
        for model in ("BannerCreate", "BannerUpdate")
        for url in ("image_url", "target_url")
    },
    ("ClickReport", "ip"): _ip,
}


def _serve_responses(item: Any) -> None:
    """``GET /p/{id}`` answers HTML or, with ``format=json``, a ``ServedBanner``; or 204."""
    if item is None:
        return
    number = Schema(one_of=[Schema(type=OpenAPIType.INTEGER), Schema(type=OpenAPIType.NULL)])
    served = Schema(
        type=OpenAPIType.OBJECT,
        required=["banner_id", "image_url", "click_url", "width", "height"],
        properties={
            "banner_id": Schema(type=OpenAPIType.INTEGER),
            "image_url": Schema(type=OpenAPIType.STRING),
            "click_url": Schema(
                type=OpenAPIType.STRING,
                format=OpenAPIFormat.URI,
                description="The tracking link, signed: /c/{banner_id}?p=&ts=&sig=",
            ),
            "width": number,
            "height": number,
        },
    )
    for operation in (item.get, item.head):
        if operation is None or not operation.responses:
            continue
        ok = operation.responses.get("200")
        if isinstance(ok, OpenAPIResponse):
            ok.content = {
                "text/html": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                "application/json": OpenAPIMediaType(schema=served),
            }
        operation.responses["204"] = OpenAPIResponse(
            description="No banner of the placement is eligible for this request."
        )


def _walk(node: Any) -> Iterator[Schema]:
    """Every Schema object reachable from ``node``."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Schema):
            yield item
        if isinstance(item, BaseSchemaObject):
            stack.extend(v for v in vars(item).values() if v is not None)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
