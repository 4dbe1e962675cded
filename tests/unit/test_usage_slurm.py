"""Slurm usage records from sacct: each allocation a record per GPU model, steps and
GPU-less jobs left out, a malformed line skipped and counted (never stopping the rest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.errors import Unreachable
from scheduler.slurm import usage
from scheduler.slurm.testing import InMemorySlurm
from scheduler.usage import UNKNOWN_MODEL, UsageRecord, UsageSource

PARTS = {"train": "training", "infer": "inference"}
UNTIL = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# sacct --parsable2 --noheader --allusers --allocations
#   --format=JobID,Account,Partition,Start,End,AllocTRES (22.05 prints local times)
SACCT = """\
101|borealis-ai|train|2026-03-01T22:00:00|2026-03-02T02:00:00|billing=8,cpu=8,gres/gpu:h100=8,gres/gpu=8,mem=64G,node=1
102|borealis-ai|infer|2026-03-02T10:30:00|Unknown|cpu=2,gres/gpu=2,node=1
102.batch|borealis-ai|infer|2026-03-02T10:30:00|Unknown|cpu=2,gres/gpu=2,node=1
103_4|aurora-labs|train|2026-03-02T01:00:00|2026-03-02T01:30:00|cpu=4,gres/gpu=4,gres/gpu:h100=2,gres/gpu:a100=2
104|aurora-labs|train|None|2026-03-02T01:00:00|cpu=4,gres/gpu=4
105|aurora-labs|train|2026-03-02T01:00:00|2026-03-02T02:00:00|cpu=4,mem=1G
106|aurora-labs|debug|2026-03-02T01:00:00|2026-03-02T02:00:00|cpu=4,gres/gpu=4
107|aurora-labs|train|2026-03-02T01:00:00|2026-03-02T02:00:00|gres/gpu=lots
108|aurora-labs|train|2026-03-02T01:00:00
109|aurora-labs|train|yesterday|2026-03-02T02:00:00|gres/gpu=1
110|aurora-labs|train|2026-03-02T03:00:00|2026-03-02T02:00:00|gres/gpu=1
"""


def test_sacct_lines_become_records_per_model() -> None:
    read = usage.usage_records(SACCT, PARTS, UNTIL, UTC)
    assert read.records == [
        UsageRecord("borealis-ai", "training", "H100-SXM", at(1, 22), at(2, 2), 8),
        # Still running: it ends at `until`; untyped GPUs have no model.
        UsageRecord("borealis-ai", "inference", UNKNOWN_MODEL, at(2, 10, 30), UNTIL, 2),
        UsageRecord("aurora-labs", "training", "A100-SXM", at(2, 1), at(2, 1, 30), 2),
        UsageRecord("aurora-labs", "training", "H100-SXM", at(2, 1), at(2, 1, 30), 2),
    ]
    # 107 (a count that is none), 108 (short), 109 (a time that is none), 110 (ends first).
    assert read.skipped == 4


def test_local_times_take_the_clusters_zone() -> None:
    plus2 = timezone(timedelta(hours=2))
    line = "1|t|train|2026-03-02T02:00:00|2026-03-02T03:00:00|gres/gpu=1"
    (rec,) = usage.usage_line(line, PARTS, UNTIL, plus2)
    assert rec.start == at(2, 0) and rec.end == at(2, 1)


def test_typed_counts_over_the_total_are_malformed() -> None:
    with pytest.raises(usage.Malformed):
        usage.tres_models("gres/gpu=2,gres/gpu:h100=4")
    assert usage.tres_models("gres/gpu:h200=4") == {"H200": 4}
    assert usage.tres_models("gres/gpu=4,gres/gpu:h100=1") == {"H100-SXM": 1, UNKNOWN_MODEL: 3}
    for bad in ("gres/gpu=²", "gres/gpu=99999999", "gres/gpu:a b=1", "gres/gpu", "gres/gpux=1"):
        with pytest.raises(usage.Malformed):
            usage.tres_models(bad)


def test_the_arguments_cover_running_and_ended_jobs_of_all_users() -> None:
    args = usage.usage_args(at(1, 0), at(2, 0), UTC, "borealis-ai")
    assert args[:4] == ["--parsable2", "--noheader", "--allusers", "--allocations"]
    assert "--starttime=2026-03-01T00:00:00" in args and "--endtime=2026-03-02T00:00:00" in args
    assert "RUNNING" in usage.USAGE_STATES and "COMPLETED" in usage.USAGE_STATES
    assert args[-1] == "--accounts=borealis-ai"


def test_the_source_reads_through_the_command_seam() -> None:
    slurm = InMemorySlurm.of({"gpu-001": "train"})
    slurm.accounting = SACCT
    source = usage.SlurmUsage(slurm, PARTS, UTC)
    assert isinstance(source, UsageSource)
    read = source.usage(at(1, 0), UNTIL, tenant="aurora-labs")
    assert {r.tenant for r in read.records} == {"aurora-labs"} and read.skipped == 4
    assert slurm.commands("sacct ")[0].endswith("--accounts=aurora-labs")
    with slurm.down(), pytest.raises(Unreachable):
        source.usage(at(1, 0), UNTIL)


FIELD = st.text(st.characters(codec="utf-8", exclude_characters="\n\r|"), max_size=30)
TIMES = st.one_of(
    FIELD,
    st.sampled_from(["Unknown", "None", "2026-03-02T01:00:00", "2026-03-02T01:00:00+05:00"]),
)
TRES = st.one_of(
    FIELD,
    st.lists(
        st.tuples(
            st.sampled_from(["gres/gpu", "gres/gpu:h100", "gres/gpu:zz", "cpu", "gres/gpuX"]),
            st.one_of(st.integers(-5, 10**9).map(str), FIELD),
        ),
        max_size=4,
    ).map(lambda kv: ",".join(f"{k}={v}" for k, v in kv)),
)
LINE = st.one_of(
    st.tuples(
        st.one_of(FIELD, st.sampled_from(["1", "2_3", "4+0", "5.batch", "6_[1-3]"])),
        st.one_of(FIELD, st.just("t")),
        st.one_of(FIELD, st.sampled_from(list(PARTS))),
        TIMES,
        TIMES,
        TRES,
    ).map("|".join),
    FIELD,
)


@given(st.lists(LINE, max_size=8), st.integers(0, 8))
def test_hostile_lines_are_skipped_and_the_good_ones_still_count(
    lines: list[str], where: int
) -> None:
    good = "9|good|train|2026-03-02T00:00:00|2026-03-02T01:00:00|gres/gpu=1"
    lines.insert(min(where, len(lines)), good)
    read = usage.usage_records("\n".join(lines), PARTS, UNTIL, UTC)
    assert UsageRecord("good", "training", UNKNOWN_MODEL, at(2, 0), at(2, 1), 1) in read.records
    assert read.skipped <= len(lines) - 1
    for r in read.records:
        assert r.start <= r.end and 0 < r.gpus <= 1_000_000 and r.pool in PARTS.values()
        assert r.start.tzinfo is not None
