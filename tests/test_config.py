"""Tests of custseg.config: one validation for kwargs, flags and config files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from custseg.config import (
    CleanConfig,
    ClusterConfig,
    RunConfig,
    build_run_config,
    load_config_file,
    unknown_choice,
)
from custseg.errors import ConfigError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be at least 1, got 0."),
        ({"k": True}, "k must be an integer, got True."),
        ({"outliers": "mad"}, "Unknown outlier method 'mad'. Use one of zscore, iqr, none."),
        ({"transform": "sqrt"}, "Unknown transform 'sqrt'. Use none or log."),
        (
            {"select": "gap"},
            "Unknown selection 'gap'. Use one of auto, knee, merge-gap, bic, silhouette, backtest.",
        ),
        ({"select": "bic"}, "--select bic does not apply to --method kmeans; use auto or knee"),
        ({"method": "rfm-scores", "k": 3}, "--k does not apply to --method rfm-scores"),
        ({"n_init": 0}, "n_init must be an integer of at least 1, got 0."),
        ({"silhouette_sample": 1}, "silhouette_sample must be an integer of at least 2, got 1."),
        ({"z_threshold": -1.0}, "z_threshold must be positive, got -1. Use e.g. 3."),
        ({"kk": 3}, "Unknown key 'kk'."),
    ],
)
def test_cluster_config_refuses_bad_values_in_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClusterConfig(**kwargs)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_k_values_must_increase_and_accept_numpy_integers() -> None:
    assert ClusterConfig(k_values=np.arange(2, 5)).k_values == (2, 3, 4)
    with pytest.raises(ConfigError, match=r"k_values must be increasing.*got \[3, 1\]"):
        ClusterConfig(k_values=[3, 1])


def test_typo_in_a_choice_gets_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"Did you mean 'zscore'\?"):
        ClusterConfig(outliers="zscor")
    assert unknown_choice("transform", "lg", ["none", "log"]).endswith("Did you mean 'log'?")
    assert "Did you mean" not in unknown_choice("transform", "xyz", ["none", "log"])


def test_clean_config_window_and_dates() -> None:
    assert CleanConfig(as_of="2011-12-10").as_of == dt.date(2011, 12, 10)
    with pytest.raises(ConfigError, match=r"'10/12/2011' is not a date\. Use YYYY-MM-DD"):
        CleanConfig(as_of="10/12/2011")
    with pytest.raises(ConfigError, match="--since 2021-02-01 is after --until 2021-01-01"):
        CleanConfig(since=dt.date(2021, 2, 1), until=dt.date(2021, 1, 1))
    with pytest.raises(ConfigError, match="--as-of 2021-01-01 is not after --since"):
        CleanConfig(since=dt.date(2021, 1, 1), as_of=dt.date(2021, 1, 1))


def test_settings_are_frozen_and_replace_validates() -> None:
    c = ClusterConfig()
    with pytest.raises(ValueError, match="frozen"):
        c.k = 3  # type: ignore[misc]
    assert c.replace(k=None) is c  # None means "not given"
    assert c.replace(k=4).k == 4
    with pytest.raises(ConfigError, match=r"^--k must be at least 1, got 0"):
        c.replace(label=lambda f: "--" + f, k=0)


def test_build_run_config_precedence(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[cluster]\ntransform = "log"\nk = 5\n[clean]\nexclude_codes = ["POST"]\n')
    config = build_run_config(config_file=path, cluster={"k": 3, "select": None})
    assert config.cluster.transform == "log"  # from the file
    assert config.cluster.k == 3  # the flag wins
    assert config.cluster.select == "backtest"  # the default
    assert config.clean.exclude_codes == ("POST",)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[cluster]\nkk = 3\n", r"Unknown key\(s\) \['kk'\] in \[cluster\] of the config file"),
        ("[cluster]\nk = 0\n", r"^\[cluster\] k in c\.toml must be at least 1, got 0"),
        ('[cluster]\noutliers = "mad"\n', r"Unknown outlier method 'mad'"),
        ('[clean]\nas_of = "soon"\n', r"^\[clean\] as_of in c\.toml 'soon' is not a date"),
        ("[extra]\na = 1\n", r"Unknown section\(s\) \['extra'\]"),
        ("[cluster\n", r"is not valid \.toml"),
        ('[names]\n"Champions" = 3\n', r"\[names\] 'Champions' in c\.toml must be a new name"),
        (
            '[names]\n"Champions" = { name = " " }\n',
            r"\[names\] 'Champions' name must be non-empty",
        ),
        ('[names]\n"Champions" = { colour = "red" }\n', r"Unknown key"),
        ("cluster = 3\n", r"\[cluster\] in config file .* must be a table"),
    ],
)
def test_config_file_errors_name_the_file_and_key(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config_file(path)
    assert "\n" not in str(info.value)


def test_config_file_json_and_names(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"names": {"Champions": "VIP", "Hibernating": {"action": "Wait."}}}))
    config = load_config_file(path)
    assert config.names == {"Champions": {"name": "VIP"}, "Hibernating": {"action": "Wait."}}


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Cannot read config file .*nope\.toml.*Check the path"):
        load_config_file(tmp_path / "nope.toml")


def test_run_config_round_trips_through_json() -> None:
    config = RunConfig(
        clean=CleanConfig(as_of=dt.date(2011, 12, 10), exclude_codes=("POST",)),
        cluster=ClusterConfig(k=4, transform="log"),
        names={"Champions": {"name": "VIP"}},
    )
    assert RunConfig.model_validate(json.loads(config.model_dump_json())) == config
    with pytest.raises(ConfigError, match=r"^cluster: k must be at least 1"):
        RunConfig.build({"cluster": {"k": 0}})


def test_aggregation_settings_from_a_file_and_written_only_when_set(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[clean]\nfrequency_unit = "days"\n')
    config = load_config_file(path)
    assert config.clean.frequency_unit == "days"
    assert config.clean.aggregation() == {
        "frequency_unit": "days",
        "returns": "drop",
        "monetary": True,
    }
    assert json.loads(config.clean.model_dump_json())["frequency_unit"] == "days"
    # a default stays out of the files, so a default run's summary.json is unchanged
    written = json.loads(CleanConfig().model_dump_json())
    assert not {"frequency_unit", "returns", "monetary"} & set(written)
    off = CleanConfig(returns="net", monetary=False)
    assert json.loads(off.model_dump_json()) | {} == {
        **written,
        "returns": "net",
        "monetary": False,
    }
    assert CleanConfig().replace(strict=True).frequency_unit == "orders"
    assert RunConfig.model_validate(json.loads(config.model_dump_json())) == config
    path.write_text('[clean]\nfrequency_unit = "weeks"\n')
    with pytest.raises(ConfigError, match=r"Unknown frequency unit 'weeks'. Use orders or days"):
        load_config_file(path)
