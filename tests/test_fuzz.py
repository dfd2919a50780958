"""Property-based fuzzing (Hypothesis) of every reader and parser a user's file reaches: any
input gives a result or one ``UserError``, never another exception, and quickly."""

from __future__ import annotations

import json
import string
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnlaw import read_curve
from learnlaw.errors import UserError
from learnlaw.laws import load_law
from learnlaw.policy import load_config
from learnlaw.schedules import Schedule

# every example must finish well within a second: the readers are linear in their input
FUZZ = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _outcome(fn):
    """Run ``fn``; a user error is a fine outcome, anything else fails the property."""
    try:
        return fn()
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


def _in_file(suffix: str, data: bytes, fn):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"log{suffix}"
        path.write_bytes(data)
        return _outcome(lambda: fn(path))


@FUZZ
@given(
    data=st.binary(max_size=3000),
    suffix=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".tfevents.x"]),
)
def test_any_bytes_read_as_a_curve_or_one_user_error(data, suffix):
    curve = _in_file(suffix, data, read_curve)
    if curve is not None:
        assert len(curve.steps) == len(curve.losses) > 0 and np.all(curve.losses > 0)


CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10, 10**6).map(str),
    st.sampled_from(
        ["", " ", "nan", "NaN", "inf", "-inf", "None", "null", "x", '"1,5"', "1e999", "0", "-0"]
    ),
    st.text(alphabet=string.printable, max_size=6),
)
HEADER = st.lists(
    st.sampled_from(
        [
            "step",
            "lr",
            "loss",
            "val/loss",
            "train/loss",
            "_step",
            "learning_rate",
            "acc",
            "run - loss",
            "loss__MIN",
            "",
        ]
    ),
    min_size=1,
    max_size=5,
)


@FUZZ
@given(
    header=HEADER,
    rows=st.lists(st.lists(CELL, max_size=6), max_size=30),
    sep=st.sampled_from([",", "\t"]),
)
def test_structured_csv_logs_read_or_give_one_user_error(header, rows, sep):
    text = sep.join(header) + "\n" + "\n".join(sep.join(r) for r in rows)
    curve = _in_file(".csv", text.encode(), read_curve)
    if curve is not None:
        assert np.all(np.diff(curve.steps) > 0)  # cleaned: sorted, one value per step


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
JSON_ROW = st.dictionaries(
    st.sampled_from(["step", "lr", "loss", "train", "eval/loss", "_step", "x"]),
    JSON_VALUE,
    max_size=4,
)


@FUZZ
@given(rows=st.lists(JSON_ROW | JSON_VALUE, max_size=20))
def test_json_lines_logs_read_or_give_one_user_error(rows):
    text = "\n".join(json.dumps(r) for r in rows)
    _in_file(".jsonl", text.encode(), read_curve)


SPEC_KEY = st.sampled_from(
    [
        "peak",
        "total",
        "warmup",
        "final",
        "decay_frac",
        "decay_start",
        "shape",
        "milestones",
        "values",
        "gamma",
        "cycle",
        "rewarmup",
        "path",
        "x",
    ]
)
SPEC_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-5, 10**7).map(str),
    st.sampled_from(["linear", "cosine", "geometric", "1-sqrt", "1/2/3", "", "a=b", "1e-3"]),
)


@FUZZ
@given(
    kind=st.sampled_from(
        ["constant", "cosine", "linear", "wsd", "multistep", "cyclic", "csv", "tri", ""]
    ),
    items=st.lists(st.tuples(SPEC_KEY, SPEC_VALUE), max_size=6),
    raw=st.text(max_size=40),
)
def test_schedule_specs_parse_or_give_one_user_error(kind, items, raw):
    spec = f"{kind}:" + ",".join(f"{k}={v}" for k, v in items)
    for text in (spec, raw):
        schedule = _outcome(lambda text=text: Schedule.parse(text))
        if schedule is not None and schedule.total is not None and schedule.total < 10**6:
            lrs = _outcome(lambda s=schedule: s.values(s.total + 1))
            assert lrs is None or np.all(np.isfinite(lrs))


