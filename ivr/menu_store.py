"""The running menu, reloaded when its file changes; an invalid edit is logged and ignored."""

from __future__ import annotations

from pathlib import Path

import structlog

from ivr.audio import PromptLibrary
from ivr.flow.menu import Menu, MenuError, load_menu

log = structlog.get_logger(__name__)


class MenuStore:
    def __init__(self, path: Path, prompts: PromptLibrary):
        self.path = path
        self.prompts = prompts
        self.current: Menu = load_menu(path, prompts)  # start-up: an invalid menu stops the worker
        self._stamp = self._stat()
        self.version = 1

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check(self) -> bool:
        """Reload if the file changed; True when a new menu took effect."""
        stamp = self._stat()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            menu = load_menu(self.path, self.prompts)
        except MenuError as e:
            log.error("menu_reload_rejected", file=str(self.path), problems=e.problems)
            return False
        self.current = menu
        self.version += 1
        log.info("menu_reloaded", file=str(self.path), version=self.version, nodes=len(menu.nodes))
        return True
