"""Request handling for the user service."""

import asyncio
import threading

from .cache import ProfileCache


class UserService:
    def __init__(self, db, audit) -> None:
        self.db = db
        self.audit = audit
        self.current_user = None
        self.lock = threading.Lock()
        self.cache = ProfileCache(self.lock)

    async def handle(self, user_id):
        self.current_user = await self.db.load(user_id)
        await self.audit.record(user_id)
        return {"name": self.current_user.name}

    async def refresh(self, user_id):
        with self.lock:
            profile = await asyncio.to_thread(self.cache.load, user_id)
        return profile
