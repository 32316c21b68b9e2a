"""Route each reply to the messenger of its chat's channel."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from conversations.masking import mask_chat
from conversations.messages import Reply
from conversations.model import ChatKey
from conversations.ports import Contact, Messenger

logger = logging.getLogger(__name__)


class ChannelRouter:
    """A Messenger over several channels; unconfigured channels are logged, dropped."""

    def __init__(self, by_channel: Mapping[str, Messenger]) -> None:
        self._by_channel = dict(by_channel)

    async def send(
        self, key: ChatKey, reply: Reply, *, answering: bool = False, contact: Contact | None = None
    ) -> str | None:
        messenger = self._by_channel.get(key.channel.value)
        if messenger is None:
            logger.warning("no messenger for %s: reply dropped", mask_chat(key))
            return None
        return await messenger.send(key, reply, answering=answering, contact=contact)
