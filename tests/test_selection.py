"""Data selection: the scorer fit, the choice of sequences, determinism, resuming a killed
scoring pass, 2-process scoring, the built-in mixture's construction, and bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import on_processes, run_cli
from learnlaw.errors import UserError
from learnlaw.selection import DataScorer, choose, load_select_config, select
from learnlaw.selection.scorer import spearman

TINY = {
    "data.vocab_size": 300,
    "data.seq_len": 16,
    "data.tokenizer_docs": 200,
    "proxy.n_sequences": 24,
    "proxy.steps": 4,
    "proxy.epochs": 1,
    "proxy.d_model": 8,
    "proxy.n_heads": 2,
    "proxy.d_ff": 16,
    "scorer.epochs": 30,
    "scorer.hidden": 8,
    "select.chunk_size": 16,
    "select.fraction": 0.3,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small path corpus (three files: two of Wikipedia text, one of scrambled words) and a
    desired set of other Wikipedia paragraphs."""
    from learnlaw.tasks.text import load_corpus

    root = tmp_path_factory.mktemp("corpus")
    docs = load_corpus("wiki")[:140]
    (root / "pool").mkdir()
    (root / "pool" / "a.txt").write_text("\n\n\n".join(docs[:40]), encoding="utf-8")
    lines = [json.dumps({"text": d}) for d in docs[40:80]]
    (root / "pool" / "b.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rng = np.random.default_rng(0)
    words = " ".join(docs[80:100]).split()
    noise = [" ".join(rng.permutation(words)[:80]) for _ in range(20)]
    (root / "pool" / "noise.txt").write_text("\n\n\n".join(noise), encoding="utf-8")
    (root / "desired.txt").write_text("\n\n\n".join(docs[100:140]), encoding="utf-8")
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LEARNLAW_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Every run here uses one torch thread, like the 2-process run's workers: float sums may
    differ in the last bits between thread counts, and the tests compare runs exactly."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(corpus, **extra):
    return load_select_config(
        None,
        {
            **TINY,
            "data.corpus": str(corpus / "pool"),
            "data.desired": str(corpus / "desired.txt"),
            **extra,
        },
    )


@pytest.fixture(scope="module")
def reference_run(corpus, tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("ref") / "sel"
    os.environ.setdefault("LEARNLAW_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    return select(tiny_config(corpus), out, quiet=True)


# ---- the pieces ------------------------------------------------------------------------------
def test_spearman_matches_ranks_computed_by_hand():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    assert spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1], rel=1e-12)


def test_scorer_fits_a_nonlinear_score_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6))
    y = np.tanh(x[:, 0]) + 0.5 * x[:, 1] ** 2 - x[:, 2] + 0.05 * rng.normal(size=400)
    scorer = DataScorer(hidden=32, epochs=300, seed=0).fit(x, y)
    assert scorer.heldout_spearman_ > 0.9
    linear = np.linalg.lstsq(np.c_[x, np.ones(400)], y, rcond=None)[0]
    # the MLP sees the square term a linear fit cannot
    assert scorer.train_spearman_ > spearman(np.c_[x, np.ones(400)] @ linear, y)
    scorer.save(tmp_path / "s.npz", tokenizer="t", proxy_model="p")
    loaded, meta = DataScorer.load(tmp_path / "s.npz")
    assert meta["tokenizer"] == "t"
    np.testing.assert_array_equal(loaded.predict(x), scorer.predict(x))


def test_choose_top_and_gumbel():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=1000)
    top = choose(scores, 0.1)
    assert len(top) == 100 and set(top) == set(np.argsort(-scores)[:100])
    g1, g2 = choose(scores, 0.1, "gumbel", 1.0, seed=3), choose(scores, 0.1, "gumbel", 1.0, seed=3)
    np.testing.assert_array_equal(g1, g2)
    assert not np.array_equal(g1, choose(scores, 0.1, "gumbel", 1.0, seed=4))
    # a vanishing temperature is top-k; sampling favours high scores
    np.testing.assert_array_equal(choose(scores, 0.1, "gumbel", 1e-9, seed=3), top)
    assert scores[g1].mean() > scores.mean() + 0.5
    assert len(choose(scores, 1.0)) == 1000
    for args, fragment in (
        ((0,), "fraction = 0: must be in"),
        ((2.0,), "fraction = 2.0: must be in"),
        ((0.1, "gumble"), "expected top or gumbel"),
        ((0.1, "gumbel", 0), "temperature = 0: must be positive"),
    ):
        with pytest.raises(UserError, match=fragment):
            choose(scores, *args)
    with pytest.raises(UserError, match="1-D array of finite numbers"):
        choose(scores[:, None], 0.1)


