"""cardio_st.labelling.judges: judging against fake servers on 127.0.0.1 -- retries of malformed answers, a
judge that never answers validly, an unreachable one, resuming without re-asking."""

from __future__ import annotations

import json

import pytest
from fake_judges import GRADES, MODEL, FakeJudge, _texts

from cardio_st.errors import CardioSTError
from cardio_st.labelling.judges import judge_pairs, make_judge

QUERIES = {qid: text for text, qid in _texts("queries.jsonl").items()}
CORPUS = {did: text for text, did in _texts("corpus.jsonl").items()}
PAIRS = {"q1": ["d1", "d2", "d4", "d5"], "q2": ["d1", "d2", "d3", "d4", "d5", "d6"]}


@pytest.fixture
def servers():
    made = []

    def make(judge, behaviour="good", delay=0.0):
        made.append(FakeJudge(judge, behaviour, delay))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _judge(server, **options):
    return make_judge(f"openai:{server.url}", model=MODEL, max_retries=0, **options)


def test_malformed_answers_are_retried_and_recorded(servers, tmp_path):
    flaky = servers("B", "flaky")
    run = judge_pairs([_judge(flaky)], PAIRS, QUERIES, CORPUS, tmp_path, batch_size=5, show_progress=False)
    (name,) = run.grades
    assert run.grades[name] == {
        pair: GRADES[pair][1] for pair in [(q, d) for q, ds in PAIRS.items() for d in ds]
    }
    assert run.unparsed[name] == {}
    records = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()[1:]]
    failed = [r for r in records if r["grades"] is None]
    assert len(failed) == 2 and {r["query"] for r in failed} == {"q2"}
    assert all(r["error"].startswith(("no JSON", "invalid JSON")) for r in failed)
    assert all(r["attempt"] == 2 for r in records if r["query"] == "q2" and r["grades"] is not None)


def test_a_judge_that_never_answers_validly_ends_with_a_report_not_a_hang(servers, tmp_path):
    invalid = servers("A", "invalid")
    run = judge_pairs(
        [_judge(invalid)], PAIRS, QUERIES, CORPUS, tmp_path, max_attempts=2, show_progress=False
    )
    (name,) = run.grades
    assert run.grades[name] == {} and len(run.unparsed[name]) == 10
    assert set(run.unparsed[name].values()) == {"no JSON object in the answer"}
    assert len(invalid.asked) == 2 * 10  # two attempts per pair, then it stops
    again = judge_pairs(
        [_judge(invalid)], PAIRS, QUERIES, CORPUS, tmp_path, max_attempts=2, show_progress=False
    )
    assert len(invalid.asked) == 20 and len(again.unparsed[name]) == 10  # a rerun does not ask again
    judge_pairs(
        [_judge(invalid)],
        PAIRS,
        QUERIES,
        CORPUS,
        tmp_path,
        max_attempts=2,
        retry_unparsed=True,
        show_progress=False,
    )
    assert len(invalid.asked) == 40  # unless told to


def test_an_unreachable_judge_is_named(servers, tmp_path):
    good = servers("A")
    dead = make_judge("openai:http://127.0.0.1:9/v1", model=MODEL, max_retries=0, timeout=2)
    with pytest.raises(
        CardioSTError, match=r"cannot reach the judge server at http://127.0.0.1:9/v1.*rerun to resume"
    ):
        judge_pairs([_judge(good), dead], PAIRS, QUERIES, CORPUS, tmp_path, show_progress=False)


def test_a_rerun_asks_no_judge_again_about_a_pair_it_answered(servers, tmp_path):
    good = servers("A")
    first = {"q1": PAIRS["q1"]}
    judge_pairs([_judge(good)], first, QUERIES, CORPUS, tmp_path, show_progress=False)
    good.phase = 2
    run = judge_pairs([_judge(good)], PAIRS, QUERIES, CORPUS, tmp_path, show_progress=False)
    asked_again = [(q, d) for q, d, phase in good.asked if phase == 2]
    assert sorted(asked_again) == [("q2", d) for d in PAIRS["q2"]]
    assert len(next(iter(run.grades.values()))) == 10


