"""Settings: TOML file, MAX_<SECTION>__<KEY> overrides, one-line errors, production checks."""

import tomllib
from pathlib import Path

import pytest

from max_server.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if (key.startswith("MAX_") and "__" in key) or key == "MAX_CONFIG":
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_no_config_runs_on_sqlite_in_the_user_data_dir(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'max' / 'max.db'}"
    assert settings.auto_migrate is True
    assert settings.storage_path == tmp_path / "data" / "max" / "media"


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[server]\nport = 9000\nhost = "0.0.0.0"\n[routing]\nreopen_window = "2h"\n')
    monkeypatch.setenv("MAX_SERVER__PORT", "9100")
    monkeypatch.setenv("MAX_WHATSAPP__APP_SECRET", "s3cr3t-value")
    settings = load_settings(path)
    assert settings.server.port == 9100  # environment wins
    assert settings.server.host == "0.0.0.0"  # the rest of the section survives
    assert settings.whatsapp.app_secret == "s3cr3t-value"
    assert settings.routing.reopen_window == 7200


def test_max_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_CONFIG", str(write(tmp_path, "[server]\nport = 9200\n")))
    assert load_settings().server.port == 9200


def test_client_and_test_variables_are_not_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "MAX_URL": "http://127.0.0.1:1",
        "MAX_TOKEN": "max_abc",
        "MAX_TEST_DATABASE_URL": "postgresql://x/y",
        "MAX_REQUIRE_POSTGRES": "1",
    }.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(write(tmp_path, "[server]\nport = 9300\n"))
    assert settings.server.port == 9300


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[server]\nportt = 1\n", "server.portt"),
        ('[server]\nport = "eighty"\n', "server.port"),
        ("[nope]\nx = 1\n", "nope"),
        ('[routing]\nreopen_window = "soon"\n', "routing.reopen_window"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_the_problem(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    message = str(caught.value)
    assert needle in message
    assert "\n" not in message


def test_unknown_environment_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_SERVER__PROT", "1")
    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_settings()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_production_refuses_default_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"server\.secret_key"):
        load_settings(write(tmp_path, '[server]\nenvironment = "production"\n'))
    strong = 'secret_key = "0123456789abcdef0123"\n'
    with pytest.raises(ConfigError, match=r"whatsapp\.app_secret"):
        load_settings(
            write(
                tmp_path, f'[server]\nenvironment = "production"\n{strong}[whatsapp]\nphone_number_id = "1"\n'
            )
        )
    ok = load_settings(write(tmp_path, f'[server]\nenvironment = "production"\n{strong}'))
    assert ok.server.environment == "production"


def test_example_config_documents_every_key_with_its_default() -> None:
    example = tomllib.loads((ROOT / "config.example.toml").read_text())
    defaults = Settings().model_dump()
    documented = {(section, key) for section, values in example.items() for key in values}
    # auto_migrate is documented commented out: unset means "by database kind".
    expected = {(section, key) for section, values in defaults.items() for key in values} - {
        ("database", "auto_migrate")
    }
    assert documented == expected
    assert "auto_migrate" in (ROOT / "config.example.toml").read_text()
    loaded = load_settings(ROOT / "config.example.toml")
    assert loaded.model_dump() == Settings().model_dump()


def test_s3_storage_needs_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"storage\.bucket"):
        load_settings(write(tmp_path, '[storage]\nbackend = "s3"\n'))
    assert (
        load_settings(write(tmp_path, '[storage]\nbackend = "s3"\nbucket = "media"\n')).storage.bucket
        == "media"
    )