def test_mixture_components_are_disjoint_and_recorded(monkeypatch):
    from learnlaw.selection import mixture as mx
    from learnlaw.tasks.text import load_corpus

    wiki = load_corpus("wiki")[:300]
    other = [" ".join(reversed(d.split())) for d in load_corpus("wiki")[300:500]]
    monkeypatch.setattr(mx, "load_corpus", lambda name: wiki if name == "wiki" else other)
    config = mx.MixtureConfig(
        wiki=30, sotu=20, wiki_edited=10, sotu_edited=10, n_desired=8, n_test=8
    )
    m = mx.Mixture(config, 0, vocab_size=300, seq_len=16)
    comp = m.composition()
    assert {k: v["sequences"] for k, v in comp["components"].items()} == {
        "wiki": 30,
        "sotu": 20,
        "wiki+edits": 10,
        "sotu+edits": 10,
    }
    rows = [tuple(r) for r in np.concatenate([m.ids, m.desired, m.test])]
    assert len(set(rows)) == len(rows)  # no sequence is in two places
    assert m.ids.shape == (70, 16) and m.desired.shape == (8, 16)
    again = mx.Mixture(config, 0, vocab_size=300, seq_len=16)
    np.testing.assert_array_equal(again.ids, m.ids)


# ---- the pipeline ----------------------------------------------------------------------------
def test_selection_is_deterministic_for_a_seed(corpus, reference_run, tmp_path):
    again = select(tiny_config(corpus), tmp_path / "again", quiet=True)
    np.testing.assert_array_equal(again.scores, reference_run.scores)
    np.testing.assert_array_equal(again.selected, reference_run.selected)
    a = (reference_run.out / "selected.jsonl").read_text()
    assert a == (tmp_path / "again" / "selected.jsonl").read_text()
    lines = [json.loads(x) for x in a.splitlines()]
    assert len(lines) == reference_run.metrics["selected"] == round(0.3 * len(reference_run.scores))
    assert {"index", "source", "score", "text", "ids"} <= set(lines[0])
    scores = np.load(reference_run.out / "scores.npy")
    assert min(x["score"] for x in lines) >= np.sort(scores)[-len(lines)] - 1e-6
    assert set(reference_run.metrics["per_source"]) == {"a.txt", "b.jsonl", "noise.txt"}
    assert not (reference_run.out / "work").exists()
    other = select(tiny_config(corpus, seed=1), tmp_path / "seed1", quiet=True)
    assert not np.array_equal(other.scores, reference_run.scores)


def test_a_killed_scoring_pass_resumes_to_the_same_selection(
    corpus, reference_run, tmp_path, monkeypatch
):
    from learnlaw.selection.scorer import Scorer

    real = Scorer.score
    calls = {"n": 0}

    def dying(self, ids):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as a kill in the middle of the pass
        return real(self, ids)

    monkeypatch.setattr(Scorer, "score", dying)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        select(tiny_config(corpus), out, quiet=True)
    for name in ("metrics.json", "scores.npy", "selected.jsonl"):
        assert not (out / name).exists()  # nothing looks finished
    assert len(list((out / "work" / "blocks").glob("*.npz"))) == 2
    monkeypatch.setattr(Scorer, "score", real)
    with pytest.raises(UserError, match="not empty"):
        select(tiny_config(corpus), out, quiet=True)
    resumed = select(tiny_config(corpus), out, resume=True, quiet=True)
    np.testing.assert_array_equal(resumed.scores, reference_run.scores)
    np.testing.assert_array_equal(resumed.selected, reference_run.selected)


def _select_on_rank(rank, config_json, out):
    from learnlaw.selection.config import _config_from

    result = select(_config_from(json.loads(config_json), "test"), out, quiet=True)
    return {"returned": result is not None}


def test_two_process_scoring_equals_one_process(corpus, reference_run, tmp_path):
    config = tiny_config(corpus).to_json()
    out = tmp_path / "dist"
    ranks = on_processes(
        tmp_path / "spawn",
        _select_on_rank,
        timeout_s=120,
        config_json=json.dumps(config),
        out=str(out),
    )
    assert ranks == [{"returned": True}, {"returned": False}]  # rank 0 alone returns the result
    np.testing.assert_array_equal(np.load(out / "scores.npy"), reference_run.scores)
    assert (out / "selected.jsonl").read_text() == (
        reference_run.out / "selected.jsonl"
    ).read_text()


