"""Input events drawn from the published JSON Schema: valid ones, and bad ones of every kind.

Each bad kind comes with the DLQ reason the contract documents for it (docs/events.md,
docs/topics.md). Every generator takes a ``random.Random``: seeded in the live fuzz test,
driven by hypothesis (``st.randoms()``) in the property tests, so both draw from the same
code.
"""

from __future__ import annotations

import calendar
import json
import string
from functools import cache
from pathlib import Path
from random import Random
from typing import Any

from features.events import EventStream, RejectReason

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"
TOPIC_OF: dict[EventStream, str] = {"activity": "client-activity", "billing": "billing"}
OTHER: dict[EventStream, EventStream] = {"activity": "billing", "billing": "activity"}
ENVELOPE = ("schema_version", "event_id", "client_id", "event_time", "type", "payload")

Json = Any  # a decoded JSON value
Message = tuple[bytes | None, bytes | None]  # key, value as produced

# The kinds of bad message, each with the reason its dead letter must carry.
KIND_REASONS: dict[str, RejectReason] = {
    "wrong_type": "invalid",  # a value of another JSON type, for any field
    "integral_float": "invalid",  # 12.0 where the schema says integer
    "missing_field": "invalid",
    "extra_field": "invalid",
    "bad_identifier": "invalid",
    "bad_event_time": "invalid",  # naive, epoch, lower-case, no seconds, Feb 30, ...
    "bad_schema_version": "invalid",
    "out_of_range": "invalid",  # negative money, score 6, 1e308, 10**30, ...
    "non_finite": "invalid",  # NaN, Infinity, 1e400 in a number field
    "unknown_type": "invalid",
    "other_topic_type": "invalid",  # a billing event on client-activity and back
    "duplicate_member": "invalid",  # {"schema_version": 1, ..., "schema_version": true}
    "not_utf8": "invalid",
    "lone_surrogate": "invalid",  # "\ud800" is no character
    "not_object": "invalid",
    "truncated": "invalid",
    "empty": "invalid",  # b"" or a null value (tombstone)
    "deep_nesting": "invalid",  # nested 65 to 7,000 deep, under the size limit
    "oversized": "oversized",
    "null_key": "key_mismatch",
    "mismatched_key": "key_mismatch",
    "future": "future",
}


@cache
def published_schema(stream: EventStream) -> dict[str, Any]:
    """The committed JSON Schema of ``stream``'s topic (docs/schemas/)."""
    schema: dict[str, Any] = json.loads(
        (SCHEMA_DIR / f"{TOPIC_OF[stream]}.schema.json").read_text()
    )
    return schema


