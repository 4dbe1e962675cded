"""The sections of the settings other than pools: server, sweep, remediation, checks,
pair test, simulation and demo."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from compute.config_base import Section as _Section
from compute.validation import known_checks
from health.policy import PolicyConfig
from health.thresholds import Thresholds

# The policy's and the checks' own defaults are the settings' defaults.
_POLICY = PolicyConfig()
_CHECKS = Thresholds()
_HOUR, _MINUTE, _DAY = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the API, portal and /metrics listen on.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to listen on (0: any free port).")
    secure_cookies: bool | None = Field(
        None,
        description="Mark the login cookies Secure (sent over https only). Unset: when the "
        "request came over https; set true where TLS ends at a proxy in front of computectl.",
    )
    metrics_public: bool = Field(
        False,
        description="Serve /metrics without a credential (default: a viewer's or an "
        "operator's token scrapes it).",
    )
    lease_seconds: float = Field(
        15.0,
        ge=3,
        le=300,
        description="Seconds the acting replica's lease lasts unrenewed: how long the fleet may "
        "go without an acting control plane after the one acting dies.",
    )
    workers: int | None = Field(
        None,
        ge=0,
        le=64,
        description="API worker processes 'serve' starts beside the process that acts: they "
        "serve the API on the same port and never act, so a sweep never stalls a request "
        "(0: one process serves the API and acts). Unset: one per core beyond two, at most 8.",
    )


class SweepSettings(_Section):
    interval_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="Seconds between background sweeps in 'serve' (0: this process never "
        "acts, not even on posted results; run 'computectl sweep' from cron instead).",
    )
    passing_results_every_seconds: float = Field(
        600.0,
        ge=0,
        le=7 * 86_400,
        description="A node's passing results are stored at most this often (0: every sweep); "
        "every warning and failure, and the pass that ends one, is always stored. Decisions "
        "use every result either way.",
    )

    @field_validator("interval_seconds")
    @classmethod
    def _off_or_sane(cls, v: float) -> float:
        if 0 < v < 0.5:
            raise ValueError("must be 0 (no background sweeps) or at least 0.5 seconds")
        return v

    results_retention_days: float = Field(
        14.0, gt=0, le=3650, description="Check results older than this are pruned after a sweep."
    )


class BrakeSettings(_Section):
    """Table [remediation.brake]: when many nodes that share a rack, a switch or a pool fail
    at once, the cause is likely shared (power, cooling, the fabric, a rollout), and draining
    them all would take the capacity out with no node at fault."""

    window_minutes: float = Field(
        5.0,
        gt=0,
        le=24 * 60,
        description="Automated drains are counted over this many minutes.",
    )
    rack_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="A drain that would bring the rack's drains within the window to this "
        "share of its nodes is held, and opens an incident; the drains before it stand.",
    )
    switch_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="The same for the nodes behind one leaf switch.",
    )
    pool_max_nodes: int = Field(
        16,
        ge=1,
        le=100_000,
        description="Most automated drains in one pool within the window; the next is held "
        "and opens an incident.",
    )
    min_nodes: int = Field(
        3,
        ge=2,
        le=100_000,
        description="A rack or switch brakes only once at least this many of its nodes "
        "would be drained (so a small rack does not brake on one failure).",
    )


class RemediationSettings(_Section):
    consecutive_failures: int = Field(
        _POLICY.consecutive_failures,
        ge=1,
        le=1000,
        description="Non-fatal failures of one check in a row before a node is drained.",
    )
    drain_budget_fraction: float = Field(
        _POLICY.drain_budget_fraction,
        ge=0,
        le=1,
        description="Most of a pool automation may hold out of service at "
        "once (draining, drained, or in burn-in after its drain); further drains wait.",
    )
    drain_budget_min_nodes: int = Field(
        _POLICY.drain_budget_min_nodes,
        ge=0,
        le=100_000,
        description="The budget is never below this many nodes (small pools).",
    )
    repeat_failure_window_hours: float = Field(
        _POLICY.repeat_failure_window / _HOUR,
        gt=0,
        le=24 * 3650,
        description="A node drained again within this many hours of returning to "
        "service goes to repair instead of burn-in.",
    )
    burn_in_max_attempts: int = Field(
        _POLICY.burn_in_max_attempts,
        ge=1,
        le=100,
        description="Failed burn-ins before a node goes to repair. A burn-in failed on a "
        "fatal check (SDC, a GPU gone, a fatal XID) sends it to repair at once.",
    )
    burn_in_timeout_minutes: float = Field(
        _POLICY.burn_in_timeout / _MINUTE,
        ge=1,
        le=7 * 24 * 60,
        description="A burn-in that has not reported by then did not run: that is no evidence "
        "against the node. It is started again (up to burn_in_max_attempts), then the node "
        "waits for results or an operator; a periodic burn-in returns the node to service.",
    )
    down_checks: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Checks whose fatal failures take a node down at once, "
        "ending its running jobs; other failures drain (running jobs finish).",
    )
    periodic_burn_in_days: float = Field(
        (_POLICY.periodic_burn_in or timedelta(0)) / _DAY,
        ge=0,
        le=3650,
        description="An idle node in service whose last passed burn-in is older than this "
        "gets one (0: never). Silent faults such as a slow GPU show only under load.",
    )
    periodic_burn_in_per_sweep: int = Field(
        _POLICY.periodic_burn_in_per_sweep,
        ge=0,
        le=10_000,
        description="Periodic burn-ins started per pool per sweep at most; they also count "
        "against the drain budget, after any fault's drain.",
    )
    brake: BrakeSettings = Field(
        default_factory=BrakeSettings,
        description="Table [remediation.brake]: the brake for failures with a shared cause.",
    )
    new_nodes: Literal["burn_in", "in_service"] = Field(
        "burn_in",
        description="What happens to an idle node computectl sees for the first "
        "time: burn-in first, or straight into service. Nodes running jobs are always adopted "
        "into service.",
    )

    def policy(self) -> PolicyConfig:
        """The remediation policy these settings describe."""
        return PolicyConfig(
            consecutive_failures=self.consecutive_failures,
            drain_budget_fraction=self.drain_budget_fraction,
            drain_budget_min_nodes=self.drain_budget_min_nodes,
            repeat_failure_window=timedelta(hours=self.repeat_failure_window_hours),
            burn_in_max_attempts=self.burn_in_max_attempts,
            burn_in_timeout=timedelta(minutes=self.burn_in_timeout_minutes),
            down_checks=frozenset(self.down_checks),
            periodic_burn_in=(
                timedelta(days=self.periodic_burn_in_days)
                if self.periodic_burn_in_days > 0
                else None
            ),
            periodic_burn_in_per_sweep=self.periodic_burn_in_per_sweep,
        )

    @field_validator("down_checks")
    @classmethod
    def _known_checks(cls, v: list[str]) -> list[str]:
        known = known_checks()
        bad = sorted(set(v) - known)
        if bad:
            raise ValueError(
                f"unknown check(s) {', '.join(map(ascii, bad))}; known: {', '.join(sorted(known))}"
            )
        return v


class ChecksSettings(_Section):
    temperature_warn_celsius: float = Field(
        _CHECKS.temperature_warn_celsius, ge=0, le=200, description="GPU temperature that warns."
    )
    temperature_fail_celsius: float = Field(
        _CHECKS.temperature_fail_celsius,
        ge=0,
        le=200,
        description="GPU temperature that fails (or the GPU's own slowdown limit if lower).",
    )
    power_over_limit_ratio: float = Field(
        _CHECKS.power_over_limit_ratio,
        gt=1,
        le=10,
        description="Power above this share of the GPU's limit warns.",
    )
    nvlink_error_growth_warn: int = Field(
        _CHECKS.nvlink_error_growth_warn,
        ge=1,
        le=2**40,
        description="NVLink CRC+replay errors grown since the last check that warn.",
    )
    burnin_relative_floor: float = Field(
        _CHECKS.burnin_relative_floor,
        gt=0,
        le=1,
        description="A GPU below this share of its node's median burn-in figure fails.",
    )

    def thresholds(self) -> Thresholds:
        """The limits the checks judge against."""
        return Thresholds(
            temperature_warn_celsius=self.temperature_warn_celsius,
            temperature_fail_celsius=self.temperature_fail_celsius,
            power_over_limit_ratio=self.power_over_limit_ratio,
            nvlink_error_growth_warn=self.nvlink_error_growth_warn,
            burnin_relative_floor=self.burnin_relative_floor,
        )


class PairTestSettings(_Section):
    slow_ratio: float = Field(
        0.8,
        gt=0,
        le=1,
        description="A pair below this share of the median pair's bus bandwidth is slow.",
    )
    bytes: int | None = Field(
        None,
        ge=4,
        le=2**40,
        description="All-reduce size of each pair (default: the probe's, 1 GiB on GPUs).",
    )
    timeout_seconds: float = Field(
        900.0,
        gt=0,
        le=86_400,
        description="How long a round of pairs may take, waiting in the queue included; "
        "pairs not done by then are cancelled and reported without a figure.",
    )
    probe_timeout_seconds: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="How long each side's probe waits for its peer and the all-reduce "
        "(at most 90 % of timeout_seconds, so the probe's own error is what a hung pair "
        "leaves behind).",
    )
    port: int = Field(
        29500,
        ge=1,
        le=65000,
        description="Rendezvous port on each pair's first node (pair i of a round: port + i).",
    )


class SimulationSettings(_Section):
    enabled: bool = Field(
        True,
        description="Run the simulated datacenter (the embedded default). Pools with "
        "backend 'simulated' need it.",
    )
    seed: int = Field(42, description="Seed of the simulation; the same seed gives the same run.")
    site: str = Field("hel1", description="Name of the simulated site.")
    room: str = Field("hall-a", description="Name of the simulated room.")
    racks: int = Field(4, ge=1, le=2000, description="Racks in the simulated room.")
    nodes_per_rack: int = Field(8, ge=1, le=64, description="GPU nodes per rack.")
    gpus_per_node: int = Field(8, ge=1, le=16, description="GPUs per node.")
    gpu_model: Literal["H100-SXM", "H200", "A100-SXM", "B200", "GB200"] = Field(
        "H100-SXM", description="GPU model of every simulated node."
    )
    rack_power_budget_watts: float = Field(
        40_000.0, gt=0, le=10_000_000, description="Power budget per rack."
    )
    inference_racks: int = Field(
        1,
        ge=0,
        le=2000,
        description="The last this-many racks form the 'inference' pool; the others "
        "the 'training' pool.",
    )
    target_utilisation: float = Field(
        0.7, ge=0, le=1, description="Share of GPUs the synthetic job mix keeps busy."
    )
    time_acceleration: float = Field(
        1.0, gt=0, le=1e6, description="Simulated seconds per real second while 'serve' runs."
    )
    fault_rate_per_node_hour: float = Field(
        0.002, ge=0, le=1000, description="Injected faults per node per simulated hour, all kinds."
    )
    fault_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Relative weight per fault kind (xid79, xid48, xid94, "
        "xid95, row_remap_pending, row_remap_failure, nvlink_down, pcie_x8, thermal_throttle, "
        "power_brake, slow_gemm, low_nccl, ib_port_down, sdc_bitflip); unnamed kinds keep their "
        "default weight (sdc_bitflip's is 0: only injected).",
    )
    technician_repair_hours: float = Field(
        4.0,
        ge=0,
        le=24 * 3650,
        description="A simulated technician fixes nodes in repair after this many "
        "simulated hours and hands them back to burn-in (0: never).",
    )

    @field_validator("fault_weights")
    @classmethod
    def _known_faults(cls, v: dict[str, float]) -> dict[str, float]:
        from health.simulated.faults import FaultKind

        known = {k.value for k in FaultKind}
        if any(not 0 <= w <= 1e6 for w in v.values()):
            raise ValueError("weights are numbers from 0 to 1e6")
        bad = sorted(set(v) - known)
        if bad:
            raise ValueError(
                f"unknown fault kind(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
            )
        return v


class DemoSettings(_Section):
    time_acceleration: float = Field(
        60.0, gt=0, le=1e6, description="'computectl demo': simulated seconds per real second."
    )
    sweep_interval_seconds: float = Field(
        3.0, ge=0.5, le=86_400, description="'computectl demo': real seconds between sweeps."
    )
    fault_rate_per_node_hour: float = Field(
        0.04, ge=0, le=1000, description="'computectl demo': faults per node per simulated hour."
    )
    opening_fault: str = Field(
        "xid79",
        description="'computectl demo': fault injected on a busy node shortly after "
        "start, so the first drain shows at once ('' for none).",
    )
    opening_fault_after_seconds: float = Field(
        15.0,
        ge=0,
        le=86_400,
        description="'computectl demo': real seconds after start for the opening fault.",
    )
    technician_repair_hours: float = Field(
        3.0,
        ge=0,
        le=24 * 3650,
        description="'computectl demo': simulated hours until a node in repair is fixed.",
    )
