"""A profile cache shared by the event loop and worker threads."""

import threading


class ProfileCache:
    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.entries = {}

    def load(self, user_id):
        with self.lock:
            return self.entries.get(user_id)

    async def warm(self, user_ids, fetch):
        for user_id in user_ids:
            if user_id in self.entries:
                continue
            profile = await fetch(user_id)
            self.entries[user_id] = profile
