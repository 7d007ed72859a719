"""Settings: TOML file + HOTLINE_* environment, errors that name the key, the example in sync."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hotline.example_config import render
from hotline.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for k in list(os.environ):
        if k.startswith("HOTLINE_"):
            monkeypatch.delenv(k)


def test_the_example_file_is_what_the_code_generates():
    assert (ROOT / "hotline.example.toml").read_text(encoding="utf-8") == render()


def test_file_values_and_environment_override(tmp_path, monkeypatch):
    cfg = tmp_path / "h.toml"
    cfg.write_text('home = "/srv/hotline"\n[sip]\nport = 5080\nworkers = 3\nacl = ["10.1.0.0/16"]\n'
                   '[hub]\nport = 9000\n', encoding="utf-8")
    s = load_settings(cfg)
    assert (s.sip.port, s.sip.workers, s.hub.port, str(s.home)) == (5080, 3, 9000, "/srv/hotline")
    assert s.sip.allows("10.1.2.3:5060") and not s.sip.allows("10.2.0.1") and not s.sip.allows("junk")
    assert s.db_url == "sqlite:////srv/hotline/hotline.db"
    monkeypatch.setenv("HOTLINE_SIP__PORT", "5090")
    monkeypatch.setenv("HOTLINE_HUB__COOKIE_SECURE", "false")
    s = load_settings(cfg)
    assert s.sip.port == 5090 and s.sip.workers == 3 and s.hub.cookie_secure is False


@pytest.mark.parametrize("text,needle", [
    ("[sip]\nport = 70000\n", "key 'sip.port' (or $HOTLINE_SIP__PORT): Input should be less than or equal to 65535"),
    ("[sip]\nmax_calls_per_worker = 8\n", "key 'sip.max_calls_per_worker'"),
    ("[sip]\ncodecs = ['PCMA']\n", "key 'sip.codecs'"),
    ("[sip]\nacl = ['10.0.0.0/33']\n", "key 'sip.acl.0'"),
    ("[ivr]\nmenu_fil = 'x'\n", "key 'ivr.menu_fil' (or $HOTLINE_IVR__MENU_FIL): unknown key"),
    ("[sip\n", "not valid TOML"),
])
def test_bad_settings_name_the_file_and_key(tmp_path, text, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as e:
        load_settings(cfg)
    assert str(e.value).startswith(str(cfg)) and needle in str(e.value)
    if "TOML" not in needle:  # the line of the offending key is named too
        assert str(e.value).startswith(f"{cfg}:2:"), str(e.value)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("HOTLINE_SIP__WORKERS", "many")
    with pytest.raises(SettingsError, match=r"\$HOTLINE_SIP__WORKERS"):
        load_settings(None)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize("text,old,new", [
    ("[hub]\nholidays = [2026-10-01]\n", "hub.holidays", "'holidays' list"),
    ("[hub]\nextra_workdays = [2026-09-27]\n", "hub.extra_workdays", "'workdays' list"),
    ("[ivr.working_hours]\nholidays = [2026-10-01]\n", "ivr.working_hours.holidays", "'holidays' list"),
    ("[ivr.working_hours]\ndays = [1, 2, 3, 4, 5, 6]\n", "ivr.working_hours.days", "'workdays' list"),
])
def test_working_days_have_one_home_and_old_keys_say_where(tmp_path, text, old, new):
    """The IVR's working hours and the work-order deadlines share one calendar: China's official schedule plus
    work_orders.holiday_file. The lists that used to sit in [hub] and [ivr.working_hours] are refused, naming it."""
    cfg = tmp_path / "old.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as e:
        load_settings(cfg)
    assert f"'{old}' is gone" in str(e.value) and "work_orders.holiday_file" in str(e.value) and new in str(e.value)


def test_the_holiday_file_is_checked_and_the_worker_and_the_hub_read_the_same_days(tmp_path):
    from fastapi import FastAPI
    from typer.testing import CliRunner

    from agent_console.app import work_order_context
    from hotline.cli import app
    from hotline.hub_main import hub_config
    from hotline.wiring import worker_config

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("holidays: [2027-02-08]\nworkdays: [2027-02-06]\n", encoding="utf-8")
    bad.write_text("holidays: [2027-02-30]\n", encoding="utf-8")
    for f, code in ((good, 0), (bad, 2)):
        cfg = tmp_path / f"{f.stem}.toml"
        cfg.write_text(f'home = "{tmp_path / "home"}"\n[work_orders]\nholiday_file = "{f}"\n', encoding="utf-8")
        r = CliRunner().invoke(app, ["config", "check", "--config", str(cfg)])
        assert r.exit_code == code, r.output
    assert "holidays[0]" in r.output and "work_orders.holiday_file" in r.output
    s = load_settings(tmp_path / "good.toml")
    ivr = worker_config(s, 0).calendar  # the worker's after-hours decision
    hub = work_order_context(FastAPI(), hub_config(s)).calendar  # the hub's due dates and callbacks
    for day, working in ((date(2027, 2, 8), False), (date(2027, 2, 6), True), (date(2026, 10, 1), False),
                         (date(2026, 9, 27), False), (date(2026, 10, 10), True)):  # file, then China's schedule
        assert ivr.is_workday(day) == hub.is_workday(day) == working, day
