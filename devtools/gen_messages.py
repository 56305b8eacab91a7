"""Generate ``domain/messages.py`` from the OCPP 2.0.1 JSON schemas.

Usage::

    python -m devtools.gen_messages [--schemas DIR] [--output FILE] [--check]

``--schemas`` defaults to the schema folder shipped in the installed PyPI ``ocpp``
package (``ocpp/v201/schemas/``; located with ``importlib.util.find_spec``, never
imported). ``--check`` writes nothing: it exits 1 if the committed module differs
from what would be generated. Stdlib only; the output depends on nothing but the
schemas' content (sorted, no timestamps, no paths), so it is byte-identical on
every run.

Rules (also written into the generated module's docstring):

* One ``msgspec.Struct`` per action and direction, ``<Action>Request`` and
  ``<Action>Response``, with ``action: ClassVar[str] = "<Action>"``.
* A schema definition becomes one class, emitted once however many schema files
  carry a copy. Copies must be identical except for the definition's own
  ``description`` (the OCA schemas describe enums per use); anything else
  differing aborts generation. A description that differs between copies is left
  off the class and put on the fields that use the type in each schema instead.
* Names: ``FooType`` -> ``Foo``; ``FooEnumType`` -> ``Foo`` (a ``enum.StrEnum``);
  a name without the suffix is kept. An enum whose name would clash with another
  class (``IdTokenEnumType`` vs ``IdTokenType``, ``VPNEnumType`` vs ``VPNType``)
  keeps ``Enum``: ``IdTokenEnum``, ``VPNEnum``. Any other clash aborts.
* Fields: snake_case of the wire name (``SoC`` is treated as one word:
  ``fullSoC`` -> ``full_soc``), a ``_`` appended to Python keywords and to
  ``action`` (taken by the ClassVar: Get15118EVCertificateRequest's
  ``action`` field is ``action_``). The exact wire name is given by each class's
  ``rename`` mapping.
* Every constraining keyword the schemas use is mapped (see ``_SUPPORTED``); a
  keyword not listed there (``pattern``, ``multipleOf``, ``anyOf``, ...) aborts
  generation rather than being silently dropped.
"""
from __future__ import annotations

import argparse
import enum
import html
import importlib.util
import json
import keyword
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "domain" / "messages.py"
WIDTH = 88

# Keywords understood in a property (or array item) schema. Anything else aborts.
_SUPPORTED = frozenset(
    {
        "$ref", "type", "description", "javaType", "comment", "default",
        "maxLength", "minLength", "format",
        "minimum", "maximum",
        "items", "minItems", "maxItems", "additionalItems",
    }
)  # fmt: skip
_DEFINITION_KEYS = frozenset(
    {"description", "javaType", "type", "additionalProperties", "enum", "default",
     "properties", "required", "comment"}
)  # fmt: skip
_ROOT_KEYS = frozenset(
    {"$schema", "$id", "comment", "description", "definitions", "type",
     "additionalProperties", "properties", "required"}
)  # fmt: skip
_EXPECTED_FILES = 128
# Module-level names a generated class must not take.
_RESERVED = frozenset(
    {"ACTIONS", "REQUESTS", "RESPONSES", "Annotated", "Any", "ClassVar", "TypeVar", "T",
     "datetime", "enum", "msgspec", "DateTime"}
)  # fmt: skip
_ENUM_RESERVED = frozenset(dir(enum.StrEnum))
_FIELD_RESERVED = frozenset({"action"})


class SchemaError(Exception):
    """The schemas contain something this generator does not handle."""


# ---------------------------------------------------------------------------
# Loading


def default_schema_dir() -> Path:
    spec = importlib.util.find_spec("ocpp")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaError("the `ocpp` package is not installed; pass --schemas DIR")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "v201" / "schemas"
        if candidate.is_dir():
            return candidate
    raise SchemaError("the installed `ocpp` package has no v201/schemas folder")