def _inline(schema: Json, definitions: dict[str, Any]) -> Json:
    """``schema`` with every ``$ref`` replaced by its definition (these schemas never recurse)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


@cache
def branches(stream: EventStream) -> dict[str, dict[str, Any]]:
    """Event type -> the schema of its events, references inlined."""
    schema = published_schema(stream)
    inlined = [_inline(branch, schema["$defs"]) for branch in schema["oneOf"]]
    return {branch["properties"]["type"]["const"]: branch for branch in inlined}


def field_schema(stream: EventStream, event: dict[str, Any], path: tuple[str, ...]) -> Json:
    """The schema of the field at ``path`` (("client_id",) or ("payload", "amount"))."""
    schema: dict[str, Any] = branches(stream)[event["type"]]
    for name in path:
        schema = schema["properties"][name]
    return schema


# -- valid values ------------------------------------------------------------------------

IDENTIFIER_FIRST = string.ascii_letters + string.digits
IDENTIFIER_REST = IDENTIFIER_FIRST + "._:@/-"


def identifier(rng: Random) -> str:
    """An identifier the contract accepts (1 to 128 characters)."""
    length = rng.choice([1, 2, 8, 12, 40, 127, 128]) if rng.random() < 0.3 else rng.randint(1, 16)
    rest = "".join(rng.choice(IDENTIFIER_REST) for _ in range(length - 1))
    return rng.choice(IDENTIFIER_FIRST) + rest


def text(rng: Random, max_length: int) -> str:
    """Any Unicode text (no surrogates) of at most ``max_length`` characters."""
    alphabet = [*'ab \t\n"\\/\x00\x1fé€😀', "\u2028", "\ufeff"]
    length = rng.choice([0, max_length, rng.randint(0, min(max_length, 20))])
    return "".join(
        rng.choice(alphabet) if rng.random() < 0.5 else chr(rng.choice(_CODE_POINTS))
        for _ in range(length)
    )


_CODE_POINTS = [*range(0x20, 0x7F), *range(0xA0, 0x800), *range(0xE000, 0xE100), 0x1F600]


def event_time(rng: Random, first_year: int = 1970, last_year: int = 2029) -> str:
    """An RFC 3339 time the contract accepts: seconds, an offset, maybe a fraction."""
    year = rng.randint(first_year, last_year)
    month = rng.randint(1, 12)
    day = rng.randint(1, calendar.monthrange(year, month)[1])
    clock = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    fraction = "" if rng.random() < 0.6 else "." + "".join(
        rng.choice(string.digits) for _ in range(rng.randint(1, 9))
    )  # fmt: skip
    if rng.random() < 0.5:
        offset = "Z"
    else:
        offset = f"{rng.choice('+-')}{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    return f"{year:04d}-{month:02d}-{day:02d}T{clock}{fraction}{offset}"


def _number(schema: dict[str, Any], rng: Random) -> float | int:
    exclusive = "exclusiveMinimum" in schema
    low = float(schema.get("exclusiveMinimum", schema.get("minimum", -1e6)))
    high = float(schema.get("maximum", 1e6))
    rounded = round(rng.uniform(low, high), 2)
    edges: list[float | int] = [high, int(high), rounded if rounded > low else high]
    edges += [5e-324, 0.5] if exclusive else [low, int(low)]
    if rng.random() < 0.4:
        return rng.choice(edges)
    value = rng.uniform(low, high)
    if value == low and exclusive:
        return high
    return int(value) if rng.random() < 0.3 and int(value) > low else value


def valid_value(schema: dict[str, Any], rng: Random) -> Json:
    """A value ``schema`` accepts."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return event_time(rng)
        if "pattern" in schema:
            return identifier(rng)
        return text(rng, schema.get("maxLength", 40))
    if kind == "integer":
        return rng.randint(int(schema.get("minimum", -1000)), int(schema.get("maximum", 1000)))
    if kind == "number":
        return _number(schema, rng)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        count = rng.randint(0, schema.get("maxItems", 4))
        return [valid_value(schema["items"], rng) for _ in range(count)]
    if kind == "object":
        return valid_object(schema, rng)
    raise ValueError(f"no values for the schema {schema}")


def valid_object(schema: dict[str, Any], rng: Random) -> dict[str, Any]:
    """An object with every required property of ``schema`` and some optional ones."""
    required = set(schema.get("required", ()))
    return {
        name: valid_value(prop, rng)
        for name, prop in schema["properties"].items()
        if name in required or rng.random() < 0.5
    }


def valid_event(stream: EventStream, rng: Random, event_type: str | None = None) -> dict[str, Any]:
    """An event of ``stream`` that the published schema accepts (times up to 2029)."""
    chosen = event_type or rng.choice(sorted(branches(stream)))
    event = valid_object(branches(stream)[chosen], rng)
    return {name: event[name] for name in ENVELOPE}  # envelope first, as producers write it


def encode(document: Json, rng: Random) -> bytes:
    """``document`` as UTF-8 JSON, formatted one of several equivalent ways."""
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,\n", " :\t")])
    raw = json.dumps(document, ensure_ascii=rng.random() < 0.5, separators=separators)
    if rng.random() < 0.2:
        raw = f" \n{raw}\r\n"
    return raw.encode()


