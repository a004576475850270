"""The write-path benchmarks (bench/writes.py, bench/loadgen.py) count what they claim.

No timed assertions: the figures are printed by ``python -m bench writes``;
these tests only check the counting, and that one tiny run of the floor
(no Django, no Redis) acknowledges and delivers every message.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.loadgen import Member, acked_not_delivered
from bench.writes import WriteCase, WriteResult, combine

ROOT = Path(__file__).resolve().parent.parent


def test_acked_not_delivered_counts_each_member_that_missed_an_acked_message():
    alice, bob, carol = Member("a"), Member("b"), Member("c")
    alice.acked = {"0", "1"}
    bob.received = {("a", "0"), ("a", "1")}
    carol.received = {("a", "0")}  # missed a's message 1
    bob.acked = {"0"}  # nobody got it
    assert acked_not_delivered([alice, bob, carol]) == 1 + 2


def test_an_unacknowledged_message_is_not_counted_as_acked_but_not_delivered():
    alice, bob = Member("a"), Member("b")
    alice.sent = 3  # none came back
    assert acked_not_delivered([alice, bob]) == 0


def test_rounds_add_up_counts_and_take_medians_of_figures():
    case = WriteCase("floor", 1, 2, 1.0, 1.0, "sqlite")
    runs = [WriteResult(case, sent=10, acked=10, ack_p99_ms=p) for p in (1.0, 5.0, 2.0)]
    row = combine(runs)
    assert (row.sent, row.acked, row.ack_p99_ms) == (30, 30, 2.0)


@pytest.mark.live
def test_a_tiny_floor_run_acknowledges_and_delivers_everything(tmp_path):
    command = [sys.executable, "-m", "bench", "writes", "--servers", "floor", "--rooms", "2"]
    command += ["--members", "3", "--rate", "2", "--duration", "1", "--grace", "1"]
    command += ["--out", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=60)
    (row,) = json.loads((tmp_path / "writes.json").read_text())
    assert row["notes"] == []
    assert row["sent"] == 2 * 3 * 2
    assert row["acked"] == row["sent"]
    assert row["delivered"] == row["expected_deliveries"] == row["sent"] * 2
    assert row["acked_not_delivered"] == 0


@pytest.mark.live
def test_a_tiny_floor_storm_gets_every_reader_ready(tmp_path):
    command = [sys.executable, "-m", "bench", "storm", "--servers", "floor", "--n", "20"]
    command += ["--out", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=60)
    (row,) = json.loads((tmp_path / "storm.json").read_text())
    assert row["notes"] == []
    assert row["ready"] == 20
    assert row["all_ready_s"] >= row["p50_s"] > 0


def test_set_reads_values_as_json_and_falls_back_to_strings():
    from bench.writes import parse_settings

    assert parse_settings(["A=0.005", "B=null", "C=[1, 2]", "D=inline"]) == {
        "A": 0.005,
        "B": None,
        "C": [1, 2],
        "D": "inline",
    }
