"""Hostile HTTP input against a live worker with a model: every request gets an answer
below 500, and the worker stays healthy.

The nine probes of issue 13 finding 5 (each a 500 before) are sent first, one by one, each
with the 4xx and the reason it must get. Then hypothesis writes requests byte for byte on
a socket (tests/services/raw_http.py, since urllib refuses most of them): every endpoint
and unknown ones, any method, ``as_of`` as numbers, NaN, infinities, huge and negative
values, ISO times with and without offsets, garbage and non-ASCII; ``/predictions``
pages with any ``after`` and ``limit``; ``Authorization``
headers of raw bytes; what-if bodies with extreme values, huge integers, deep nesting, not
JSON, not UTF-8, oversized, chunked or not. No response may be a 5xx (or missing), and
after all of them the worker is healthy and ready, scores a valid vector as before, and
its log holds no unhandled request error.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.definitions import FEATURE_NAMES
from tests.conftest import KAFKA_CHOICE
from tests.services.event_log import produce_log, simulated_log, wait_until_consumed
from tests.services.raw_http import RawRequest, send
from tests.services.worker_process import WorkerProcess, running_worker

MODEL = "profitability@1.0.0"
TOKEN = b"s3cret-token"
AUTH = (b"Authorization", b"Bearer " + TOKEN)
JSON = (b"Content-Type", b"application/json")
FUZZED_REQUESTS = 600


def _send(worker: WorkerProcess, request: RawRequest) -> tuple[int, dict[str, object]]:
    status, body = send(worker.web_port, request)
    try:
        document = json.loads(body)
    except ValueError:
        document = {"text": body[:200].decode(errors="replace")}
    return status, document if isinstance(document, dict) else {"json": document}


def _predict(body: bytes) -> RawRequest:
    return RawRequest(b"POST", b"/predict", [AUTH, JSON], body)


def _vector(value: object) -> bytes:
    return json.dumps({"features": dict.fromkeys(FEATURE_NAMES, value)}).encode()


def _messages(document: dict[str, object]) -> set[str]:
    detail = document["detail"]
    assert isinstance(detail, list), document
    return {error["msg"] for error in detail}


def _check_the_nine_probes(worker: WorkerProcess, client_id: str) -> None:
    """Each probe of the finding: its 4xx and its reason."""
    in_range = "must be between 1970-01-01T00:00:00Z and 2999-12-31T23:59:59Z"
    for raw in ("nan", "inf", "1e308", "1e12"):
        target = f"/clients/{client_id}/features?as_of={raw}".encode()
        status, answer = _send(worker, RawRequest(b"GET", target, [AUTH]))
        assert status == 422, (raw, status, answer)
        (reason,) = _messages(answer)
        expected = in_range if raw[0].isdigit() else "neither epoch seconds nor an ISO-8601"
        assert expected in reason, (raw, reason)
    # The last second of the range: features as of it are numbers JSON and datetime take.
    target = f"/clients/{client_id}/features?as_of=2999-12-31T23:59:59Z".encode()
    status, answer = _send(worker, RawRequest(b"GET", target, [AUTH]))
    assert (status, answer.get("as_of_epoch")) == (200, 32503679999.0), answer
    for value in (1e308, -1e308):
        status, answer = _send(worker, _predict(_vector(value)))
        assert (status, _messages(answer)) == (422, {"must be within ±1e+15"}), value
    status, answer = _send(worker, _predict(_vector(10**400)))
    assert (status, _messages(answer)) == (422, {"must be within ±1e+15"})
    # 50,000 deep takes 98 KiB: refused unread for its size; 30,000 deep for its depth.
    status, answer = _send(worker, _predict(b"[" * 50_000 + b"]" * 50_000))
    assert (status, _messages(answer)) == (413, {"97.7 KiB; at most 64.0 KiB allowed"})
    status, answer = _send(worker, _predict(b"[" * 30_000 + b"]" * 30_000))
    assert (status, _messages(answer)) == (422, {"nested 30000 deep; at most 8 allowed"})
    for header in (b"Bearer \xff\xfe", "Bearer s3cret-tökén".encode(), b"\xc3\x28"):
        status, answer = _send(worker, RawRequest(b"GET", b"/models", [(b"Authorization", header)]))
        assert status == 401, (header, status, answer)
        assert answer == {"detail": "malformed Authorization header: not ASCII"}, header
    # Larger than aiohttp reads at all, without a Content-Length: aiohttp's own 413.
    status, _ = _send(
        worker,
        RawRequest(b"POST", b"/predict", [AUTH, JSON], b" " * (2 * 1024 * 1024), chunked=True),
    )
    assert status == 413
    status, answer = _send(
        worker, RawRequest(b"POST", b"/predict", [AUTH, JSON], b" " * (100 * 1024), chunked=True)
    )
    assert (status, _messages(answer)) == (413, {"100.0 KiB; at most 64.0 KiB allowed"})


# -- what hypothesis draws ------------------------------------------------------------------

_EXTREMES = st.sampled_from(
    [
        1e308,
        -1e308,
        3.4028235e38,
        3.5e38,
        1e15,
        -1e15,
        1e15 + 1,
        1e16,
        5e-324,
        -0.0,
        0,
        2**63,
        -(2**63) - 1,
        10**400,
        -(10**400),
    ]
)
_VALUES = st.one_of(
    _EXTREMES,
    st.floats(),
    st.integers(),
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.integers(min_value=10**100, max_value=10**4000),
)
_FEATURES = st.builds(
    lambda complete, drawn: {**dict.fromkeys(FEATURE_NAMES, 1.0), **drawn} if complete else drawn,
    st.booleans(),
    st.dictionaries(st.sampled_from(FEATURE_NAMES) | st.text(max_size=8), _VALUES, max_size=8),
)
_CLIENT_IDS = st.one_of(st.none(), st.text(max_size=10), st.integers(), st.just("c-1"))
_VECTORS = st.builds(
    lambda features, client_id, extra: json.dumps(
        {"features": features, "client_id": client_id, **extra}
    ).encode(),
    _FEATURES,
    _CLIENT_IDS,
    st.dictionaries(st.sampled_from(["model", "x"]), st.integers(), max_size=1),
)
_BODIES = st.one_of(
    _VECTORS,
    _VECTORS.map(lambda raw: raw.decode().encode("utf-16")),
    # Not UTF-8: a key in Latin-1 (é as the lone byte 0xE9).
    st.builds(
        lambda raw, text: raw.replace(
            b'"client_id"',
            json.dumps("é" + text, ensure_ascii=False).encode("latin-1", "replace"),
            1,
        ),
        _VECTORS,
        st.text(max_size=4),
    ),
    st.integers(1, 60_000).map(lambda n: b'{"features": ' + b"[" * n + b"]" * n + b"}"),
    st.integers(1, 6_000).map(lambda n: b'{"features": {"revenue_30d": 9' + b"9" * n + b"}}"),
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"{}",
            b'{"features": NaN}',
            b"1e999",
            b"\xff\xfe{",
            b'{"features": {"revenue_30d": Infinity}}',
            b'"\\ud800"',
        ]
    ),
    st.sampled_from([64 * 1024 + 1, 500 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024]).map(
        lambda size: b'{"features": "' + b"x" * size + b'"}'
    ),
)
_CONTENT_TYPES = st.sampled_from(
    [
        JSON,
        (b"Content-Type", b"application/json; charset=bogus"),
        (b"Content-Type", b"text/plain"),
        (b"X-No-Type", b"1"),
    ]
)
_HEADER_BYTES = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_AUTHS = st.one_of(
    st.just([AUTH]),
    st.just([AUTH]),
    st.just([AUTH]),
    st.just([]),
    _HEADER_BYTES.map(lambda b: [(b"Authorization", b)]),
    _HEADER_BYTES.map(lambda b: [(b"Authorization", b"Bearer " + b)]),
    st.text(max_size=12).map(
        lambda t: [(b"Authorization", ("Bearer " + t).encode("utf-8", "surrogatepass"))]
    ),
    st.just([AUTH, (b"Authorization", b"Bearer other")]),
)


def _percent(raw: bytes) -> str:
    return "".join(f"%{byte:02X}" for byte in raw)


def _quoted(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


_PRINTABLE_ASCII = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=140)


def _segments(client_id: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(client_id),
        st.just(client_id),
        st.text(max_size=40).map(_quoted),
        st.binary(max_size=20).map(_percent),
        _PRINTABLE_ASCII,
        st.sampled_from(["nobody", "-x", "a" * 129, "..", "%2F", "%00", "c%0A1", "é", "c 1"]),
    )


_OFFSETS = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
)
_AS_OF = st.one_of(
    st.floats().map(repr),
    st.integers().map(str),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e308",
            "1e12",
            "-1e12",
            "NaN",
            "Infinity",
            "1_0",
            "",
            "0x1p3",
            "1e-400",
            "32503680000",
            "32503679999",
            "32503679999.5",
            "-0",
        ]
    ),
    st.datetimes(timezones=st.none() | st.builds(timezone, _OFFSETS)).map(datetime.isoformat),
    st.datetimes(min_value=datetime(2024, 1, 1), timezones=st.just(UTC)).map(
        lambda moment: moment.isoformat().replace("+00:00", "Z")
    ),
    st.text(max_size=30),
)
_QUERIES = st.one_of(
    _AS_OF.map(lambda raw: "?as_of=" + _quoted(raw)),
    st.binary(max_size=20).map(lambda raw: "?as_of=" + _percent(raw)),
    st.tuples(_AS_OF, _AS_OF).map(lambda two: f"?as_of={_quoted(two[0])}&as_of={_quoted(two[1])}"),
    st.text(max_size=20).map(lambda raw: "?" + _quoted(raw)),
    st.sampled_from(["", "?", "?as_of", "?as_of=", "?&&", "?as_of=%", "?as_of=%zz", "?%00=1"]),
)
_LIMITS = st.one_of(
    st.integers(-5, 1005).map(str),
    st.integers().map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),  # int() refuses over 4,300 digits
    st.floats().map(repr),
    st.sampled_from(["", "+5", " 5", "5_0", "0x10", "1e3", "١٢", "100", "1000", "1001", "0"]),
    st.text(max_size=8),
)


def _page_queries(client_id: str) -> st.SearchStrategy[str]:
    """``GET /predictions`` queries: ``after`` any segment, ``limit`` any number or text."""
    after = _segments(client_id).map(lambda s: "after=" + s)
    limit = _LIMITS.map(lambda raw: "limit=" + _quoted(raw))
    return st.one_of(
        st.tuples(after, limit).map(lambda two: f"?{two[0]}&{two[1]}"),
        after.map(lambda a: "?" + a),
        limit.map(lambda lim: "?" + lim),
        st.tuples(limit, limit).map(lambda two: f"?{two[0]}&{two[1]}"),
        _QUERIES,
    )


_METHODS = st.sampled_from(
    [b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS", b"TRACE", b"BREW", b"get"]
)


def _requests(client_id: str) -> st.SearchStrategy[RawRequest]:
    segment = _segments(client_id)
    paths = st.one_of(
        st.sampled_from(
            [
                "/health",
                "/ready",
                "/metrics",
                "/models",
                "/predict",
                "/",
                "/clients",
                "/predict/",
                "/metrics/x",
                "//",
                "/..",
                "/clients//features",
                "/predictions",
                "/predictions/",
            ]
        ),
        segment.map(lambda s: f"/clients/{s}/features"),
        segment.map(lambda s: f"/clients/{s}/prediction"),
        segment.map(lambda s: f"/clients/{s}"),
        segment.map(lambda s: f"/clients/{s}/features/more"),
        st.text(max_size=30).map(lambda t: "/" + _quoted(t)),
    )
    # Raw bytes in the request line (no space or line end, which would end it).
    raw_targets = st.binary(min_size=1, max_size=20).map(
        lambda b: b"/clients/" + bytes(c for c in b if c not in b" \r\n") + b"/features"
    )
    features = st.builds(
        lambda s, query, auth: RawRequest(b"GET", f"/clients/{s}/features{query}".encode(), auth),
        segment,
        _QUERIES,
        _AUTHS,
    )
    predicts = st.builds(
        lambda body, content_type, auth, chunked: RawRequest(
            b"POST", b"/predict", [*auth, content_type], body, chunked
        ),
        _BODIES,
        _CONTENT_TYPES,
        _AUTHS,
        st.booleans(),
    )
    anything = st.builds(
        lambda method, target, query, auth, body: RawRequest(
            method, target + query.encode(), auth, body
        ),
        _METHODS,
        paths.map(str.encode) | raw_targets,
        _QUERIES,
        _AUTHS,
        st.none() | _BODIES,
    )
    pages = st.builds(
        lambda query, auth: RawRequest(b"GET", f"/predictions{query}".encode(), auth),
        _page_queries(client_id),
        _AUTHS,
    )
    return st.one_of(features, features, predicts, predicts, pages, anything)


def _raised(log: str) -> list[str]:
    """The exception line of every traceback in a log: the first unindented line after it."""
    lines = log.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    return [next((line for line in lines[i + 1 :] if line and not line[0].isspace()), "")
            for i in starts]  # fmt: skip


def _summary(request: RawRequest) -> str:
    body = request.body or b""
    head = request.head(0)
    return f"{head[:400]!r} + {len(body)} body bytes {body[:120]!r}"


@pytest.mark.skipif(
    KAFKA_CHOICE == "apache",
    reason="the HTTP edge does not depend on the broker: fuzzed once, on Tansu (saves CI ~3 min)",
)
def test_no_hostile_request_gets_a_5xx(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str, control_registry: Path
) -> None:
    env = {
        **worker_env,
        "PROFITSTREAM_MODEL_REGISTRY": str(control_registry),
        "PROFITSTREAM_MODEL": MODEL,
        "PROFITSTREAM_API_TOKEN": TOKEN.decode(),
    }
    messages = simulated_log(3, 2, malformed=0.0, duplicate=0.0, late=0.0, seed=13)
    client_id = messages[0].key.decode()
    with running_worker(env) as worker:
        produce_log(kafka_bootstrap, unique, messages)
        wait_until_consumed(worker, len(messages), timeout_s=180)
        status, before = _send(worker, _predict(_vector(1.0)))
        assert status == 200, before

        _check_the_nine_probes(worker, client_id)
        status, page = _send(worker, RawRequest(b"GET", b"/predictions?limit=2", [AUTH]))
        assert status == 200, page
        shown = page["predictions"]
        assert isinstance(shown, list), page
        assert ([p["client_id"] for p in shown], page["next_after"]) == (
            ["client-00000", "client-00001"],
            "client-00001",
        )

        statuses: Counter[int] = Counter()
        started = time.monotonic()

        @settings(
            max_examples=FUZZED_REQUESTS,
            deadline=None,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @given(_requests(client_id))
        def no_5xx(request: RawRequest) -> None:
            status, answer = send(worker.web_port, request)
            statuses[status] += 1
            assert 0 < status < 500, (status, answer[:300], _summary(request))

        no_5xx()
        sent = sum(statuses.values())
        print(
            f"http fuzz: {sent} requests in {time.monotonic() - started:.0f}s, statuses "
            f"{dict(sorted(statuses.items()))}, 0 with status >= 500"
        )
        assert sent >= FUZZED_REQUESTS
        assert len([s for s in statuses if 400 <= s < 500]) >= 5  # the draw reached the checks
        assert statuses[200] > 0

        assert _send(worker, RawRequest(b"GET", b"/health"))[0] == 200
        assert _send(worker, RawRequest(b"GET", b"/ready"))[0] == 200
        assert _send(worker, _predict(_vector(1.0))) == (200, before)
        log_text = worker.log_path.read_text(errors="replace")
        # A request aiohttp's parser refuses (400) is one WARNING line; a traceback would be
        # an exception raised in a view.
        raised = _raised(log_text)
        assert not raised, set(raised)
        refused = log_text.count("malformed HTTP request refused with 400")
        print(f"http fuzz: {refused} requests refused by aiohttp's parser (400), one line each")
