"""`computectl provision`: what it accepts before anything runs, and how it reads a run's
events and stats. (The runs themselves: tests/integration/test_playbooks*.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.cli.main import main
from compute.errors import InvalidInput
from compute.services import provision as service

PLAYBOOKS = service.DEFAULT_PLAYBOOKS


def _req(name: str, limit: str | None = None, playbooks: Path = PLAYBOOKS) -> service.Request:
    return service.request(playbooks, name, None, limit, False, False)


@pytest.mark.parametrize("name", ["site", "site.yml", " gpu_node.yml", str(PLAYBOOKS / "site.yml")])
def test_a_playbook_is_named_by_its_file_in_playbooks(name: str) -> None:
    req = _req(name)
    assert req.playbooks == PLAYBOOKS.resolve() and req.playbook.parent == Path(".")
    assert (req.playbooks / req.playbook).is_file()


@pytest.mark.parametrize(
    "name",
    [
        "",
        "nope.yml",
        "../pyproject.toml",
        "../playbooks/site.yml/..",
        "/etc/passwd",
        "roles/control_plane/tasks/main.yml",
        "inventory/sample/hosts.yml",
        "ansible.cfg",
        "site\x1b[2J",
        "x" * 300,
    ],
)
def test_anything_else_is_refused_in_one_line(name: str) -> None:
    with pytest.raises(InvalidInput) as e:
        _req(name)
    assert "\n" not in str(e.value)


def test_a_link_out_of_playbooks_is_refused(tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_text("---\n")
    (tmp_path / "out.yml").symlink_to("/etc/hostname")
    assert _req("site", playbooks=tmp_path).playbook == Path("site.yml")
    with pytest.raises(InvalidInput, match="not a playbook of"):
        _req("out.yml", playbooks=tmp_path)


@given(st.text(max_size=300))
def test_any_name_is_a_playbook_of_playbooks_or_one_refusal(name: str) -> None:
    try:
        req = _req(name)
    except InvalidInput as e:
        refusal = str(e)
    else:
        refusal = ""
        assert (req.playbooks / req.playbook).resolve().parent == PLAYBOOKS.resolve()
    assert "\n" not in refusal


@pytest.mark.parametrize("limit", ["gpu-001", "gpu_nodes:!gpu-002", "gpu-[001:004]", "a,b&c", "*"])
def test_a_limit_is_a_host_pattern(limit: str) -> None:
    assert _req("site", limit).limit == limit


@given(st.text(max_size=1200))
def test_any_limit_is_a_host_pattern_or_one_refusal(limit: str) -> None:
    try:
        req = _req("site", limit)
    except InvalidInput as e:
        refusal = str(e)
    else:
        refusal = ""
        assert req.limit is not None and not req.limit.startswith("-")
        assert not set(req.limit) & set("@~ /\\$;|'\"`\n")
    assert "\n" not in refusal


def test_check_and_diff_become_ansible_playbooks_options() -> None:
    req = service.request(PLAYBOOKS, "site", None, None, True, True)
    assert req.cmdline() == ["--check", "--diff"]
    assert _req("site").cmdline() == []


def test_a_missing_inventory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="inventory"):
        service.request(PLAYBOOKS, "site", tmp_path / "none.yml", None, False, False)


def test_the_command_refuses_in_one_line_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--data-dir", str(tmp_path), "provision", "../pyproject.toml"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not a playbook of" in err
    assert not (tmp_path / "provision").exists()  # nothing ran


def _event(kind: str, **data: object) -> dict[str, object]:
    return {"event": kind, "event_data": {"host": "h1", "task": "T", **data}}


def test_each_host_and_task_is_one_progress_line() -> None:
    P = service.Progress
    assert service.progress_of(
        {"event": "playbook_on_play_start", "event_data": {"play": "CP"}}
    ) == P("play", "", "CP")
    assert service.progress_of(_event("runner_on_ok", res={"changed": False})) == P("ok", "h1", "T")
    assert service.progress_of(_event("runner_on_ok", res={"changed": True})) == P(
        "changed", "h1", "T"
    )
    assert service.progress_of(_event("runner_on_skipped")) == P("skipped", "h1", "T")
    assert service.progress_of(_event("runner_on_failed", res={"msg": "boom"})) == P(
        "failed", "h1", "T", "boom"
    )
    assert service.progress_of(_event("runner_on_failed", ignore_errors=True, res={})) == P(
        "ok", "h1", "T"
    )
    assert service.progress_of(_event("runner_on_unreachable", res={"msg": "ssh"})) == P(
        "unreachable", "h1", "T", "ssh"
    )
    for quiet in ("runner_item_on_ok", "playbook_on_task_start", "verbose", "playbook_on_stats"):
        assert service.progress_of(_event(quiet)) is None


def test_the_summary_is_ansibles_recap_per_host() -> None:
    stats = {
        "ok": {"a": 5, "b": 2},
        "changed": {"a": 1},
        "failures": {"b": 1},
        "dark": {"c": 1},
        "skipped": {"a": 3},
        "processed": {"a": 1, "b": 1, "c": 1},
    }
    hosts = service.host_summary(stats)
    assert hosts["a"] == {"ok": 5, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 3}
    assert hosts["b"]["failed"] == 1 and hosts["c"]["unreachable"] == 1
    outcome = service.Outcome("r", 2, "failed", Path("/x"), hosts)
    assert outcome.failed_hosts == ["b", "c"]
    assert service.host_summary(None) == {}