def load_schemas(schema_dir: Path) -> dict[str, dict]:
    """File stem (``BootNotificationRequest``) -> parsed schema, checked for shape."""
    if not schema_dir.is_dir():
        raise SchemaError(f"no such schema folder: {schema_dir}")
    files = sorted(schema_dir.glob("*.json"))
    if len(files) != _EXPECTED_FILES:
        raise SchemaError(f"expected {_EXPECTED_FILES} schema files, found {len(files)}")
    schemas = {}
    for path in files:
        schema = json.loads(path.read_text(encoding="utf-8-sig"))
        stem = path.stem
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*(Request|Response)", stem):
            raise SchemaError(f"{path.name}: not <Action>Request/Response")
        if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
            raise SchemaError(f"{path.name}: root must be a closed object")
        if "draft-06" not in schema.get("$schema", ""):
            raise SchemaError(f"{path.name}: expected a draft-06 schema")
        if extra := set(schema) - _ROOT_KEYS:
            raise SchemaError(f"{path.name}: unsupported root keywords {sorted(extra)}")
        schemas[stem] = schema
    actions = {s.removesuffix("Request").removesuffix("Response") for s in schemas}
    for action in sorted(actions):
        for kind in ("Request", "Response"):
            if action + kind not in schemas:
                raise SchemaError(f"{action}{kind}.json is missing")
    return schemas


# ---------------------------------------------------------------------------
# Model


@dataclass
class Definition:
    schema_name: str  # e.g. "ChargingStationType"
    body: dict  # the first copy (sorted by file name)
    descriptions: dict[str, str | None]  # schema file stem -> description of that copy
    py_name: str = ""
    is_enum: bool = False

    @property
    def uniform_description(self) -> str | None:
        values = set(self.descriptions.values())
        return values.pop() if len(values) == 1 else None


@dataclass
class Model:
    schemas: dict[str, dict]
    definitions: dict[str, Definition] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # alias name -> expression
    uses_any: bool = False
    uses_datetime: bool = False
    uses_typevar: bool = False


def _strip_description(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "description"}


def collect_definitions(schemas: dict[str, dict]) -> dict[str, Definition]:
    definitions: dict[str, Definition] = {}
    for stem in sorted(schemas):
        for name, body in schemas[stem].get("definitions", {}).items():
            if extra := set(body) - _DEFINITION_KEYS:
                raise SchemaError(f"{stem}.json: {name}: unsupported keywords {sorted(extra)}")
            known = definitions.get(name)
            if known is None:
                definitions[name] = Definition(name, body, {stem: body.get("description")})
                continue
            if _strip_description(known.body) != _strip_description(body):
                first = sorted(known.descriptions)[0]
                raise SchemaError(
                    f"definition {name} differs between {first}.json and {stem}.json "
                    "(beyond its description); refusing to guess"
                )
            known.descriptions[stem] = body.get("description")
    return definitions


def _base_name(schema_name: str, is_enum: bool) -> str:
    if is_enum and schema_name.endswith("EnumType"):
        return schema_name[: -len("EnumType")]
    return schema_name.removesuffix("Type")


def assign_names(definitions: dict[str, Definition], schemas: dict[str, dict]) -> None:
    taken = set(schemas) | _RESERVED
    for d in definitions.values():
        d.is_enum = "enum" in d.body
        if d.is_enum and d.body.get("type") != "string":
            raise SchemaError(f"{d.schema_name}: only string enums are supported")
        if not d.is_enum and d.body.get("type") != "object":
            raise SchemaError(f"{d.schema_name}: definition is neither object nor enum")
    # Structs first: they always get the plain name.
    for d in sorted(definitions.values(), key=lambda d: d.schema_name):
        if d.is_enum:
            continue
        d.py_name = _base_name(d.schema_name, False)
        if d.py_name in taken or not d.py_name.isidentifier():
            raise SchemaError(f"{d.schema_name}: class name {d.py_name} clashes")
        taken.add(d.py_name)
    for d in sorted(definitions.values(), key=lambda d: d.schema_name):
        if not d.is_enum:
            continue
        name = _base_name(d.schema_name, True)
        if name in taken:
            name += "Enum"
        if name in taken or not name.isidentifier():
            raise SchemaError(f"{d.schema_name}: class name {name} clashes")
        d.py_name = name
        taken.add(name)


# ---------------------------------------------------------------------------
# Names and text


