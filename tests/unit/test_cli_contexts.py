"""The client configuration: contexts, the current one, tokens kept from others' eyes, and
where commands go (the data directory or a server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compute.client import contexts
from compute.client.contexts import ClientConfig, Context, Target
from compute.errors import ConfigError, InvalidInput

TOKEN = "cct_abcd1234_" + "x" * 43


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_no_file_is_the_data_directory(tmp_path: Path) -> None:
    config = contexts.load(tmp_path / "missing.toml")
    assert config == ClientConfig()
    assert contexts.resolve(None, None, None, False, config) is None


def test_current_context_with_a_token_file(tmp_path: Path) -> None:
    token = write(tmp_path / "prod.token", TOKEN + "\n")
    path = write(
        tmp_path / "config.toml",
        'current_context = "prod"\n[contexts.prod]\nserver = "https://cc.example.com/"\n'
        f'token_file = "{token.name}"\n',
        0o644,  # no token in the file itself: others may read it
    )
    config = contexts.load(path)
    target = contexts.resolve(None, None, None, False, config)
    assert target == Target("https://cc.example.com", TOKEN, "prod", explicit=False)
    # The environment's token wins over the context's; "local" is the data directory.
    other = contexts.resolve(None, "cct_other", None, False, config)
    assert other is not None and other.token == "cct_other"
    assert contexts.resolve(None, None, "local", True, config) is None


def test_a_token_in_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        f'[contexts.prod]\nserver = "https://cc.example.com"\ntoken = "{TOKEN}"\n',
        0o640,
    )
    with pytest.raises(ConfigError, match=r"holds a token and others may read it \(mode 0640\)"):
        contexts.load(path)
    path.chmod(0o600)
    assert contexts.load(path).contexts["prod"].token == TOKEN


def test_server_flag_never_takes_a_token_from_the_file(tmp_path: Path) -> None:
    config = ClientConfig("prod", {"prod": Context("prod", "https://a.example", TOKEN)})
    target = contexts.resolve("https://elsewhere.example", None, None, False, config)
    assert target == Target("https://elsewhere.example", None, None, explicit=True)
    with pytest.raises(InvalidInput, match="--server or --context, not both"):
        contexts.resolve("https://elsewhere.example", None, "prod", True, config)


def test_a_token_goes_over_https_or_to_loopback_only() -> None:
    config = ClientConfig()
    with pytest.raises(ConfigError, match="over https only"):
        contexts.resolve("http://cc.example.com", TOKEN, None, False, config)
    for local in ("http://127.0.0.1:41000", "http://localhost:41000", "http://[::1]:41000"):
        target = contexts.resolve(local, TOKEN, None, False, config)
        assert target is not None and target.token == TOKEN


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("current_context = 3\n", "current_context is not a string"),
        ("[contexts.prod]\nserver = 'ftp://x'\n", "http:// or https://"),
        ("[contexts.prod]\nservr = 'https://x'\n", "unknown setting 'servr'"),
        ("[contexts.prod]\ntoken_file = 'f'\n", "has no server"),
        ("[contexts.local]\nserver = 'https://x'\n", "'local' is the data directory"),
        ("[contexts.prod]\nserver = 'https://u:p@x'\n", "no credentials in the URL"),
        ("[contexts]\nprod = 1\n", "is not a table"),
        ("[contexts.'a b']\nserver = 'https://x'\n", "letters, digits"),
        ("current_context = \n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError, match=message) as exc:
        contexts.load(path)
    assert "\n" not in str(exc.value)


def test_unknown_context_names_the_known(tmp_path: Path) -> None:
    config = ClientConfig(None, {"prod": Context("prod", "https://x")})
    with pytest.raises(ConfigError, match=r"no context 'stage' \(contexts: prod, and local\)"):
        contexts.resolve(None, None, "stage", True, config)


def test_save_then_load_round_trips_and_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    config = ClientConfig(
        "b",
        {
            "a": Context("a", "https://a.example", None, str(tmp_path / 'tok "1"')),
            "b": Context("b", "http://127.0.0.1:41001", TOKEN),
        },
    )
    contexts.save(path, config)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert contexts.load(path) == config
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]


@given(
    name=st.from_regex(contexts.CONTEXT_NAME, fullmatch=True),
    server=st.sampled_from(["https://a.example", "http://127.0.0.1:41002/cc"]),
    token=st.one_of(st.none(), st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True)),
    token_file=st.one_of(st.none(), st.text(min_size=1, max_size=40).map(lambda s: "/" + s)),
)
def test_any_context_saved_loads_back(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    server: str,
    token: str | None,
    token_file: str | None,
) -> None:
    if name == contexts.LOCAL or (token is not None and token_file is not None):
        return
    if token_file is not None and ("\x00" in token_file or "\r" in token_file):
        return
    path = tmp_path_factory.mktemp("cfg") / "config.toml"
    config = ClientConfig(name, {name: Context(name, server, token, token_file)})
    contexts.save(path, config)
    loaded = contexts.load(path)
    assert loaded.current == name
    got = loaded.contexts[name]
    assert (got.server, got.token) == (server, token)
    if token_file is not None:
        assert got.token_file == str(path.parent / Path(token_file))


@given(st.text(max_size=300))
def test_any_server_text_is_a_url_or_one_line(text: str) -> None:
    try:
        url = contexts.check_server(text)
    except InvalidInput as exc:
        message = str(exc)
    else:
        message = ""
        assert url.startswith(("http://", "https://")) and not url.endswith("/")
    assert "\n" not in message


def test_config_path_follows_the_environment(tmp_path: Path) -> None:
    assert contexts.config_path({"COMPUTECTL_CLIENT_CONFIG": str(tmp_path / "c.toml")}) == (
        tmp_path / "c.toml"
    )
    assert contexts.config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "computectl" / "config.toml"
    )


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from compute.cli.main import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main(args)
    out, err = capsys.readouterr()
    return int(ended.value.code or 0), out, err


def test_contexts_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "client" / "config.toml"
    monkeypatch.setenv("COMPUTECTL_CLIENT_CONFIG", str(path))
    monkeypatch.delenv("COMPUTECTL_CONTEXT", raising=False)
    token = write(tmp_path / "t", TOKEN)
    code, out, _ = cli(["contexts", "set", "prod", "--server", "https://cc.example.com/"], capsys)
    assert code == 0 and out.startswith("context prod: https://cc.example.com\n")
    code, _, err = cli(["contexts", "use", "stage"], capsys)
    assert code == 2 and err == "error: no context 'stage' (contexts: prod, and local)\n"
    # A token file for a server over plain http elsewhere: refused, nothing written.
    args = ["contexts", "set", "lab", "--server", "http://10.0.0.1", "--token-file", str(token)]
    code, _, err = cli(args, capsys)
    assert code == 2 and "over https only" in err
    args = [
        "contexts",
        "set",
        "lab",
        "--server",
        "http://127.0.0.1:41003",
        "--token-file",
        str(token),
    ]
    code, _, _ = cli(args, capsys)
    assert code == 0
    assert cli(["contexts", "use", "lab"], capsys)[:2] == (0, "current context: lab\n")
    code, out, _ = cli(["contexts", "list", "-o", "json"], capsys)
    listed = json.loads(out)
    assert listed["current_context"] == "lab"
    assert [c["name"] for c in listed["contexts"]] == ["prod", "lab"]
    assert listed["contexts"][1]["token_file"] == str(token.resolve())
    assert TOKEN not in path.read_text() and (path.stat().st_mode & 0o777) == 0o600
    # A command here-only refuses the context named on the command line, in one line.
    code, _, err = cli(["--context", "lab", "config", "show"], capsys)
    assert code == 2 and err.count("\n") == 1 and "works here only" in err
