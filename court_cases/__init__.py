"""The court's case system, seen from the hotline: case records, an adapter interface and two backends.

- :mod:`court_cases.case`: :class:`CaseInfo` (what the hotline may know of a case) and its stages;
- :mod:`court_cases.numbers`: case numbers and short lookup numbers from text, speech or keypad;
- :mod:`court_cases.system`: the :class:`CaseSystem` interface and its errors;
- :mod:`court_cases.demo`: :class:`DemoCaseStore`, cases in the hotline's own database (salted hashes of the
  verification secrets only), filled by :mod:`court_cases.io` (``hotline cases import``);
- :mod:`court_cases.http`: :class:`HttpCaseSystem`, a court's real system over HTTP;
- :mod:`court_cases.guard`: verification attempts, counted per caller and per case, locks for the day;
- :mod:`court_cases.spoken`: the sentences the IVR speaks (status, read-back, apologies).

A leaf package: it may use ``zh_text`` and nothing else of the hotline.
"""

from court_cases.case import CaseInfo, Hearing, Party, Stage
from court_cases.system import CaseSystem, CaseSystemError, CaseSystemUnavailable

__all__ = ["CaseInfo", "CaseSystem", "CaseSystemError", "CaseSystemUnavailable", "Hearing", "Party", "Stage"]