def snake_case(wire: str) -> str:
    s = wire.replace("SoC", "Soc")
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = s.lower()
    if keyword.iskeyword(s) or s in _FIELD_RESERVED:
        s += "_"
    if not s.isidentifier():
        raise SchemaError(f"property {wire!r} gives no identifier")
    return s


def member_name(value: str) -> str:
    """``Energy.Active.Import.Register`` -> ``Energy_Active_Import_Register``."""
    name = re.sub(r"\W", "_", value, flags=re.ASCII)
    if name[:1].isdigit():
        name = "_" + name
    if keyword.iskeyword(name) or name in _ENUM_RESERVED:
        name += "_"  # `None`, or a str method such as `title`
    if not name.isidentifier() or (name.startswith("_") and name.endswith("_")):
        raise SchemaError(f"enum value {value!r} gives no usable member name ({name})")
    return name


def clean_description(text: str | None) -> str:
    """First paragraph, without the data-dictionary header and AsciiDoc markup."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > 1 and lines[1].startswith("urn:"):
        lines = lines[2:]  # "Charging_ Profile. Stack_ Level. Counter" + "urn:x-oca:..."
    body = "\n".join(lines).strip()
    first = re.split(r"\n\s*\n", body)[0]
    first = html.unescape(first)
    first = re.sub(r"<<[^,>]*,\s*([^>]*)>>", r"\1", first)
    first = re.sub(r"<<([^>]*)>>", r"\1", first)
    first = re.sub(r"\s\+\n", "\n", first)
    first = " ".join(first.split())
    return first.replace("\\", "\\\\").replace('"""', "'''")


def wrap(text: str, indent: str, prefix: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent + prefix,
        subsequent_indent=indent + prefix,
        break_long_words=False,
        break_on_hyphens=False,
    )


def docstring(text: str, indent: str) -> list[str]:
    if not text:
        return []
    one = f'{indent}"""{text}"""'
    if len(one) <= WIDTH and not text.endswith('"'):
        return [one]
    return [f'{indent}"""'] + wrap(text, indent) + [f'{indent}"""']


