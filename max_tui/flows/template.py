"""Send an approved WhatsApp template (F8), the way to reach a customer outside the 24 h window.

The dialog lists the templates in the customer's language as far as MAX knows it: the language of
the last template sent in this conversation, else of the last one sent in the customer's
earlier conversations (the few most recent), else the agent's own last choice. MAX keeps no
language per customer, team or WhatsApp number, so there is no default beyond these; the agent
can always pick another language or "All languages".
"""

from __future__ import annotations

from max_server.client import ApiError
from max_server.schemas import ConversationPublic
from max_tui.dialogs.template import TemplateDialog, template_language
from max_tui.flows.base import Flow
from max_tui.formatting import window_open
from max_tui.widgets.context import ContextPane

LANGUAGE_PREFERENCE = "template_language"
EARLIER_CONVERSATIONS = 3  # how many of the customer's earlier conversations are looked at


class TemplateFlow(Flow):
    def start(self) -> None:
        conversation = self.screen.need_current()
        if conversation is None:
            return
        if conversation.channel != "whatsapp":
            self.screen.notify("Templates are for WhatsApp conversations.", severity="warning")
            return
        self.run("template", self._send, conversation)

    async def language(self, conversation: ConversationPublic) -> tuple[str | None, str]:
        """The language to list first, and where it comes from."""
        thread = self.screen.thread
        if thread.conversation_id == conversation.id:
            here = template_language(thread.messages)
            if here:
                return here, "as the last template in this conversation"
        document = self.screen.query_one(ContextPane).document
        if document is not None and document.customer.id == conversation.customer.id:
            earlier = [c for c in document.previous_conversations if c.id != conversation.id]
            for previous in earlier[:EARLIER_CONVERSATIONS]:  # newest first
                try:
                    messages, _ = await self.api.messages(previous.id)
                except ApiError:
                    continue
                found = template_language(messages)
                if found:
                    return found, f"as the last template to this customer (#{previous.number})"
        last = self.ctx.prefs.get(LANGUAGE_PREFERENCE)
        if isinstance(last, str) and last:
            return last, "your last choice"
        return None, ""

    async def _send(self, conversation: ConversationPublic) -> None:
        try:
            templates = await self.api.approved_templates(conversation.channel_account_id)
        except ApiError as exc:
            self.screen.notify(exc.message, title="No templates", severity="error")
            return
        if not templates:
            self.screen.notify("No approved template on this WhatsApp number yet.", severity="warning")
            return
        title = f"Send a template to {conversation.customer.name or 'the customer'} (#{conversation.number})"
        if not window_open(conversation, self.ctx.now()):
            title += " · the 24 h window is closed"
        language, why = await self.language(conversation)
        choice = await self.screen.app.push_screen_wait(TemplateDialog(title, templates, language, why))
        if choice is None:
            return
        self.ctx.remember(LANGUAGE_PREFERENCE, choice.language)
        try:
            message = await self.api.send_template(
                conversation.id, choice.name, choice.language, choice.parameters, choice.header_parameters
            )
        except ApiError as exc:
            self.screen.notify(exc.message, title="Template not sent", severity="error")
            return
        self.screen.notify(f"Template {choice.name} sent", timeout=3)
        await self.screen.show_new_message(message)
