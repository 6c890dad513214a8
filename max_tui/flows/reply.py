"""Sending what the agent typed (Enter in the composer), resending a failed send (Ctrl+R), and the
conversation actions behind F2–F7 and Ctrl+F: ask what is needed (a dialog), call the API, show
the result."""

from __future__ import annotations

from max_server.client import ApiError
from max_server.schemas import ConversationPublic, MessagePublic
from max_tui.actions import done_message, perform
from max_tui.dialogs.confirm import ConfirmDialog
from max_tui.dialogs.search import SearchDialog
from max_tui.flows.base import Flow
from max_tui.state import RESENT, activity
from max_tui.widgets.composer import WINDOW_CLOSED

MAX_REPLY = 4096
OWN_CHANGE_SECONDS = 2.0  # how long a change we made ourselves is not announced back to us


class ReplyFlow(Flow):
    def submitted(self, conversation_id: str | None, typed: str) -> None:
        conversation = self.ctx.store.get(conversation_id) if conversation_id else None
        text = typed.strip()
        composer = self.screen.composer
        if conversation is None or not text or composer.sending:
            return
        blocked = self.screen.blocked(conversation)
        if blocked is not None:
            composer.set_blocked(blocked)
            self.screen.notify(blocked, severity="warning")
            return
        if len(text) > MAX_REPLY:
            self.screen.notify(f"A message may have at most {MAX_REPLY} characters.", severity="warning")
            return
        self.run("send", self.send, conversation.id, typed)

    def _own_change(self, conversation_id: str) -> None:
        acting = self.screen.acting_on
        acting.add(conversation_id)
        self.screen.set_timer(OWN_CHANGE_SECONDS, lambda: acting.discard(conversation_id))

    async def send(self, conversation_id: str, text: str) -> None:
        composer = self.screen.composer
        composer.set_sending(True)
        self._own_change(conversation_id)  # a reply takes the conversation: no "assigned" toast
        try:
            message = await self.api.reply(conversation_id, text.strip())
        except ApiError as exc:
            if exc.code == "whatsapp_window_closed":
                held = self.ctx.store.get(conversation_id)
                if held is not None:
                    self.ctx.store.upsert(held.model_copy(update={"window_open": False}))
                composer.set_blocked(WINDOW_CLOSED)
            self.screen.notify(f"Not sent: {exc.message}", severity="error")
            return
        finally:
            composer.set_sending(False)
        if composer.conversation_id == conversation_id and composer.text == text:
            composer.clear()
        else:
            self.ctx.drafts.set(conversation_id, "")
            self.ctx.drafts_changed()
        self.screen.canned.sent(conversation_id)
        await self.screen.show_new_message(message)

    def act(self, verb: str) -> None:
        conversation = self.screen.need_current()
        if conversation is not None:
            self.run("actions", self._act, verb, conversation)

    async def _act(self, verb: str, conversation: ConversationPublic) -> None:
        self._own_change(conversation.id)
        try:
            changed = await perform(verb, conversation, self.api, self.screen.app.push_screen_wait)
        except ApiError as exc:
            self.screen.notify(exc.message, title="Not done", severity="error")
            return
        if changed is None:
            return  # cancelled in its dialog
        self.screen.conversation_changed(changed)
        self.screen.notify(done_message(verb, changed), timeout=3)

    def resend(self) -> None:
        """Ctrl+R: the focused (or latest) failed or unknown message, sent again as a new one."""
        conversation = self.screen.need_current()
        if conversation is None:
            return
        message = self.screen.thread.resendable()
        if message is None:
            self.screen.notify("Nothing to resend: only failed or unknown sends can be.", severity="warning")
            return
        self.run("resend", self._resend, conversation.id, message, exclusive=True)

    async def _resend(self, conversation_id: str, message: MessagePublic) -> None:
        if message.delivery_status == "unknown":
            sure = await self.screen.app.push_screen_wait(
                ConfirmDialog(
                    "Resend this message?",
                    "Its send was interrupted: it may have reached the customer already. "
                    "Resending sends it again as a new message.",
                    confirm="Resend",
                )
            )
            if not sure:
                return
        self._own_change(conversation_id)  # a resend can take the conversation: no toast
        try:
            copy = await self.api.resend(conversation_id, message.id)
        except ApiError as exc:
            self.screen.notify(f"Not resent: {exc.message}", severity="error")
            return
        flagged = message.model_copy(update={"flags": [*message.flags, RESENT]})
        await self.screen.thread.add_or_update(flagged, self.ctx.now())
        await self.screen.show_new_message(copy)
        self.screen.notify("Sent again, as a new message", timeout=3)

    def search(self) -> None:
        self.run("search", self._search)

    async def _search(self) -> None:
        held = sorted(self.ctx.store.conversations.values(), key=activity, reverse=True)
        dialog = SearchDialog(self.api.search_conversations, held, self.ctx.tz)
        chosen = await self.screen.app.push_screen_wait(dialog)
        if chosen is not None:
            await self.screen.open_conversation(chosen, focus_composer=True)