TOML_VALUE = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda x: repr(x).replace("nan", "nan").replace("inf", "inf")
    ),
    st.sampled_from(
        ['"eg"', '"pgd"', '"auto"', "true", "false", '"row"', '"cuda"', "[1, 2]", '"x"']
    ),
)
TOML_KEY = st.sampled_from(
    [
        "train.steps",
        "train.lr",
        "train.dtype",
        "train.device",
        "outer.epochs",
        "outer.method",
        "outer.lr",
        "outer.segment",
        "outer.normalize",
        "perceptron.dim",
        "perceptron.n_train",
        "perceptron.label_noise",
        "seed",
        "task",
        "bogus.key",
    ]
)


@settings(FUZZ, max_examples=80)
@given(items=st.lists(st.tuples(TOML_KEY, TOML_VALUE), max_size=5), raw=st.text(max_size=60))
def test_config_files_load_or_give_one_user_error(items, raw):
    sections: dict[str, list[str]] = {}
    for key, value in items:
        section, _, name = key.rpartition(".")
        sections.setdefault(section, []).append(f"{name} = {value}")
    text = (
        "\n".join(sections.get("", []))
        + "\n"
        + "\n".join(f"[{s}]\n" + "\n".join(lines) for s, lines in sections.items() if s)
    )
    for content in (text, raw):
        _in_file(".toml", content.encode(), load_config)


def _valid_fit() -> dict:
    from learnlaw import MomentumLaw

    law = MomentumLaw(lam=0.999)
    law.lam_, law.params_ = 0.999, {"L0": 2.6, "A": 0.43, "alpha": 0.55, "C": 0.41}
    law.bootstrap_params_, law.fit_info_ = [], {}
    return law.to_json()


VALID_FIT = _valid_fit()


@FUZZ
@given(
    path=st.lists(
        st.sampled_from(
            [
                "params",
                "hyperparameters",
                "learned",
                "L0",
                "alpha",
                "lam",
                "law",
                "format_version",
                "fit",
                "bootstrap_params",
            ]
        ),
        min_size=1,
        max_size=2,
    ),
    value=JSON_VALUE,
    whole=JSON_VALUE,
)
def test_fit_files_load_or_give_one_user_error(path, value, whole):
    obj = json.loads(json.dumps(VALID_FIT))
    target = obj
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else {}
    if isinstance(target, dict):
        target[path[-1]] = value
    for document in (obj, whole):
        law = _in_file(".json", json.dumps(document).encode(), load_law)
        if law is not None:
            prediction = law.predict(Schedule.constant(1e-3, total=100), [10, 100])
            assert prediction.shape == (2,)


def _framed(payload: bytes) -> bytes:
    """One TFRecord with correct length and data CRCs around ``payload``."""
    import struct

    from learnlaw.io.tensorboard import _masked_crc

    header = struct.pack("<Q", len(payload))
    return (
        header
        + struct.pack("<I", _masked_crc(header))
        + payload
        + struct.pack("<I", _masked_crc(payload))
    )


def _field(number: int, wire: int, value: bytes | int) -> bytes:
    """A protobuf field: a key, then a varint or a length-prefixed byte string."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    key = varint(number << 3 | wire)
    return key + (varint(value) if wire == 0 else varint(len(value)) + value)


FIELD = st.tuples(st.integers(1, 6), st.sampled_from([0, 2])).flatmap(
    lambda nw: (st.integers(0, 2**64 - 1) if nw[1] == 0 else st.binary(max_size=40)).map(
        lambda value: _field(nw[0], nw[1], value)
    )
)


@FUZZ
@given(
    records=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.lists(FIELD, max_size=6).map(b"".join),
            # an event whose summary holds fields of any wire type: the CRCs pass, the
            # structure does not
            st.lists(FIELD, max_size=4).map(lambda fs: _field(5, 2, b"".join(fs))),
        ),
        max_size=5,
    )
)
def test_tensorboard_records_with_valid_checksums_but_any_content(records):
    # random bytes never pass the CRC check; these do, so the parser behind it is reached
    _in_file(".tfevents.x", b"".join(_framed(r) for r in records), read_curve)