# -- wrong values --------------------------------------------------------------------------


def wrong_type_values(schema: dict[str, Any], valid: Json) -> list[Json]:
    """Values of another JSON type than ``schema`` says, the confusable ones first."""
    kind = schema.get("type")
    others: list[Json] = [None, [], {}, [valid], {"value": valid}]
    if kind == "integer":
        number = valid if type(valid) is int else 3
        return [True, False, str(number), float(number), number + 0.5, *others]
    if kind == "number":
        return [True, False, str(valid), "NaN", "1e3", *others]
    if kind == "boolean":
        return ["yes", "no", "true", "false", 1, 0, 1.0, *others]
    if schema.get("format") == "date-time":
        return [1714567890, 1714567890.5, 0, "1714567890", True, *others]
    if kind == "string":
        return [5, 1.5, -1, True, False, *others]
    if kind == "array":
        return ["helpdesk", "[]", 3, True, None, {}, {"0": "helpdesk"}, [5], [True], [None]]
    if kind == "object":
        return ["not an object", "{}", 5, True, None, [], [valid]]
    raise ValueError(f"no wrong types for the schema {schema}")


def bad_event_times(valid: str) -> list[Json]:
    """Times the contract refuses, most of them one small step from ``valid``."""
    date, clock = valid[:10], valid[11:19]
    return [
        f"{date}T{clock}",  # no offset
        f"{date} {clock}Z",
        f"{date}t{clock}z",
        f"{date}T{clock[:5]}Z",  # no seconds
        f"{date}T{clock}+0100",
        f"{date}T{clock}+01",
        f"{date}T{clock} Z",
        f"{date}T{clock},5Z",
        f"{date}T{clock}.Z",
        f"{date}T{clock}Z\n",
        f" {date}T{clock}Z",
        date,
        f"{date}T24:00:00Z",
        f"{date}T{clock[:6]}60Z",  # a leap second
        f"{date}T{clock}+24:00",
        f"{date}T{clock}+01:60",
        "2025-02-29T10:00:00Z",
        "2024-04-31T10:00:00Z",
        "2024-13-01T10:00:00Z",
        "1969-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "+02024-03-01T10:00:00Z",
        "٢٠٢٤-03-01T10:00:00Z",  # other scripts' digits
        "1714567890",
        "",
        "now",
    ]


BAD_IDENTIFIERS = ["", " a", "a b", "a\n", "\na", "-a", ".a", "a" * 129, "ä", "a\u0000", "a#"]
UNKNOWN_TYPES = ["teleport_requested", "", "TICKET_OPENED", "ticket_opened ", "Ticket_Opened"]


def _paths(stream: EventStream, event: dict[str, Any]) -> list[tuple[str, ...]]:
    """Every field of ``event`` (envelope, then payload fields)."""
    payload = event.get("payload")
    paths: list[tuple[str, ...]] = [(name,) for name in ENVELOPE if name in event]
    if isinstance(payload, dict):
        paths += [("payload", name) for name in payload]
    return paths


def _numeric_paths(stream: EventStream, event: dict[str, Any]) -> list[tuple[str, ...]]:
    schema = branches(stream)[event["type"]]["properties"]["payload"]["properties"]
    return [("payload", name) for name, prop in schema.items()
            if prop.get("type") in ("number", "integer")]  # fmt: skip


def _set(event: dict[str, Any], path: tuple[str, ...], value: Json) -> None:
    target = event
    for name in path[:-1]:
        target = target.setdefault(name, {})
    target[path[-1]] = value


def _out_of_range(schema: dict[str, Any], rng: Random) -> Json:
    high = schema["maximum"]
    if schema.get("type") == "integer":
        low = schema["minimum"]
        return rng.choice([low - 1, low - 1000, -(10**30), high + 1, high * 10, 10**30])
    if "exclusiveMinimum" in schema:
        below = [schema["exclusiveMinimum"], schema["exclusiveMinimum"] - 1e-9]
    else:
        below = [schema["minimum"] - 0.5, schema["minimum"] - 1e-9]
    return rng.choice([*below, -1e9, high + 1, high * 10, 1e308, 10**30])


