from pathlib import Path

from compute.config_doc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_current() -> None:
    """docs/configuration.md is `computectl config doc`; regenerate it when settings change."""
    assert DOC.read_text().strip() == render().strip()


def test_every_setting_is_described() -> None:
    assert "|  |" not in render()
