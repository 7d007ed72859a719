"""Audio in -> text out: VAD endpointing, whisper finals, vosk partials, typed events.

Imports only ``zh_text`` of the project's packages; ``hotline`` wires it to settings and the CLI.
"""

from asr.errors import AsrError, AudioFormatError, ModelError
from asr.events import Final, NoInput, Partial, SpeechEvent, SpeechStarted, Timeout
from asr.settings import AsrSettings, EndpointSettings

__all__ = ["AsrError", "AsrSettings", "AudioFormatError", "EndpointSettings", "Final", "ModelError", "NoInput",
           "Partial", "SpeechEvent", "SpeechStarted", "Timeout"]
