from compute.testing import EPOCH
from health.consistency import drift, drift_results
from health.result import Status


def v(driver: str, cuda: str = "12.4", vbios: str = "96.00.A5.00.1A") -> dict[str, str]:
    return {"driver_version": driver, "cuda_version": cuda, "vbios_versions": vbios}


def test_the_odd_node_out_is_flagged() -> None:
    pool = {"n1": v("550.90.07"), "n2": v("550.90.07"), "n3": v("550.54.15", "12.3")}
    flagged = drift(pool)
    assert set(flagged) == {"n3"}
    assert "driver version 550.54.15 (550.90.07 on 2 of 3 nodes)" in flagged["n3"]
    assert "cuda version 12.3" in flagged["n3"]
    results = {r.node: r.status for r in drift_results(pool, EPOCH, {"n2"})}
    assert results == {"n2": Status.PASS, "n3": Status.WARN}


def test_consistent_or_single_node_pools_are_quiet() -> None:
    assert drift({"n1": v("1"), "n2": v("1")}) == {}
    assert drift({"n1": v("1")}) == {}


def test_a_split_pool_says_there_is_no_majority() -> None:
    flagged = drift({"n1": v("1"), "n2": v("2")})
    assert len(flagged) == 1 and "no majority" in next(iter(flagged.values()))