def test_changed_texts_are_asked_again(servers, tmp_path):
    good = servers("A")
    judge_pairs([_judge(good)], PAIRS, QUERIES, CORPUS, tmp_path, show_progress=False)
    good.phase = 2
    edited = {**CORPUS, "d1": CORPUS["d1"] + " Start low, go slow."}
    judge_pairs([_judge(good)], PAIRS, QUERIES, edited, tmp_path, show_progress=False)
    assert sorted((q, d) for q, d, phase in good.asked if phase == 2) == [("q1", "d1"), ("q2", "d1")]


def test_bad_arguments(servers, tmp_path):
    good = servers("A")
    with pytest.raises(CardioSTError, match="each once"):
        judge_pairs([_judge(good), _judge(good)], PAIRS, QUERIES, CORPUS, tmp_path)
    with pytest.raises(CardioSTError, match="has no text"):
        judge_pairs([_judge(good)], {"q9": ["d1"]}, QUERIES, CORPUS, tmp_path)
    with pytest.raises(CardioSTError, match="a judge needs a model"):
        make_judge("none")
    with pytest.raises(CardioSTError, match="`model='NAME'`"):
        make_judge(f"openai:{good.url}")


def test_a_backend_that_answers_nothing_does_not_loop_forever(tmp_path):
    from cardio_st.labelling.judges import Judge

    class Silent:
        calls = 0

        def stream(self, prompts):
            Silent.calls += 1
            return iter(())

    run = judge_pairs(
        [Judge("silent", Silent())], PAIRS, QUERIES, CORPUS, tmp_path, max_attempts=2, show_progress=False
    )
    assert Silent.calls == 2 and len(run.unparsed["silent"]) == 10 and run.grades["silent"] == {}


def test_a_local_transformers_judge_runs_through_the_same_loop(tmp_path):
    from tiny_models import build_tiny_causal_lm

    folder = build_tiny_causal_lm(tmp_path / "lm")
    judge = make_judge(f"hf:{folder}", max_new_tokens=8, concurrency=4, timeout=5)  # server options ignored
    assert judge.name == f"hf:{folder}" and judge.backend.system_prompt.startswith(
        "You are an expert clinical"
    )
    run = judge_pairs(
        [judge], {"q1": ["d1", "d2"]}, QUERIES, CORPUS, tmp_path / "j", max_attempts=1, show_progress=False
    )
    # A random tiny LM writes no JSON: both pairs are reported unparsed, with the reason.
    assert run.grades[judge.name] == {} and set(run.unparsed[judge.name]) == {("q1", "d1"), ("q1", "d2")}


def test_a_batch_without_an_answer_is_not_malformed_and_a_rerun_asks_again(servers, tmp_path):
    from cardio_st.labelling.judges import Judge
    from cardio_st.llm.base import Unanswered

    inner = _judge(servers("A")).backend

    class NoAnswerFirst:
        """The first request of the first call comes back without content (after the client's retries)."""

        calls = 0

        def stream(self, prompts):
            NoAnswerFirst.calls += 1
            for index, raw in inner.stream(prompts):
                first = NoAnswerFirst.calls == 1 and index == 0
                yield index, Unanswered("an answer with content null (6 attempts)") if first else raw

    judge = Judge("flaky-server", NoAnswerFirst())
    # Given a judge whose answer about q1's batch never came
    run = judge_pairs([judge], PAIRS, QUERIES, CORPUS, tmp_path, max_attempts=3, show_progress=False)
    # Then those pairs are unanswered -- not unparsed, not asked again in this run -- and the rest graded
    q1 = {("q1", doc) for doc in PAIRS["q1"]}
    assert set(run.unanswered["flaky-server"]) == q1 and run.unparsed["flaky-server"] == {}
    assert set(run.grades["flaky-server"]) == {("q2", doc) for doc in PAIRS["q2"]}
    assert NoAnswerFirst.calls == 1
    # When it runs again, Then only q1 is asked about, and every pair is graded
    again = judge_pairs([judge], PAIRS, QUERIES, CORPUS, tmp_path, max_attempts=3, show_progress=False)
    assert again.asked["flaky-server"] == 1 and again.unanswered["flaky-server"] == {}
    assert set(again.grades["flaky-server"]) == q1 | set(run.grades["flaky-server"])