PLACEHOLDER = "__RAW__"


def _insert_raw(raw: bytes, token: bytes) -> bytes:
    """``raw`` with the JSON text ``token`` where the string ``PLACEHOLDER`` was: for what
    ``json.dumps`` cannot write (NaN, 1e400, a lone surrogate, deep nesting)."""
    return raw.replace(json.dumps(PLACEHOLDER).encode(), token, 1)


def _placeholder_target(stream: EventStream, event: dict[str, Any], rng: Random) -> tuple[str, ...]:
    numeric = _numeric_paths(stream, event)
    return rng.choice(numeric) if numeric else ("schema_version",)


def _string_target(stream: EventStream, event: dict[str, Any], rng: Random) -> tuple[str, ...]:
    texts = [p for p in _paths(stream, event) if len(p) == 2
             and field_schema(stream, event, p).get("maxLength")]  # fmt: skip
    return rng.choice(texts or [("event_id",)])


def _mutated(kind: str, stream: EventStream, event: dict[str, Any], rng: Random) -> Message:
    """A bad message of ``kind`` made from the valid ``event`` (its own key)."""
    key: bytes | None = str(event["client_id"]).encode()
    paths = _paths(stream, event)
    if kind == "wrong_type":
        path = rng.choice(paths)
        schema, valid = field_schema(stream, event, path), _get(event, path)
        _set(event, path, rng.choice(wrong_type_values(schema, valid)))
    elif kind == "integral_float":  # schema_version at least is an integer
        integers = [p for p in paths if field_schema(stream, event, p).get("type") == "integer"]
        path = rng.choice(integers)
        _set(event, path, float(_get(event, path)))
    elif kind == "missing_field":
        path = rng.choice([p for p in paths if p[-1] in _required(stream, event, p)])
        del _parent(event, path)[path[-1]]
    elif kind == "extra_field":
        where = event if rng.random() < 0.5 else event["payload"]
        name = rng.choice(["surprise", "Schema_version", "type ", "", "payload_", "id"])
        where[name] = rng.choice([1, "x", None, True, {}, []])
    elif kind == "bad_identifier":
        ids = [p for p in paths if "pattern" in field_schema(stream, event, p)
               and field_schema(stream, event, p).get("format") != "date-time"]  # fmt: skip
        _set(event, rng.choice(ids), rng.choice(BAD_IDENTIFIERS))
    elif kind == "bad_event_time":
        event["event_time"] = rng.choice(bad_event_times(str(event["event_time"])))
    elif kind == "bad_schema_version":
        event["schema_version"] = rng.choice([0, 2, -1, 10**20])
    elif kind == "out_of_range":
        path = _placeholder_target(stream, event, rng)
        event_schema = field_schema(stream, event, path)
        value = 2 if path == ("schema_version",) else _out_of_range(event_schema, rng)
        _set(event, path, value)
    elif kind == "unknown_type":
        event["type"] = rng.choice(UNKNOWN_TYPES)
    elif kind == "other_topic_type":
        other = valid_event(OTHER[stream], rng)
        event.update(type=other["type"], payload=other["payload"])
    elif kind == "duplicate_member":
        return key, _duplicate_member(stream, event, rng)
    elif kind == "non_finite":
        _set(event, _placeholder_target(stream, event, rng), PLACEHOLDER)
        token = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
        return key, _insert_raw(encode(event, rng), token)
    elif kind == "lone_surrogate":
        path = _string_target(stream, event, rng)
        _set(event, path, PLACEHOLDER)
        token = rng.choice([b'"\\ud800"', b'"a\\udfffb"', b'"\\ud83d"'])
        return key, _insert_raw(encode(event, rng), token)
    elif kind == "deep_nesting":
        depth = rng.choice([65, 100, rng.randint(65, 7000)])
        _set(event, rng.choice(paths), PLACEHOLDER)
        return key, _insert_raw(encode(event, rng), b"[" * depth + b"]" * depth)
    else:
        return _whole_message(kind, stream, event, rng)
    return key, encode(event, rng)


