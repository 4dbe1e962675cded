from __future__ import annotations

from pathlib import Path

import pytest

from compute.config import SlurmPool, load_settings, settings_as_dict
from compute.errors import ConfigError
from health.policy import PolicyConfig
from health.thresholds import Thresholds


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "computectl.toml"
    p.write_text(text)
    return p


def test_defaults_give_the_embedded_datacenter() -> None:
    s = load_settings(env={})
    assert [p.name for p in s.effective_pools] == ["training", "inference"]
    assert s.simulation.racks * s.simulation.nodes_per_rack * s.simulation.gpus_per_node == 256
    assert s.sqlalchemy_url.endswith("computectl.db")


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    p = write(tmp_path, "[sweep]\ninterval_seconds = 10\n[server]\nport = 9000\n")
    s = load_settings(
        p,
        env={"COMPUTECTL_SERVER__PORT": "9100", "COMPUTECTL_DATA_DIR": str(tmp_path / "d")},
        overrides={"sweep": {"interval_seconds": 2}},
    )
    assert (s.server.port, s.sweep.interval_seconds) == (9100, 2)
    assert s.data_dir == tmp_path / "d"


def test_config_path_from_environment(tmp_path: Path) -> None:
    p = write(tmp_path, "[remediation]\nconsecutive_failures = 5\n")
    assert load_settings(env={"COMPUTECTL_CONFIG": str(p)}).remediation.consecutive_failures == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sweep]\nintervall_seconds = 3\n", "unknown setting 'sweep.intervall_seconds'"),
        ("colour = 'red'\n", "unknown setting 'colour'"),
        ("[remediation]\ndrain_budget_fraction = 2\n", "remediation.drain_budget_fraction"),
        ("[simulation]\nfault_weights = { xid80 = 1.0 }\n", "unknown fault kind"),
        ("[[pools]]\nname='a'\nbackend='slurmm'\ngpu_model='H100-SXM'\n", "pools.0.backend"),
        ("[sweep\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        load_settings(write(tmp_path, text), env={})
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    "name",
    ["COMPUTECTL_SWEEP__INTERVL", "COMPUTECTL_NOPE", "COMPUTECTL_DATA_DIR__X", "COMPUTECTL_POOLS"],
)
def test_unknown_environment_variables_are_errors(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(env={name: "1"})


def test_secrets_are_masked() -> None:
    s = load_settings(env={"COMPUTECTL_DATABASE_URL": "postgresql+psycopg://u:pw@h/db"})
    shown = settings_as_dict(s)
    assert shown["database_url"] == "postgresql+psycopg://u:***@h/db"


def test_the_old_shared_token_is_refused_with_what_to_do_instead() -> None:
    with pytest.raises(ConfigError, match="computectl tokens create"):
        load_settings(env={"COMPUTECTL_SERVER__API_TOKEN": "s3cret"})


def test_credentials_read_elsewhere_are_not_settings() -> None:
    s = load_settings(env={"COMPUTECTL_NODE_TOKEN": "x", "COMPUTECTL_TOKEN": "y"})
    assert "token" not in str(settings_as_dict(s)).lower()


def test_a_burn_in_reservation_must_outlast_the_burn_in_timeout() -> None:
    pool = {
        "name": "training",
        "backend": "slurm",
        "gpu_model": "H100-SXM",
        "slurm": {"burn_in_report_url": "http://cp:8080", "burn_in_reservation_minutes": 100},
    }
    with pytest.raises(ConfigError, match=r"must be longer than remediation.burn_in_timeout"):
        load_settings(None, env={}, overrides={"pools": [pool]})
    ok = load_settings(
        None, env={}, overrides={"pools": [pool], "remediation": {"burn_in_timeout_minutes": 90}}
    )
    assert isinstance(ok.pools[0], SlurmPool)
    assert ok.pools[0].slurm.burn_in_reservation_minutes == 100


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ({"COMPUTECTL_REMEDIATION__REPEAT_FAILURE_WINDOW_HOURS": "1e300"}, "repeat_failure"),
        ({"COMPUTECTL_SWEEP__RESULTS_RETENTION_DAYS": "1e7"}, "results_retention_days"),
        ({"COMPUTECTL_SWEEP__INTERVAL_SECONDS": "1e-300"}, "interval_seconds"),
        ({"COMPUTECTL_REMEDIATION__BURN_IN_TIMEOUT_MINUTES": "1e9"}, "burn_in_timeout"),
        ({"COMPUTECTL_REMEDIATION__PERIODIC_BURN_IN_DAYS": "1e9"}, "periodic_burn_in"),
    ],
)
def test_durations_have_bounds_the_runtime_can_hold(env: dict[str, str], where: str) -> None:
    """Values a timedelta or a date cannot hold are refused at start-up, not by every sweep."""
    with pytest.raises(ConfigError, match=where):
        load_settings(env=env)


def test_every_default_duration_builds_a_runtime_policy() -> None:
    assert load_settings(env={}).remediation.policy().burn_in_timeout.total_seconds() == 7200


def test_defaults_are_the_policys_and_the_checks_own() -> None:
    """One source for each default: the settings' are health's."""
    s = load_settings(env={})
    assert s.remediation.policy() == PolicyConfig()
    assert s.checks.thresholds() == Thresholds()
