"""``manage.py evaluate`` on a small real slice: Amazon Office, first 3,000 purchases."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from recommender.evaluation.cold_tuning import EXPOSURE_MIN_SCORES, choose_exposure

pytestmark = pytest.mark.django_db

USERS = 363
COLD = 58
# The sequential model is trained on each protocol's training data and reported alone and
# inside the served hybrid (issue 16).
MODELS = [
    "popularity", "item_knn", "ease", "content", "hybrid", "hybrid_defaults", "sequential",
    "hybrid_sequential",
]  # fmt: skip


@pytest.fixture
def office_slice(shared_data, tmp_path):
    source = shared_data / "amazon_office"
    folder = tmp_path / "office"
    folder.mkdir()
    (folder / "products.csv").write_bytes((source / "products.csv").read_bytes())
    lines = (source / "events.csv").read_text(encoding="utf-8").splitlines()[:3001]
    (folder / "events.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    call_command("import", str(folder), no_progress=True, stdout=StringIO(), stderr=StringIO())
    return folder


def test_evaluate_prints_the_table_and_writes_json(office_slice, tmp_path, settings):
    settings.RECSITE_SEQUENTIAL = "auto"  # Off in the other tests (recsite/settings/test.py).
    out, err = StringIO(), StringIO()
    path = tmp_path / "report.json"
    call_command(
        "evaluate",
        "--k",
        "10,20",
        "--json",
        str(path),
        "--cold-start",
        "--seed",
        "0",
        stdout=out,
        stderr=err,
    )
    report = json.loads(path.read_text())
    leave_last_out, cold_start = report["reports"]
    assert leave_last_out["protocol"] == "leave-last-out"
    assert list(leave_last_out["models"]) == MODELS
    assert leave_last_out["users"] == USERS
    assert all(model["users"] == USERS for model in leave_last_out["models"].values())
    # The cold-start protocol reports what train would serve on its own training split, too.
    assert list(cold_start["models"]) == [
        "popularity", "content", "hybrid", "hybrid_defaults", "sequential", "hybrid_sequential",
    ]  # fmt: skip
    assert cold_start["notes"]["autotune"]["verdict"].startswith(
        ("tuned", "kept: the best point found scored")
    )
    assert cold_start["models"]["popularity"]["recall@20"] == 0.0  # Cold products have no events.
    assert cold_start["notes"]["cold_products"] == COLD
    lines = out.getvalue().splitlines()
    header = lines.index(
        "| model | Recall@10 | NDCG@10 | Recall@20 | NDCG@20 | MRR | Coverage@10 | ILD@10 "
        "| Coverage@20 | ILD@20 | users | candidate recall |"
    )
    rows = [line.split(" | ") for line in lines[header + 2 : header + 2 + len(MODELS)]]
    assert [row[0] for row in rows] == [f"| {name}" for name in MODELS]
    # Stage 1's recall is the hybrids' alone, and the JSON report carries the same figure.
    hybrid = leave_last_out["models"]["hybrid"]
    defaults = leave_last_out["models"]["hybrid_defaults"]
    with_sequential = leave_last_out["models"]["hybrid_sequential"]
    assert [row[-1] for row in rows] == ["- |"] * 4 + [
        f"{hybrid['candidate_recall']:.4f} |",
        f"{defaults['candidate_recall']:.4f} |",
        "- |",
        f"{with_sequential['candidate_recall']:.4f} |",
    ]
    # The sequential fit and the validation gate are printed after the table.
    assert lines[header + 2 + len(MODELS)].startswith("sequential: ")
    assert lines[header + 3 + len(MODELS)].startswith(
        "sequential gate (validation NDCG@10 of the hybrid): "
    )
    # train's automatic tuning ran on the training split (validation: second-to-last products)
    tuned = leave_last_out["notes"]["autotune"]
    assert tuned["verdict"].startswith(("tuned", "kept: the best point found scored"))
    assert tuned["users"] == USERS
    # The baselines' settings were chosen on validation too: the best row of each grid
    baselines = leave_last_out["notes"]["baselines"]
    rows = baselines["validation"]
    assert [row["model"] for row in rows] == ["item_knn"] * 6 + ["ease"] * 8
    for model, name in (("item_knn", "knn_neighbours"), ("ease", "ease_lambda")):
        best = max((r for r in rows if r["model"] == model), key=lambda r: r["ndcg@10"])
        assert baselines[name] == best[name]
    assert 0 < hybrid["candidate_recall"] <= 1
    assert hybrid["recall@20"] <= hybrid["candidate_recall"]
    assert lines[-1] == f"Wrote {path}"


def test_bad_cut_offs_are_refused_naming_the_option():
    with pytest.raises(CommandError, match=r"^--k: expected comma-separated integers, got 'x'"):
        call_command("evaluate", "--k", "x", stdout=StringIO(), stderr=StringIO())


def test_tune_cold_prints_one_validation_row_per_share_and_the_rule_s_choice(office_slice):
    out = StringIO()
    # The sweep alone is under test: no automatic tuning of the reported hybrid (most of the
    # time this command would take).
    call_command(
        "evaluate", "--k", "10", "--tune-cold", "--no-autotune", stdout=out, stderr=StringIO()
    )

    lines = out.getvalue().splitlines()
    start = lines.index("cold_collaborative on validation:")
    header, _, *rows = lines[start + 1 : start + 7]
    assert header == (
        "| cold_collaborative | warm_ndcg@10 | warm_recall@10 | cold_ndcg@10 | cold_recall@10 |"
    )
    assert [row.split(" | ")[0] for row in rows] == ["| 0.0", "| 0.25", "| 0.5", "| 1.0"]
    table = [[float(cell) for cell in row.strip("| ").split(" | ")] for row in rows]
    warm_floor = 0.995 * table[0][1]
    allowed = [row for row in table if row[1] >= warm_floor]
    best = max(allowed, key=lambda row: (row[3], -row[0]))
    assert lines[start + 7] == f"chosen cold_collaborative: {best[0]}"


def test_tune_exposure_prints_the_validation_grid_and_the_rule_s_choice(office_slice, tmp_path):
    out = StringIO()
    path = tmp_path / "report.json"
    call_command(
        "evaluate", "--k", "10", "--tune-exposure", "--no-autotune", "--json", str(path),
        stdout=out, stderr=StringIO(),
    )  # fmt: skip

    lines = out.getvalue().splitlines()
    start = lines.index("exposure slots on validation:")
    header = lines[start + 1]
    assert header == (
        "| exposure_slots | exposure_min_score | warm_ndcg@10 | warm_recall@10 | cold_ndcg@10 "
        "| cold_recall@10 |"
    )
    points = 1 + 3 * len(EXPOSURE_MIN_SCORES)  # No slots, then 1 to 3 slots x each minimum.
    rows = lines[start + 3 : start + 3 + points]
    firsts = [row.split(" | ")[:2] for row in rows[:3]]
    assert firsts == [["| 0", "0.0"], ["| 1", "0.0"], ["| 1", "0.5"]]
    assert lines[start + 3 + points].startswith("reference: warm_customers ")
    sweep = json.loads(path.read_text())["validation_sweeps"]["exposure"]
    table = [[float(cell) for cell in row.strip("| ").split(" | ")] for row in rows]
    assert table == [list(row.values()) for row in sweep["rows"]]
    chosen = choose_exposure(sweep["rows"], sweep["reference"])
    assert lines[start + 4 + points] == (
        f"chosen exposure_slots: {chosen[0]}, exposure_min_score: {chosen[1]}"
    )
    assert sweep["chosen"] == {"exposure_slots": chosen[0], "exposure_min_score": chosen[1]}
