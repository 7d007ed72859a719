"""The recognizer's configuration section (``[asr]`` in hotline.toml, ``HOTLINE_ASR__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PROMPT = "以下是普通话的句子，关于法院立案、诉讼费、上诉、执行款、开庭和案件进度。"


class EndpointSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vad_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability that counts as speech")
    end_silence_ms: int = Field(600, ge=100, le=5000, description="silence after speech that ends an utterance")
    min_speech_ms: int = Field(250, ge=20, le=5000,
                               description="shorter bursts (clicks, coughs) are not utterances")
    max_utterance_s: float = Field(30.0, gt=0, le=120,
                                   description="an utterance is cut here; longer than window_s is decoded "
                                               "in windows cut at pauses")
    no_input_timeout_s: float = Field(8.0, gt=0, le=24 * 3600.0,
                                      description="NoInput when nobody speaks this long (a bridged call's "
                                                  "transcription: a day)")
    barge_in_ms: int = Field(60, ge=0, le=5000,
                             description="speech this long (under min_speech_ms) is told at once (speech_onset) so the "
                                         "IVR holds its prompt; the prompt resumes if it does not become an "
                                         "utterance (a cough). 0: off")
    pre_roll_ms: int = Field(1000, ge=0, le=2000,
                             description="audio kept before the detected speech onset; after seconds of a quiet line "
                                         "Silero finds an onset 0.4-0.8 s late (300 ms lost first words)")
    # 40: the decode (~0.45 s) starts at the first 100 ms chunk of silence, so its text is there before the 0.6 s
    # endpoint and a quick answer can end the turn (bench/speculation.py, two runs: final p50/p95 0.76-0.78 /
    # 0.89 s at 150 ms, 0.70-0.71 / 0.78-0.84 s at 40); rendered 10-40 s utterances with pauses: 42 of 110 wasted
    # at 40 and at 150
    speculative_ms: int = Field(40, ge=0, le=5000,
                                description="silence after which the final decode starts while the endpointer "
                                            "keeps listening (0: off); kept if the silence lasts to "
                                            "end_silence_ms, dropped if the caller goes on")


class AsrSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["whisper", "vosk"] = Field("whisper", description="recognizer of final text")
    model_dir: Path | None = Field(None, description="whisper-base CTranslate2 model; default <home>/models/"
                                                     "whisper-base, assembled by `hotline models install`")
    vosk_model_dir: Path | None = Field(None, description="vosk model (e.g. vosk-model-small-cn-0.22); when set "
                                                          "with engine=whisper, vosk gives the partials")
    vosk_grammar: list[str] | None = Field(None, description="vosk: recognize only these words/phrases")
    window_s: int = Field(10, ge=5, le=30, description="whisper encoder window (s); 10 costs a third of 30")
    # free text whose longest piece in a batch fits 1 s inside it: questions of 1.4-4 s decoded ~0.08 s sooner with
    # 7 than with 10 (80 rendered questions and sentences: CER 0.132 against 0.136; on the 30 questions 5 s and 6 s
    # read worse, 0.145 and 0.142 against 0.124). Spoken numbers keep window_s (their voting was tuned on it)
    short_window_s: int = Field(7, ge=0, le=30, description="whisper window (s) for short free text; 0: always "
                                                            "window_s")
    # 3, not whisper's usual 5: on 480 questions and sentences (30 + 50, each also faster, slower, in noise, 25 dB
    # quieter, through mu-law) CER 0.179 against 0.182 and the knowledge base's decisions as good, ~7 % less time a
    # decode (2026-12-08). Spoken numbers keep 5 hypotheses (NUMBER_HYPOTHESES) for their voting
    beam_size: int = Field(3, ge=1, le=10, description="whisper beam size for free text")
    # 2 lanes of 1 thread on 2 cores: a decode takes ~10 % longer than with 2 threads, but a partial re-decode no
    # longer holds up a caller's final, and two batches at once decode ~15 % more per second (bench/asr.py)
    decode_lanes: int = Field(2, ge=1, le=16, description="whisper decodes that run at once (model replicas)")
    cpu_threads: int = Field(1, ge=1, le=64, description="threads of one whisper decode (one lane)")
    # int8: on an AMD EPYC without AVX-512 VNNI float32 read more held-out phone numbers (7/16 against 3/16) at the
    # same speed on an idle CPU, but took 2-3x as long as int8 when one other process was busy (a call test's 5
    # callers got "busy"); int8 barely slowed
    compute_type: Literal["int8", "float32", "int8_float32"] = Field(
        "int8", description="whisper arithmetic: int8, or float32 (more exact, much slower on a shared CPU)")
    digit_reader: bool = Field(True, description="read spoken digit strings (phones, query codes, ID numbers) with "
                                                 "the CTC digit reader over whisper's encoder, not its decoder")
    initial_prompt: str = Field(DEFAULT_PROMPT, description="short Simplified-Chinese domain prompt for whisper")
    temperatures: list[float] = Field([0.0], min_length=1, max_length=3,
                                      description="decode temperatures tried in turn (bounded retries)")
    no_speech_threshold: float = Field(0.6, ge=0, le=1,
                                       description="drop text when no_speech_prob is above this ...")
    logprob_threshold: float = Field(-1.0, description="... and avg_logprob is below this")
    min_avg_logprob: float = Field(-1.5, description="drop text whose avg_logprob is below this in any case")
    partial_interval_ms: int = Field(200, ge=20, description="how often vosk partials are polled")
    partial_every_ms: int = Field(900, ge=0, le=10000,
                                  description="without vosk: re-decode the growing utterance this often at low "
                                              "priority for partial transcripts (0: off; skipped when busy)")
    partial_beam_size: int = Field(1, ge=1, le=10,
                                   description="beam of those partial re-decodes (display only): greedy is ~40 % "
                                               "faster, so one running when the caller stops delays the final less")
    endpoint: EndpointSettings = Field(default_factory=EndpointSettings)

    @model_validator(mode="after")
    def _check(self) -> AsrSettings:
        if self.engine == "vosk" and self.vosk_model_dir is None:
            raise ValueError("engine = 'vosk' needs vosk_model_dir")
        return self

    def whisper_dir(self, home: Path) -> Path:
        return self.model_dir if self.model_dir is not None else home / "models" / "whisper-base"
