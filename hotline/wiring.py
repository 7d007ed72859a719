"""Builds each process's configuration from Settings (the composition root's only job)."""

from __future__ import annotations

from hotline.settings import Settings
from ivr.worker import WorkerConfig
from work_orders.calendar import WorkCalendar


def worker_config(s: Settings, index: int, single_port: int | None = None) -> WorkerConfig:
    """Worker ``index`` behind Kamailio, or (``single_port``) one worker listening on its own.

    Raises ``work_orders.calendar.CalendarError`` when ``work_orders.holiday_file`` cannot be read."""
    sip = s.sip
    if single_port is not None:
        host, port = sip.host, single_port
        contact = None
    else:
        host, port = sip.worker_host, sip.worker_port(index)
        front = sip.advertised_host or sip.host
        contact = f"<sip:12368@{front}:{sip.port}>"
    return WorkerConfig(
        name=sip.worker_name(index),
        sip=sip,
        ivr=s.ivr,
        bind_host=host,
        bind_port=port,
        rtp_port=sip.worker_rtp_port(index),
        spool_dir=s.path("spool"),
        hub_url=s.hub.url,
        hub_token=s.secret("worker_token"),
        register_accounts=index == 0,
        contact_override=contact,
        speech_urls=tuple(s.speech.ws_urls) if s.speech.enabled else (),
        speech_probe_s=s.speech.probe_interval_s,
        recordings_dir=s.files("recordings"),
        calendar=WorkCalendar.from_file(s.work_orders.holiday_file, tz=s.ivr.working_hours.timezone),
    )
