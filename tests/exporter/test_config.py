"""The configuration and web configuration files: what is refused, and how the refusal reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from obsbundle.errors import InputError
from obsbundle.exporters.config import ExporterConfig, load_config
from obsbundle.exporters.credentials import Secret, scrub
from obsbundle.exporters.webconfig import load_web_config
from tests.exporter.conftest import write_config

PG = {"name": "main", "host": "db", "user": "monitor"}


def problems_of(tmp_path: Path, data: Any) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_config(write_config(tmp_path, data))
    return [str(problem) for problem in caught.value.problems]


def test_a_minimal_configuration_gets_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, {"postgres": [PG]}))
    source = config.postgres[0]
    assert (source.port, source.dbname, source.sslmode, source.application_name) == (
        5432, "postgres", "prefer", "obsbundle-exporter")
    assert (config.timeout_seconds, config.margin_seconds) == (10.0, 0.5)


def test_an_inline_password_is_refused_without_repeating_it(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"postgres": [{**PG, "password": "hunter2-inline"}]})
    assert problems == [
        f"{tmp_path / 'exporter.yaml'}: postgres[0].password: passwords are never written in the configuration: "
        "put it in a file named by password_file (e.g. a mounted Secret) or in an environment variable named by "
        "password_env"
    ]
    assert "hunter2" not in problems[0]


def test_a_password_file_that_cannot_be_read_is_named_with_its_key_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.password"
    problems = problems_of(tmp_path, {"pgbouncer": [{**PG, "password_file": str(missing)}]})
    assert problems == [
        f"{tmp_path / 'exporter.yaml'}: pgbouncer[0].password_file: cannot read the password file {missing}: "
        "FileNotFoundError"
    ]


def test_an_unset_password_variable_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OBSBUNDLE_TEST_UNSET", raising=False)
    problems = problems_of(tmp_path, {"postgres": [{**PG, "password_env": "OBSBUNDLE_TEST_UNSET"}]})
    assert problems == [
        f"{tmp_path / 'exporter.yaml'}: postgres[0].password_env: the environment variable OBSBUNDLE_TEST_UNSET "
        "is not set"
    ]


def test_a_password_in_both_places_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pg.password"
    secret.write_text("x", encoding="utf-8")
    problems = problems_of(tmp_path, {"postgres": [{**PG, "password_file": str(secret), "password_env": "PG"}]})
    assert problems == [
        f"{tmp_path / 'exporter.yaml'}: postgres[0]: give the password either in password_file or in "
        "password_env, not both"
    ]


def test_source_names_are_unique_across_kinds_because_they_are_the_source_label(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {"postgres": [PG],
                                      "redis": [{"name": "main", "url": "redis://r:6379/0", "queues": ["a"]}]})
    assert problems == [
        f"{tmp_path / 'exporter.yaml'}: redis[0].name: 'main' is already the name of postgres[0]: the name is "
        "the `source` label, so give each source its own"
    ]


def test_urls_with_credentials_are_refused_and_the_password_is_not_repeated(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {
        "rabbitmq": [{"name": "b", "url": "http://monitor:s3cret-in-url@rabbit:15672", "user": "monitor"}],
        "redis": [{"name": "r", "url": "redis://:s3cret-in-url@redis:6379/0", "queues": ["celery"]}],
    })
    assert len(problems) == 2
    assert "rabbitmq[0].url: must not hold credentials" in problems[0]
    assert "redis[0].url: must not hold a password" in problems[1]
    assert not [problem for problem in problems if "s3cret" in problem]


def test_unknown_keys_and_bad_values_are_each_reported(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, {
        "timeout": "soon",
        "postgres": [{**PG, "prot": 5432}],
        "postgres_queues": [{**PG, "name": "jobs", "dbname": "app", "table": "jobs", "status_column": "status",
                             "ready_statuses": ["queued"], "running_statuses": ["queued"]}],
    })
    file = tmp_path / "exporter.yaml"
    assert problems == [
        f"{file}: timeout: 'soon' is not a Prometheus duration: use a number and a unit, e.g. 30s, 5m, 1h, 30d "
        "(got 'soon')",
        f"{file}: postgres[0].prot: unknown key 'prot': remove it or fix its spelling",
        f"{file}: postgres_queues[0]: statuses ['queued'] are in both ready_statuses and running_statuses: "
        "keep each in one",
    ]


def test_a_file_without_sources_or_with_a_margin_past_the_timeout_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "exporter.yaml"
    assert problems_of(tmp_path, {}) == [
        f"{file}: (top level): configures no source: add at least one under postgres, pgbouncer, rabbitmq, redis, "
        "postgres_queues"
    ]
    assert problems_of(tmp_path, {"timeout": "1s", "timeout_margin": "1s", "postgres": [PG]}) == [
        f"{file}: (top level): timeout_margin (1s) must be shorter than timeout (1s)"
    ]


def test_a_web_config_with_a_plain_password_instead_of_a_hash_is_refused_without_repeating_it(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path, {"basic_auth_users": {"prometheus": "plain-secret"}}, "web.yaml")
    with pytest.raises(InputError) as caught:
        load_web_config(path)
    [problem] = [str(problem) for problem in caught.value.problems]
    assert problem.startswith(f"{path}: basic_auth_users: the entry of user 'prometheus' is not a bcrypt hash")
    assert "plain-secret" not in problem


def test_a_web_config_naming_missing_tls_files_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"tls_server_config": {"cert_file": str(tmp_path / "tls.crt"),
                                                         "key_file": str(tmp_path / "tls.key")}}, "web.yaml")
    with pytest.raises(InputError) as caught:
        load_web_config(path)
    assert [str(problem) for problem in caught.value.problems] == [
        f"{path}: tls_server_config.cert_file: no such file (got '{tmp_path / 'tls.crt'}')"
    ]


def test_a_valid_web_config_loads_its_users(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    config, context = load_web_config(write_config(tmp_path, {"basic_auth_users": {"prometheus": hashed}}, "w.yaml"))
    assert config.basic_auth_users == {"prometheus": hashed}
    assert context is None


def test_the_command_exits_2_with_located_messages_and_no_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"postgres": [{**PG, "password": "hunter2-inline"}], "redis": "nope"})
    result = subprocess.run(
        [sys.executable, "-m", "obsbundle.exporters", "--config", str(config), "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {config}: postgres[0].password: passwords are never written")
    assert lines[1] == f"error: {config}: redis: must be a list (got 'nope')"


def test_a_malformed_listen_address_or_missing_config_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"postgres": [PG]})
    for argv, message in (
        (["--config", str(config), "--listen", "9187"], "error: --listen must be HOST:PORT"),
        (["--config", str(tmp_path / "absent.yaml")], "no such file"),
        ([], "the following arguments are required: --config"),
    ):
        result = subprocess.run([sys.executable, "-m", "obsbundle.exporters", *argv],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, argv
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_scrub_hides_known_secrets_and_credential_shapes() -> None:
    text = ("connect failed: host=db password=abc123 user=x; url http://u:pw-in-url@h:1/ "
            "Authorization: Basic dXNlcjpwYXNz and the literal tops3cret")
    assert scrub(text, [Secret("tops3cret")]) == (
        "connect failed: host=db password=*** user=x; url http://u:***@h:1/ "
        "Authorization: Basic *** and the literal ***"
    )
    assert repr(Secret("tops3cret")) == "Secret('***')"
    assert f"{Secret('tops3cret')}" == "Secret('***')"


def test_the_example_configuration_in_the_docs_is_accepted() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "exporter.md").read_text(encoding="utf-8")
    example = docs.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = ExporterConfig.model_validate(yaml.safe_load(example))
    assert [source.name for _, source in config.sources()] == ["postgresql", "pgbouncer", "rabbitmq", "redis", "jobs"]


RABBIT = {"name": "broker", "user": "monitor"}


@pytest.mark.parametrize(("url", "plugin"), [
    ("http://rabbitmq.shop.svc:15672", "http://rabbitmq.shop.svc:15692"),
    ("https://rabbitmq.shop.svc:15671/", "https://rabbitmq.shop.svc:15691"),
    ("http://[fd00::7]:15672", "http://[fd00::7]:15692"),
])
def test_rabbitmq_prometheus_is_looked_for_on_the_management_hosts_plugin_port(
    tmp_path: Path, url: str, plugin: str
) -> None:
    source = load_config(write_config(tmp_path, {"rabbitmq": [{**RABBIT, "url": url}]})).rabbitmq[0]
    assert (source.plugin_url, source.prometheus_plugin, source.queues) == (plugin, True, ())


def test_a_prometheus_url_given_is_used_as_written(tmp_path: Path) -> None:
    entry = {**RABBIT, "url": "http://rabbitmq:15672", "prometheus_url": "http://rabbitmq-metrics:9419/"}
    assert load_config(write_config(tmp_path, {"rabbitmq": [entry]})).rabbitmq[0].plugin_url == (
        "http://rabbitmq-metrics:9419")


def test_a_prometheus_url_with_credentials_a_path_or_twice_named_queues_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "exporter.yaml"
    problems = problems_of(tmp_path, {"rabbitmq": [
        {**RABBIT, "url": "http://r:15672", "prometheus_url": "http://scraper:s3cr3t-pw@r:15692"},
        {**RABBIT, "name": "b2", "url": "http://r:15672", "prometheus_url": "http://r:15692/metrics"},
        {**RABBIT, "name": "b3", "url": "http://r:15672", "queues": ["scan", "scan"]},
    ]})
    assert problems[0].startswith(f"{file}: rabbitmq[0].prometheus_url: must not hold credentials: "
                                  "rabbitmq_prometheus needs none")
    assert problems[1].startswith(f"{file}: rabbitmq[1].prometheus_url: must be the endpoint's root, without a path")
    assert problems[2] == f"{file}: rabbitmq[2]: queues lists 'scan' twice: list each once"
    assert len(problems) == 3
    assert not [problem for problem in problems if "s3cr3t-pw" in problem]
