"""Send an approved WhatsApp template (F8), the way to reach a customer outside the 24 h window."""

from __future__ import annotations

from max_server.client import ApiError
from max_server.schemas import ConversationPublic
from max_tui.dialogs.template import TemplateDialog
from max_tui.flows.base import Flow
from max_tui.formatting import window_open

LANGUAGE_PREFERENCE = "template_language"


class TemplateFlow(Flow):
    def start(self) -> None:
        conversation = self.screen.need_current()
        if conversation is None:
            return
        if conversation.channel != "whatsapp":
            self.screen.notify("Templates are for WhatsApp conversations.", severity="warning")
            return
        self.run(self._send(conversation), "template")

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
        language = self.ctx.prefs.get(LANGUAGE_PREFERENCE)
        choice = await self.screen.app.push_screen_wait(
            TemplateDialog(title, templates, language if isinstance(language, str) else None)
        )
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