def _num(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return repr(value)


def _num_label(value: float | int) -> str:
    text = _num(value)
    return text.replace("-", "Neg").replace(".", "p")


# ---------------------------------------------------------------------------
# Types


def python_type(model: Model, prop: dict, where: str) -> str:
    if extra := set(prop) - _SUPPORTED:
        raise SchemaError(f"{where}: unsupported keywords {sorted(extra)}")
    if "$ref" in prop:
        ref = prop["$ref"]
        m = re.fullmatch(r"#/definitions/(\w+)", ref)
        if not m or m.group(1) not in model.definitions:
            raise SchemaError(f"{where}: unresolved $ref {ref}")
        if set(prop) - {"$ref", "description", "javaType", "comment"}:
            raise SchemaError(f"{where}: keywords beside $ref are not supported")
        return model.definitions[m.group(1)].py_name
    kind = prop.get("type")
    if kind is None:
        if set(prop) - {"description", "comment"}:
            raise SchemaError(f"{where}: untyped property with constraints")
        model.uses_any = True
        return "Any"
    checks = {
        "string": {"maxLength", "minLength", "format"},
        "integer": {"minimum", "maximum"},
        "number": {"minimum", "maximum"},
        "boolean": set(),
        "array": {"items", "minItems", "maxItems", "additionalItems"},
    }
    if not isinstance(kind, str) or kind not in checks:
        raise SchemaError(f"{where}: unsupported type {kind!r}")
    used = set(prop) & (_SUPPORTED - {"$ref", "type", "description", "javaType", "comment",
                                      "default"})
    if extra := used - checks[kind]:
        raise SchemaError(f"{where}: {sorted(extra)} not supported for type {kind}")
    if kind == "string":
        fmt = prop.get("format")
        if fmt is not None:
            if fmt != "date-time" or {"maxLength", "minLength"} & set(prop):
                raise SchemaError(f"{where}: unsupported string format {fmt!r}")
            model.uses_datetime = True
            model.aliases["DateTime"] = "Annotated[datetime.datetime, msgspec.Meta(tz=True)]"
            return "DateTime"
        lo, hi = prop.get("minLength"), prop.get("maxLength")
        if lo is None and hi is None:
            return "str"
        name = "String" + (f"Min{lo}" if lo is not None else "") + (
            ("To" if lo is not None else "") + str(hi) if hi is not None else "")
        meta = ", ".join(
            f"{k}={v}" for k, v in (("min_length", lo), ("max_length", hi)) if v is not None)
        model.aliases[name] = f"Annotated[str, msgspec.Meta({meta})]"
        return name
    if kind in ("integer", "number"):
        base = "int" if kind == "integer" else "float"
        lo, hi = prop.get("minimum"), prop.get("maximum")
        if lo is None and hi is None:
            return base
        name = base.capitalize() + (f"Min{_num_label(lo)}" if lo is not None else "") + (
            f"Max{_num_label(hi)}" if hi is not None else "")
        meta = ", ".join(f"{k}={_num(v)}" for k, v in (("ge", lo), ("le", hi)) if v is not None)
        model.aliases[name] = f"Annotated[{base}, msgspec.Meta({meta})]"
        return name
    if kind == "boolean":
        return "bool"
    items = prop.get("items")
    if not isinstance(items, dict):
        raise SchemaError(f"{where}: array items must be one schema (tuple form unsupported)")
    # additionalItems only applies to the tuple form of `items`: nothing to enforce.
    inner = python_type(model, items, where + "[]")
    lo, hi = prop.get("minItems"), prop.get("maxItems")
    if lo is None and hi is None:
        return f"list[{inner}]"
    meta = ", ".join(f"{k}={v}" for k, v in (("min_length", lo), ("max_length", hi))
                     if v is not None)
    name = "List" + (f"Min{lo}" if hi is None else f"{lo or 0}To{hi}")
    model.aliases[name] = f"Annotated[list[T], msgspec.Meta({meta})]"
    model.uses_typevar = True
    return f"{name}[{inner}]"


def _refs(body: dict) -> list[str]:
    out = []
    for prop in body.get("properties", {}).values():
        target = prop.get("items", prop) if prop.get("type") == "array" else prop
        if "$ref" in target:
            out.append(target["$ref"].rsplit("/", 1)[1])
    return out


# ---------------------------------------------------------------------------
# Rendering


def render_enum(d: Definition) -> list[str]:
    lines = [f"class {d.py_name}(enum.StrEnum):"]
    doc = clean_description(d.uniform_description)
    lines += docstring(doc, "    ")
    if doc:
        lines.append("")
    seen: dict[str, str] = {}
    for value in d.body["enum"]:
        if not isinstance(value, str):
            raise SchemaError(f"{d.schema_name}: non-string enum value {value!r}")
        name = member_name(value)
        if name in seen:
            raise SchemaError(f"{d.schema_name}: {value!r} and {seen[name]!r} both map to {name}")
        seen[name] = value
        lines.append(f"    {name} = {json.dumps(value)}")
    return lines


def render_struct(
    model: Model,
    py_name: str,
    body: dict,
    stem: str,
    doc: str,
    *,
    action: str | None = None,
    closed: bool = True,
) -> list[str]:
    props: dict[str, dict] = body.get("properties", {})
    required = body.get("required", [])
    if missing := set(required) - set(props):
        raise SchemaError(f"{py_name}: required fields without a schema {sorted(missing)}")
    if not closed and body.get("additionalProperties", True) is False:
        raise SchemaError(f"{py_name}: expected an open object")
    # Schema order, with customData (present everywhere, rarely used) last.
    order = [p for p in props if p != "customData"] + [p for p in props if p == "customData"]
    field_lines: list[str] = []
    for wire in order:
        prop = props[wire]
        where = f"{stem}.json: {py_name}.{wire}"
        name = snake_case(wire)
        annotation = python_type(model, prop, where)
        text = prop.get("description")
        default = prop.get("default")
        target = prop.get("items", prop) if prop.get("type") == "array" else prop
        if "$ref" in target:
            ref = model.definitions[target["$ref"].rsplit("/", 1)[1]]
            if text is None and (ref.is_enum or ref.uniform_description is None):
                text = ref.descriptions.get(stem)
            if default is None:
                default = ref.body.get("default")
        comment = clean_description(text)
        if default is not None and "default" not in comment.lower():
            shown = json.dumps(default)
            comment = (comment + " " if comment else "") + f"Default when absent: {shown}."
        field_lines += wrap(comment, "    ", "#: ")
        # rename="camel" gives the wire name for all but a few fields; those get
        # an explicit msgspec.field(name=...).
        explicit = f'name="{wire}"' if camel_name(name) != wire or name.endswith("_") else None
        if wire in required:
            value = f" = msgspec.field({explicit})" if explicit else ""
        else:
            # Optional: absent decodes as the default None, but the type stays T (not
            # T | None), so an explicit null is a type error (Part 4 4.1.5) - in the
            # same single decoding pass. An `Any` field (DataTransfer.data) takes null.
            value = f" = msgspec.field(default=None, {explicit})" if explicit else " = None"
        field_lines.append(f"    {name}: {annotation}{value}")
    if len({snake_case(w) for w in props}) != len(props):
        raise SchemaError(f"{py_name}: two properties map to one Python name")

    options = ["msgspec.Struct", "kw_only=True", "omit_defaults=True"]
    options.append(f"forbid_unknown_fields={closed}")
    options += ['rename="camel"', "gc=False"]
    lines = [f"class {py_name}("] + _pack(options, "    ") + ["):"]
    parts = [docstring(doc, "    ")]
    if action is not None:
        parts.append([f'    action: ClassVar[str] = "{action}"'])
    parts.append(field_lines)
    parts = [part for part in parts if part]
    if not parts:
        parts = [["    pass"]]
    for i, part in enumerate(parts):
        if i:
            lines.append("")
        lines += part
    return lines


def camel_name(name: str) -> str:
    """The wire name msgspec's ``rename="camel"`` gives the Python field ``name``."""
    probe = msgspec.defstruct("_Probe", [(name, int)], rename="camel")
    return msgspec.structs.fields(probe)[0].encode_name


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _pack(items: list[str], indent: str) -> list[str]:
    """Comma-separated items packed into lines of at most WIDTH characters."""
    lines: list[str] = []
    current = indent
    for item in items:
        piece = item + ","
        if current.strip() and len(current) + 1 + len(piece) > WIDTH:
            lines.append(current)
            current = indent
        current += (" " if current.strip() else "") + piece
    if current.strip():
        lines.append(current)
    return lines


_MODULE_DOC = '''\
"""OCPP 2.0.1 messages as msgspec Structs.

GENERATED by `devtools/gen_messages.py` from the Open Charge Alliance's OCPP 2.0.1
JSON schemas (Part 3, {n_files} files). Do not edit by hand: change the generator
and run `python -m devtools.gen_messages` (`make regen`); `--check` tells whether
this file is current.

Decode a CALL payload with `msgspec.json.decode(payload, type=REQUESTS[action])`.
The station encodes with `domain.ocppj.encode_message(message)` (msgspec, date-times
with at most 3 fractional digits as Part 2 asks), not `msgspec.json.encode` directly.

Names
-----
- `<Action>Request` / `<Action>Response` per action, `action` ClassVar = the
  OCPP action name; `ACTIONS`, `REQUESTS`, `RESPONSES` index them.
- Schema definitions: `FooType` -> `Foo` (Struct), `FooEnumType` -> `Foo`
  (`enum.StrEnum`, values = wire strings, members named after the value with
  every non-identifier character replaced by `_`:
  `Energy.Active.Import.Register` -> `Energy_Active_Import_Register`). Clashes:
  `IdTokenEnumType` -> `IdTokenEnum`, `VPNEnumType` -> `VPNEnum` (the plain
  names are the Structs of `IdTokenType` / `VPNType`). `AuthorizationData`
  has no suffix in the schemas and keeps its name.
- Fields: snake_case Python names (`SoC` counts as one word: `fullSoC` ->
  `full_soc`). Wire names come from `rename="camel"`, or from
  `msgspec.field(name=...)` where that would not give the schema's exact name
  (`responderURL`, `fullSoC`, `bulkSoC`, `action`).
  `Get15118EVCertificateRequest.action_` is the wire field `action` (the name
  `action` is the ClassVar on every message class).

Types
-----
- Required fields have no default; optional fields are `T = None`: an absent
  field decodes as None and None is left out when encoding
  (`omit_defaults=True`). The annotation is deliberately `T`, not `T | None`:
  OCPP-J leaves an empty optional field out and does not allow `null` (Part 4
  4.1.5), so an explicit `null` is rejected as a wrong type in the same single
  decoding pass ("Expected `str`, got `null`"). Schema defaults are named in
  the field comments, never filled in.
- string -> `str` (`maxLength` -> `String<N>`), `format: date-time` ->
  timezone-aware `datetime.datetime` (RFC 3339; UTC encodes with `Z`),
  integer -> `int`, number -> `float`, `minimum`/`maximum` -> `Meta(ge/le)`,
  arrays -> `list[T]` with `minItems`/`maxItems` as `Meta(min/max_length)`
  (`ListMin1[T]`, `List1To4[T]`, ...).
  `additionalItems` only constrains tuple-form `items`, which the schemas do
  not use. `DataTransfer*.data` (no type in the schema) is `Any`.
- Unknown fields are rejected (`additionalProperties: false`), except in
  `CustomData`, which is open in the schema: its unknown (vendor) members are
  accepted and dropped when decoding.

Differences from the schemas
----------------------------
- Lenient: unknown members of `customData` are accepted but dropped (above).
- `DataTransfer*.data` is any JSON value, null included (the schema gives it no
  type); an explicit `"data": null` decodes as None, like an absent `data`, and
  so is left out when re-encoded. Null is never produced anywhere else.
- Strict: an integer field written as `1.0` is rejected ("Expected `int`, got
  `float`") although JSON Schema counts it as an integer; a number beyond the
  double range (`1e400`) gives "Number out of range - at `<path>`".

Decode errors
-------------
A schema violation raises `msgspec.ValidationError` whose message is exactly
one of the shapes below (tests/test_messages.py checks every rule at every place
of every schema). <path> is the wire path, e.g. `$.chargingStation.model`,
`$.meterValue[0].sampledValue[2].value`; the " - at `<path>`" suffix is left out
when the error is at the root. In "wrong type", <type> is `str` (strings and
enums), `int`, `float`, `bool`, `datetime`, `object` or `array`, the same for
required and optional fields; <got> is the JSON type found (`str`, `int`,
`float`, `bool`, `object`, `array`, `null`).

  missing required  Object missing required field `<wireName>` - at `<path>`
                    (path of the object that lacks it)
  unknown field     Object contains unknown field `<wireName>` - at `<path>`
                    (path of the object that has it)
  wrong type        Expected `<type>`, got `<got>` - at `<path>`
                    (an integer field given 1.5 or 1.0: Expected `int`, got `float`;
                    any typed field given null: Expected `<type>`, got `null`)
  string too long   Expected `str` of length <= <maxLength> - at `<path>`
  below minimum     Expected `int` >= <minimum> - at `<path>`
  above maximum     Expected `int` <= <maximum> - at `<path>`
  bad enum value    Invalid enum value '<value>' - at `<path>`
  too few items     Expected `array` of length >= <minItems> - at `<path>`
  too many items    Expected `array` of length <= <maxItems> - at `<path>`
  bad date-time     Invalid RFC3339 encoded datetime - at `<path>`
  no UTC offset     Expected `datetime` with a timezone component - at `<path>`

Malformed JSON raises `msgspec.DecodeError` ("JSON is malformed: ...",
"Input data was truncated"), which is not a ValidationError.
"""'''


def generate(schema_dir: Path | None = None) -> str:
    schema_dir = Path(schema_dir) if schema_dir is not None else default_schema_dir()
    schemas = load_schemas(schema_dir)
    model = Model(schemas, collect_definitions(schemas))
    assign_names(model.definitions, schemas)
    by_name = model.definitions

    # Render structs in dependency order (dependencies first, ties by name).
    ordered: list[Definition] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise SchemaError(f"recursive definition {name} is not supported")
        state[name] = 1
        for dep in sorted(set(_refs(by_name[name].body))):
            visit(dep)
        state[name] = 2
        ordered.append(by_name[name])

    for name in sorted(by_name):
        visit(name)

    enums = sorted((d for d in by_name.values() if d.is_enum), key=lambda d: d.py_name)
    enum_blocks = [render_enum(d) for d in enums]
    struct_blocks = []
    for d in ordered:
        if d.is_enum:
            continue
        stem = sorted(d.descriptions)[0]
        struct_blocks.append(
            render_struct(
                model, d.py_name, d.body, stem, clean_description(d.uniform_description),
                closed=d.body.get("additionalProperties", True) is False,
            )
        )
    actions = sorted({s.removesuffix("Request").removesuffix("Response") for s in schemas})
    message_blocks = []
    for action in actions:
        for kind in ("Request", "Response"):
            stem = action + kind
            doc = clean_description(schemas[stem].get("description")) or (
                f"{action} {kind.lower()}.")
            message_blocks.append(
                render_struct(model, stem, schemas[stem], stem, doc, action=action))

    out: list[str] = [_MODULE_DOC.format(n_files=len(schemas)), ""]
    imports = []
    if model.uses_datetime:
        imports.append("import datetime")
    imports.append("import enum")
    typing_names = ["Annotated", "ClassVar"] + (["Any"] if model.uses_any else []) + (
        ["TypeVar"] if model.uses_typevar else [])
    imports.append(f"from typing import {', '.join(sorted(typing_names))}")
    out += imports + ["", "import msgspec", "", ""]
    sections = []
    aliases = [f"{name} = {model.aliases[name]}" for name in sorted(model.aliases, key=_natural)]
    header = ["# Constrained types (the schemas' maxLength, minimum, minItems, ...)."]
    if model.uses_typevar:
        header.append('T = TypeVar("T")')
    sections.append(header + aliases)
    sections += enum_blocks + struct_blocks + message_blocks
    registry = ["ACTIONS: tuple[str, ...] = ("] + _pack(
        [json.dumps(a) for a in actions], "    ") + [")"]
    registry += ["", "REQUESTS: dict[str, type[msgspec.Struct]] = {"]
    registry += [f'    "{a}": {a}Request,' for a in actions] + ["}"]
    registry += ["", "RESPONSES: dict[str, type[msgspec.Struct]] = {"]
    registry += [f'    "{a}": {a}Response,' for a in actions] + ["}"]
    public = sorted([d.py_name for d in by_name.values()]
                    + [a + k for a in actions for k in ("Request", "Response")]
                    + ["ACTIONS", "REQUESTS", "RESPONSES"])
    registry += ["", "__all__ = ["] + _pack([json.dumps(n) for n in public], "    ") + ["]"]
    sections.append(registry)
    clash = set(model.aliases) & {d.py_name for d in by_name.values()}
    if clash:
        raise SchemaError(f"type alias names clash with classes: {sorted(clash)}")
    for i, block in enumerate(sections):
        if i:
            out += ["", ""]
        out += block
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.gen_messages", description=__doc__.split("\n")[0])
    parser.add_argument("--schemas", type=Path, help="folder of the 128 OCPP 2.0.1 JSON "
                        "schemas (default: the installed `ocpp` package's v201/schemas)")
    parser.add_argument("--output", type=Path, default=OUTPUT,
                        help="module to write or check (default: domain/messages.py)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the output file is not what would be generated")
    args = parser.parse_args(argv)
    try:
        text = generate(args.schemas)
    except SchemaError as exc:
        print(f"gen_messages: {exc}", file=sys.stderr)
        return 2
    output: Path = args.output
    if args.check:
        try:
            current = output.read_bytes().decode("utf-8")
        except FileNotFoundError:
            current = None
        if current != text:
            shown = output.relative_to(REPO) if output.is_relative_to(REPO) else output.name
            print(f"gen_messages: {shown} is not what the schemas generate; "
                  "run `python -m devtools.gen_messages`", file=sys.stderr)
            return 1
        return 0
    output.write_bytes(text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
