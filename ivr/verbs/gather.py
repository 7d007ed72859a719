from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ivr.flow.outcomes import Goto, Hangup, Repeat
from ivr.hearing import can_listen, hear_or_key
from ivr.kb_phrases import DIALOG_PROMPTS
from ivr.keypad import EntryOptions, collect_keys
from ivr.menu_speech import NOT_UNDERSTOOD_PROMPT, understand
from ivr.verbs.base import DIGITS, Verb

REPEAT = "repeat"


class MenuChoice(BaseModel):
    """A menu option with what callers say for it: ``{node: complaint, title: 投诉信访, phrases: [我要投诉, …]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: str = Field(min_length=1, description="the node it leads to, or 'repeat'")
    title: str | None = Field(None, min_length=1, max_length=16, description="its short spoken name (lists)")
    phrases: list[str] = Field(default_factory=list, max_length=50,
                               description="example utterances the matcher ranks the option by")

    @field_validator("phrases")
    @classmethod
    def _phrases(cls, v: list[str]) -> list[str]:
        for p in v:
            if not p.strip() or len(p) > 50:
                raise ValueError(f"phrase {p!r} must be 1-50 characters")
        return [p.strip() for p in v]


class Gather(Verb):
    """Collect keypad digits: a menu choice (``choices``) or a value (``store``).

    The prompt is interruptible: a digit pressed during it (or typed ahead during an earlier
    prompt) counts as input. A wrong entry plays ``invalid_prompt``, silence ``no_input_prompt``;
    after ``retries`` extra attempts the flow goes to ``on_failure`` (default: hang up politely).

    With ``speech: true`` (a menu, and the speech service there) the caller may also say what they want while
    the prompt plays and after it: keys and speech are taken at once (a key wins). What was said goes to the
    hub's matcher with the options' titles and phrases: an option leads to its node; a question the knowledge
    base knows is answered (or confirmed / clarified) right there, as in 诉讼咨询, with ``kb_handoff`` as the
    node for what it cannot settle; anything unclear plays ``not_understood_prompt`` and counts as a retry.
    See ivr/menu_speech.py.
    """

    name = "gather"

    prompt: str | list[str] | None = None
    choices: dict[str, str | MenuChoice] | None = Field(None, description="digits -> node name (or 'repeat'), or a "
                                                                          "MenuChoice with title and phrases")
    store: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]*$", description="call variable to set")
    min_digits: int = Field(1, ge=1, le=64)
    max_digits: int | None = Field(None, ge=1, le=64)
    terminator: str | None = "#"
    pattern: str | None = Field(None, description="regular expression the whole entry must match")
    timeout: float = Field(6.0, gt=0, le=60, description="seconds to wait for the first digit")
    inter_digit_timeout: float = Field(4.0, gt=0, le=60)
    retries: int = Field(2, ge=0, le=10)
    invalid_prompt: str | None = "invalid_input"
    no_input_prompt: str | None = "no_input"
    failure_prompt: str | None = None
    on_failure: str | None = None
    speech: bool = Field(False, description="a menu that also listens: options (and questions) said")
    speech_prompt: str | None = Field(None, description="played before prompt while the menu listens "
                                                        "(请说出您要办理的业务，或按键选择)")
    kb_handoff: str | None = Field(None, description="with speech: the node for a question the knowledge base "
                                                     "could not settle; none: the menu takes no questions")
    not_understood_prompt: str | None = NOT_UNDERSTOOD_PROMPT
    goodbye_prompt: str | None = Field("goodbye", description="after a question answered at this menu")
    max_utterance_s: float = Field(10.0, gt=0, le=30)

    @field_validator("choices")
    @classmethod
    def _choice_keys(cls, v: dict[str, str | MenuChoice] | None) -> dict[str, str | MenuChoice] | None:
        if v is not None:
            if not v:
                raise ValueError("choices must not be empty")
            for key in v:
                if not key or set(key) - DIGITS:
                    raise ValueError(f"choice {key!r} must be keypad digits 0-9 * #")
        return v

    @field_validator("terminator")
    @classmethod
    def _terminator(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 or v not in DIGITS):
            raise ValueError("terminator must be one keypad key, e.g. '#'")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v

    @model_validator(mode="after")
    def _shape(self):
        if (self.choices is None) == (self.store is None):
            raise ValueError("gather needs exactly one of 'choices' (a menu) or 'store' (a value)")
        if self.max_digits is not None and self.max_digits < self.min_digits:
            raise ValueError("max_digits is smaller than min_digits")
        if (self.speech or self.kb_handoff) and self.choices is None:
            raise ValueError("speech and kb_handoff are for menus (choices)")
        if self.kb_handoff and not self.speech:
            raise ValueError("kb_handoff needs speech: true")
        return self

    def target(self, key: str) -> str:
        choice = (self.choices or {})[key]
        return choice.node if isinstance(choice, MenuChoice) else choice

    def outcome_for(self, key: str) -> Goto | Repeat:
        target = self.target(key)
        return Repeat() if target == REPEAT else Goto(target)

    @property
    def prompts(self) -> list[str]:
        if self.prompt is None:
            return []
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def limit(self) -> int:
        if self.max_digits is not None:
            return self.max_digits
        if self.choices is not None:
            return max(len(k) for k in self.choices)
        return 32

    def node_refs(self) -> list[str]:
        refs = [n for n in (self.target(k) for k in self.choices or {}) if n != REPEAT]
        return refs + [n for n in (self.on_failure, self.kb_handoff) if n]

    def prompt_refs(self) -> list[str]:
        extra = [self.invalid_prompt, self.no_input_prompt, self.failure_prompt]
        if self.speech:
            extra += [self.speech_prompt, self.not_understood_prompt, self.goodbye_prompt, *DIALOG_PROMPTS]
        return self.prompts + [p for p in extra if p]

    def _entry(self) -> EntryOptions:
        """How an entry ends: the terminator only where it can end one (a store, or a choice of several keys);
        a choice ends as soon as it is complete and no longer choice starts with it."""
        limit = self.limit
        choices = self.choices

        def complete(entry: str) -> bool:
            return choices is not None and entry in choices and not any(
                k != entry and k.startswith(entry) for k in choices)

        terminator = self.terminator if self.terminator and (self.store or limit > 1) else None
        return EntryOptions(limit, self.timeout, self.inter_digit_timeout, terminator=terminator, complete=complete)

    async def _collect(self, ctx, first: str | None = None) -> str:
        """The entry: digits until complete, the terminator or a pause. ``first``: a key already taken (and
        recorded) while listening; without it the prompts play first."""
        return await collect_keys(ctx, self.prompts, self._entry(), first)

    def _valid(self, entry: str) -> bool:
        if self.choices is not None:
            return entry in self.choices
        if len(entry) < self.min_digits:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, entry) is not None

    async def run(self, ctx):
        listening = self.speech and can_listen(ctx)
        for attempt in range(self.retries + 1):
            misheard = False  # the caller said something the menu could not place
            if listening:
                names = ([self.speech_prompt] if self.speech_prompt and attempt == 0 else []) + self.prompts
                reply = await hear_or_key(ctx, [ctx.prompts.get(p) for p in names], no_input_s=self.timeout,
                                          max_utterance_s=self.max_utterance_s)
                if reply.speech_down:
                    listening = False  # the recognizer is down or busy: keys only from now on
                if reply.kind == "speech":
                    outcome = await understand(ctx, self, reply.text, reply.confidence)
                    if outcome is not None:
                        return outcome
                    misheard = True
                entry = await self._collect(ctx, reply.key) if reply.kind == "key" else ""
            else:
                entry = await self._collect(ctx)
            if self._valid(entry):
                if self.store is not None:
                    ctx.vars[self.store] = entry
                    return None
                return self.outcome_for(entry)
            ctx.channel.flush_digits()
            if attempt == self.retries:
                break
            retry_prompt = self.invalid_prompt if entry else self.no_input_prompt
            if misheard:
                retry_prompt = self.not_understood_prompt
            if retry_prompt:
                await ctx.play(retry_prompt, barge_in=True)
        if self.failure_prompt:
            await ctx.play(self.failure_prompt, barge_in=False)
        return Goto(self.on_failure) if self.on_failure else Hangup("no_valid_input")