def test_scorer_reuse_and_a_scorer_of_another_proxy_or_tokenizer(
    corpus, reference_run, tmp_path, capsys
):
    reused = select(
        tiny_config(corpus, **{"scorer.path": str(reference_run.out)}), tmp_path / "r", quiet=True
    )
    np.testing.assert_array_equal(reused.scores, reference_run.scores)
    # another vocabulary: the scorer's tokenizer does not fit
    args = ["select", "--out", tmp_path / "bad1", "--quiet"]
    args += [f"--set={k}={v}" for k, v in TINY.items() if k != "data.vocab_size"]
    args += [
        f"--set=data.corpus='{corpus / 'pool'}'",
        f"--set=data.desired='{corpus / 'desired.txt'}'",
    ]
    code, _, err = run_cli(
        [*args, "--set=data.vocab_size=320", f"--set=scorer.path='{reference_run.out}'"], capsys
    )
    assert code == 2 and "data.vocab_size" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad1" / "metrics.json").exists()
    # a scorer file beside another proxy model
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    other = select(tiny_config(corpus, seed=1), tmp_path / "s1", quiet=True)
    for name in ("tokenizer.json", "proxy.npz"):
        (mixed / name).write_bytes((other.out / name).read_bytes())
    (mixed / "scorer.npz").write_bytes((reference_run.out / "scorer.npz").read_bytes())
    code, _, err = run_cli(
        [
            *args[:1],
            "--out",
            tmp_path / "bad2",
            *args[3:],
            "--set=data.vocab_size=300",
            f"--set=scorer.path='{mixed}'",
        ],
        capsys,
    )
    assert code == 2 and "another proxy model" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad2" / "metrics.json").exists()


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5])
def test_a_selection_fraction_outside_0_1_is_refused(fraction, tmp_path, capsys):
    code, _, err = run_cli(
        ["select", "--out", tmp_path / "o", f"--set=select.fraction={fraction}"], capsys
    )
    assert code == 2 and "select.fraction" in err and "(0, 1]" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_empty_or_unreadable_corpus(corpus, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = [f"--set={k}={v}" for k, v in TINY.items()]
    base.append(f"--set=data.desired='{corpus / 'desired.txt'}'")
    code, _, err = run_cli(
        ["select", "--out", tmp_path / "o1", "--quiet", *base, f"--set=data.corpus='{empty}'"],
        capsys,
    )
    assert code == 2 and "no .txt" in err and len(err.strip().splitlines()) == 1
    short = tmp_path / "short.txt"
    short.write_text("A few words.", encoding="utf-8")
    code, _, err = run_cli(
        ["select", "--out", tmp_path / "o2", "--quiet", *base, f"--set=data.corpus='{short}'"],
        capsys,
    )
    assert code == 2 and "sequences" in err and len(err.strip().splitlines()) == 1
    binary = tmp_path / "bin"
    binary.mkdir()
    (binary / "x.txt").write_bytes(b"\xff\xfe\x00 not utf-8 \xc3\x28")
    code, _, err = run_cli(
        ["select", "--out", tmp_path / "o3", "--quiet", *base, f"--set=data.corpus='{binary}'"],
        capsys,
    )
    assert code == 2 and "UTF-8" in err and len(err.strip().splitlines()) == 1
    for o in ("o1", "o2", "o3"):
        assert not (tmp_path / o / "metrics.json").exists()
        assert not (tmp_path / o / "selected.jsonl").exists()


def test_a_given_corpus_must_be_the_configured_mixture(corpus, tmp_path):
    with pytest.raises(UserError, match="not the mixture this config describes"):
        select(tiny_config(corpus), tmp_path / "o", corpus=object())
    assert not (tmp_path / "o").exists()


def test_missing_inputs_are_refused_before_the_folder_is_claimed(corpus, tmp_path):
    for key, fragment in (
        ("data.corpus", "data.corpus = "),
        ("data.desired", "data.desired = "),
        ("scorer.path", "scorer.path = "),
    ):
        config = tiny_config(corpus, **{key: str(tmp_path / "absent")})
        with pytest.raises(UserError, match=fragment + ".*no such file or folder"):
            select(config, tmp_path / "o", quiet=True)
        assert not (tmp_path / "o").exists()  # so the corrected config can start there


def test_the_data_scorer_refuses_what_it_cannot_fit_or_score():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x[:, 0]
    # a column of scores would broadcast: the held-out rank correlation fell from 0.95 to 0.08
    with pytest.raises(UserError, match=r"got shapes \(40, 3\) and \(40, 1\)"):
        DataScorer(epochs=5).fit(x, y[:, None])
    with pytest.raises(UserError, match="must be finite"):
        DataScorer(epochs=5).fit(np.where(x > 2, np.nan, x), y)
    with pytest.raises(UserError, match=r"scorer\.hidden and scorer\.epochs must be positive"):
        DataScorer(hidden=0).fit(x, y)
    with pytest.raises(UserError, match="not fitted"):
        DataScorer().predict(x)
    fitted = DataScorer(epochs=5).fit(x, y)
    with pytest.raises(UserError, match=r"with 3 columns, got shape \(40, 2\)"):
        fitted.predict(x[:, :2])
    assert fitted.predict(x).shape == (40,)
