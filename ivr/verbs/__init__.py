"""Menu verbs, one module each; ``VERBS`` maps the YAML name to its class."""

from ivr.verbs.base import Verb
from ivr.verbs.case_check import CaseCheck
from ivr.verbs.case_status import CaseStatus
from ivr.verbs.gather import Gather
from ivr.verbs.goto import Goto
from ivr.verbs.handoff import Handoff
from ivr.verbs.hangup import Hangup
from ivr.verbs.judge_transfer import JudgeTransfer
from ivr.verbs.kb_answer import KbAnswer
from ivr.verbs.listen import Listen
from ivr.verbs.pause import Pause
from ivr.verbs.play import Play
from ivr.verbs.record import Record
from ivr.verbs.repeat import Repeat
from ivr.verbs.say import Say

VERBS: dict[str, type[Verb]] = {
    v.name: v for v in (Play, Say, Gather, Listen, KbAnswer, Goto, Repeat, Pause, Handoff, Record, Hangup, CaseCheck,
                        CaseStatus, JudgeTransfer)
}

__all__ = ["VERBS", "Verb"]