def _get(event: dict[str, Any], path: tuple[str, ...]) -> Json:
    value: Json = event
    for name in path:
        value = value[name]
    return value


def _parent(event: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    parent: dict[str, Any] = _get(event, path[:-1]) if len(path) > 1 else event
    return parent


def _required(stream: EventStream, event: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    schema = branches(stream)[event["type"]]
    if len(path) == 2:
        schema = schema["properties"]["payload"]
    required: list[str] = schema["required"]
    return required


def _duplicate_member(stream: EventStream, event: dict[str, Any], rng: Random) -> bytes:
    """The event with one of its members repeated at the end with a wrong value: JSON
    parsers keep the last one."""
    name = rng.choice([n for n in ENVELOPE if n in event])
    schema = field_schema(stream, event, (name,))
    repeat = rng.choice(wrong_type_values(schema, event[name]))
    raw = encode(event, rng).rstrip()
    return raw[:-1] + b"," + json.dumps(name).encode() + b":" + json.dumps(repeat).encode() + b"}"


def _whole_message(kind: str, stream: EventStream, event: dict[str, Any], rng: Random) -> Message:
    """Kinds that change the message as a whole (bytes, key or size)."""
    key: bytes | None = str(event["client_id"]).encode()
    raw = encode(event, rng)
    if kind == "not_utf8":
        return key, _not_utf8(raw, event, rng)
    if kind == "not_object":
        document = rng.choice([[event], [], str(event["event_id"]), 42, 1.5, None, True, False])
        return key, encode(document, rng)
    if kind == "truncated":
        return key, raw[: rng.randint(0, len(raw.rstrip()) - 1)]
    if kind == "empty":
        return key, rng.choice([b"", None, b" ", b"\n"])
    if kind == "oversized":
        event["padding"] = "x" * rng.randint(16 * 1024, 24 * 1024)
        return key, encode(event, rng)
    if kind == "null_key":
        return None, raw
    if kind == "mismatched_key":
        return _other_key(str(event["client_id"]), rng), raw
    if kind == "future":
        event["event_time"] = event_time(rng, 2900, 2999)
        return key, encode(event, rng)
    raise ValueError(f"unknown kind {kind}")


def _not_utf8(raw: bytes, event: dict[str, Any], rng: Random) -> bytes:
    way = rng.randrange(4)
    if way == 0:
        return raw.decode().encode(rng.choice(["utf-16", "utf-16-le", "utf-32"]))
    if way == 1:
        return b"\xef\xbb\xbf" + raw  # a byte-order mark: UTF-8, but not JSON
    # Inside the event_id string: a stray byte, an overlong '/', an encoded surrogate.
    bad = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xe9"])
    marker = json.dumps(str(event["event_id"])).encode()
    return raw.replace(marker, marker[:1] + bad + marker[1:], 1)


def _other_key(client_id: str, rng: Random) -> bytes:
    """A key that is not ``client_id``'s."""
    candidates = [client_id.swapcase(), client_id + "\n", f" {client_id}", "", client_id[:-1],
                  client_id + "x", "someone-else"]  # fmt: skip
    key = rng.choice(candidates)
    return (key if key != client_id else client_id + "x").encode()


def bad_message(kind: str, stream: EventStream, event: dict[str, Any], rng: Random) -> Message:
    """Key and value of a message of ``kind`` made from a copy of the valid ``event``
    (``kind`` in ``KIND_REASONS``; a null value is ``None``)."""
    if kind not in KIND_REASONS:
        raise ValueError(f"unknown kind {kind}")
    copied: dict[str, Any] = json.loads(json.dumps(event))
    return _mutated(kind, stream, copied, rng)
