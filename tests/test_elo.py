"""The pure rules of the Self-/Meta-Rewarding baselines: Elo fit, position-bias weights, battles, length control,
Self-Rewarding's pair and tie dropping, score and winner parsing (unparseable = dropped, never 0), the prompts."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from evaluators.score_judge import (SCORE_JUDGE_TEMPLATE, mean_score, parse_score_lenient, parse_score_strict,
                                    score_judge_prompt)
from training.methods.meta_rewarding import (META_JUDGE_TEMPLATE, battle_matrix, fit_elo, highest_variance,
                                             length_control, meta_judge_prompt, parse_winner, position_weights)
from training.methods.self_rewarding import best_worst, histogram

BASELINES_MD = Path("/work/shared/reference/baselines.md")


# -- Elo ------------------------------------------------------------------------------------------------------------

def test_elo_two_players_is_the_closed_form_mle():
    elo = fit_elo([[0, 3], [1, 0]])  # 3 wins to 1: sigmoid(e0 - e1) = 3/4
    assert elo[0] - elo[1] == pytest.approx(math.log(3), abs=1e-8)
    assert sum(elo) == pytest.approx(0, abs=1e-12)


def test_elo_known_battle_matrix_gives_the_known_ranking():
    # a strict order 2 > 0 > 3 > 1 (each beats the ones below it 3:1)
    order = [2, 0, 3, 1]
    n = len(order)
    b = [[0.0] * n for _ in range(n)]
    for i, m in enumerate(order):
        for k in order[i + 1:]:
            b[m][k], b[k][m] = 3.0, 1.0
    elo = fit_elo(b)
    assert sorted(range(n), key=lambda i: -elo[i]) == order
    # equal strengths: a symmetric matrix fits to all zeros
    assert fit_elo([[0, 2, 2], [2, 0, 2], [2, 2, 0]]) == pytest.approx([0, 0, 0], abs=1e-9)


def test_elo_mle_satisfies_the_score_equations():
    # at the maximum, each player's weighted wins equal its expected wins
    b = [[0, 2.5, 1.0, 0.2], [0.5, 0, 2.0, 1.0], [1.5, 0.7, 0, 3.0], [0.3, 1.2, 0.4, 0]]
    e = fit_elo(b)
    for k in range(4):
        wins = sum(b[k][j] for j in range(4) if j != k)
        expected = sum((b[k][j] + b[j][k]) / (1 + math.exp(e[j] - e[k])) for j in range(4) if j != k)
        assert wins == pytest.approx(expected, abs=1e-7)


def test_elo_undefeated_judgment_stays_finite_with_l2_and_on_top():
    elo = fit_elo([[0, 1, 1], [0, 0, 1], [0, 0, 0]], l2=1e-3)
    assert all(math.isfinite(x) for x in elo) and elo[0] > elo[1] > elo[2]
    assert fit_elo([]) == []


# -- position bias, battles -----------------------------------------------------------------------------------------

def test_position_weights_follow_the_paper():
    # the first-shown judgment wins 3 times, the second once, one parse failure (counts for neither)
    w1, w2, first, second = position_weights(["A", "A", "B", "A", None])
    assert (first, second) == (3, 1)
    assert w1 == pytest.approx(1 / 4) and w2 == pytest.approx(3 / 4)  # w1 = win_2nd / total, w2 = win_1st / total
    assert position_weights([None, None]) == (0.5, 0.5, 0, 0)
    assert position_weights(["A", "A"])[:2] == (0.0, 1.0)  # a meta-judge that always says A: its A-wins count 0


def test_battle_matrix_weights_each_order():
    # (first shown, second shown, winner): B_mn = w1 1[r_mn = +1] + w2 1[r_nm = -1]
    b = battle_matrix(3, [(0, 1, "A"), (1, 0, "B"), (0, 2, "B"), (2, 0, None), (1, 2, "A")], 0.25, 0.75)
    assert b[0][1] == pytest.approx(0.25 + 0.75)  # 0 won shown first (w1) and shown second (w2)
    assert b[2][0] == pytest.approx(0.75) and b[0][2] == 0  # the tie / parse error adds nothing
    assert b[1][2] == pytest.approx(0.25) and b[1][0] == 0 and b[2][1] == 0


# -- length control (Meta-Rewarding) and Self-Rewarding's pair ---------------------------------------------------------

def _c(i: int, score: float | None, chars: int) -> dict:
    return {"index": i, "mean_score": score, "response": "x" * chars + str(i)}


def test_length_control_rho_0_is_max_min_with_shortest_and_longest():
    cands = [_c(0, 5, 50), _c(1, 5, 10), _c(2, 1, 20), _c(3, 1, 90), _c(4, 3, 5)]
    chosen, rejected = length_control(cands, 0.0)
    assert chosen["index"] == 1 and rejected["index"] == 3  # shortest top score, longest bottom score


def test_length_control_rho_widens_the_bands():
    # S_max 5, S_min 1, rho 0.4: chosen band [3.4, 5], rejected band [1, 2.6]
    cands = [_c(0, 5, 80), _c(1, 3.5, 10), _c(2, 3.3, 5), _c(3, 2.5, 200), _c(4, 1, 40)]
    chosen, rejected = length_control(cands, 0.4)
    assert chosen["index"] == 1  # 3.5 is in the band and shorter than the 5; 3.3 is not in it
    assert rejected["index"] == 3  # 2.5 is in the low band and the longest
    # bands reaching past the middle may pick a chosen that does not score above the rejected: dropped
    assert length_control([_c(0, 4, 100), _c(1, 3.5, 5), _c(2, 3.6, 200), _c(3, 3, 50)], 0.9) == "overlap"
    assert length_control([_c(0, 4, 10), _c(1, 3, 5)], 1.0) == "overlap"  # both bands hold both: same pick


def test_ties_and_unscored_are_dropped_not_zero():
    assert length_control([_c(0, 4, 10), _c(1, 4, 20), _c(2, None, 5)], 0.4) == "tie"
    assert best_worst([_c(0, 4, 10), _c(1, 4, 20)]) == "tie"
    assert best_worst([_c(0, 4, 10), _c(1, None, 20)]) == "too_few_scored"  # unscored is not a 0
    chosen, rejected = best_worst([_c(0, 2, 10), _c(1, None, 20), _c(2, 4.5, 30), _c(3, 2, 40)])
    assert (chosen["index"], rejected["index"]) == (2, 0)  # the first candidate on equal means
    assert best_worst([{**_c(0, 5, 1), "response": "same"}, {**_c(1, 1, 1), "response": "same"}]) == "identical"


def test_highest_variance_response():
    rows = [{"index": 0, "scores": [4, 4, 4]}, {"index": 1, "scores": [0, 5, None, 5]},
            {"index": 2, "scores": [1, None, None]}, {"index": 3, "scores": [5, 0, 5, None]}]
    cand, var = highest_variance(rows)
    assert cand["index"] == 1 and var == pytest.approx(50 / 9)  # the first of the two equal variances
    assert highest_variance([{"index": 0, "scores": [3, None]}]) is None


# -- parsing --------------------------------------------------------------------------------------------------------

def test_score_parsing_drops_unparseable():
    assert parse_score_strict("Good answer.\nScore: 4") == 4.0
    assert parse_score_strict("Score: 2 at first... on reflection\nScore: 3") == 3.0  # the concluding score
    assert parse_score_strict("Score: 7") is None and parse_score_strict("Score: ...") is None
    assert parse_score_strict("I would give it four points") is None
    assert parse_score_lenient("I would give it 4 points") == 4.0 and parse_score_lenient("3/5") == 3.0
    assert parse_score_lenient("no idea") is None
    mean, scores = mean_score(["Score: 5", "no score here", "Score: 2"], parse_score_strict)
    assert scores == [5.0, None, 2.0] and mean == 3.5  # the unparseable judgment is dropped, not averaged as 0
    assert mean_score(["nothing"], parse_score_strict) == (None, [None])
    assert histogram([4.0, 4.0, 3.5, 0.0]) == {"0": 1, "3.5": 1, "4": 2}


def test_winner_parsing():
    assert parse_winner("... so Judgment B is better.\nWinner: Judgement B") == "B"
    assert parse_winner("**Winner:** [Judgement A]") == "A"
    assert parse_winner('Winner: [Judgement A | Judgement B]') is None  # the format echoed back is no verdict
    assert parse_winner("I prefer Judgement A") is None and parse_winner("I prefer Judgement A", lenient=True) == "A"


# -- prompts --------------------------------------------------------------------------------------------------------

def test_prompts_fill_in_one_pass():
    text = score_judge_prompt("say <RESPONSE_HERE>", "a {prompt}")
    assert "User: say <RESPONSE_HERE>\n<response>a {prompt}</response>\n" in text
    meta = meta_judge_prompt("q {response}", "r", "ja", "jb")
    assert "User: q {response}\nResponse: r\nJudgment A: ja\nJudgment B: jb\n" in meta
    assert SCORE_JUDGE_TEMPLATE.endswith("systematically attribute points based on the outlined criteria.")
    assert META_JUDGE_TEMPLATE.endswith('"Winner: [Judgement A | Judgement B]"')


@pytest.mark.skipif(not BASELINES_MD.is_file(), reason="the reference notes are not on this machine")
def test_prompts_are_byte_exact_copies_of_the_reference():
    blocks = re.findall(r"```\n(.*?)```", BASELINES_MD.read_text(), re.S)
    assert SCORE_JUDGE_TEMPLATE + "\n" == blocks[0]
    assert META_JUDGE_TEMPLATE + "\n" == blocks[1]
