"""The ``[cases]`` settings section: which case system answers, and the verification lock-out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["demo", "http"] = Field(
        "demo", description="demo: cases in the hotline's database (hotline cases import); http: the court's "
                            "case system at 'url'")
    url: str | None = Field(None, description="base URL of the court's case system (backend http), e.g. "
                                              "https://cases.court.example/api/12368")
    token: str | None = Field(None, description="bearer token sent to the case system (backend http)")
    timeout_s: float = Field(3.0, gt=0, le=30, description="per request (connect and read) to the case system")
    retries: int = Field(2, ge=0, le=5, description="extra attempts of a GET after a connection error or a 5xx "
                                                    "(verification POSTs are never repeated)")
    retry_backoff_s: float = Field(0.2, ge=0, le=5, description="pause before the first retry; doubles each time")
    load_demo: bool = Field(False, description="load the bundled demo cases into an empty demo store on first "
                                               "start (their 查询密码 are public: demos and tests only)")
    verify_max_failures: int = Field(3, ge=1, le=20,
                                     description="wrong secrets before verification by phone is locked for the "
                                                 "rest of the day (court's time zone)")
    lock_scope: Literal["both", "caller", "case"] = Field(
        "both", description="what the failures are counted against: the calling number, the case, or both "
                            "(either one locks)")
    verified_minutes: float = Field(30.0, gt=0, le=240,
                                    description="a successful verification lets the same call read the case "
                                                "this long (menus 1, 3 and 4 without asking again)")

    @model_validator(mode="after")
    def _http_needs_url(self) -> CaseSettings:
        if self.backend == "http" and not self.url:
            raise ValueError("cases.url is required when cases.backend is 'http'")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("cases.url must start with http:// or https://")
        return self
