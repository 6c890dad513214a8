"""What ``max demo`` sets up, through the same services the API uses (so every row, audit entry
and derived value is what an administrator would have produced by hand): people, teams, hours,
SLA policies and targets, canned responses, skills, routing rules, a webhook subscription and
WhatsApp templates.

A data directory that was seeded before (``max demo --data DIR`` run again) is not seeded twice:
:func:`refresh` mints fresh tokens and points the subscription at this run's receiver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from max_server.access import Actor
from max_server.db import Database
from max_server.models import User, WebhookSubscription, WhatsAppTemplate
from max_server.schemas import (
    CannedResponseCreate,
    HoursSet,
    RoutingRuleCreate,
    SkillRequirement,
    SlaPolicySet,
    SlaTargetsSet,
    TeamCreate,
    TemplateCreate,
    UserCreate,
    WebhookSubscriptionCreate,
    WebhookSubscriptionUpdate,
)
from max_server.services import (
    canned,
    channels,
    hours,
    routing_rules,
    sla_policies,
    teams,
    templates,
    users,
    webhooks,
)
from max_server.settings import Settings

SYSTEM = Actor.system("max-demo")
TIMEZONE = "America/Mexico_City"
ADMIN_EMAIL = "admin@demo.example.com"
AGENT_EMAIL = "sofia@demo.example.com"
RECEIVER_DESCRIPTION = "max demo: the local receiver"
ALL_WEEK, WEEKDAYS = [0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4]
# The priority whose short first-response target the demo's urgent customer breaches (the target
# is an option of the demo: tests shorten it to see the breach happen).
SHORT_SLA_PRIORITY = "urgent"
SHORT_FRT_S = 60
SHORT_RESOLUTION_S = 15 * 60


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    role: str
    capacity: int
    skills: dict[str, int]
    teams: dict[str, str]  # team slug -> member | supervisor


PEOPLE = [
    Person("Demo Admin", ADMIN_EMAIL, "admin", 0, {}, {}),
    # The console's user: an agent who also leads the support team (so the rate-limit and
    # escalation notifications reach the person watching the demo).
    Person(
        "Sofía Ramírez",
        AGENT_EMAIL,
        "agent",
        8,
        {"spanish": 5, "english": 4, "billing": 3},
        {"support": "supervisor", "sales": "member"},
    ),
    Person("Tom Becker", "tom@demo.example.com", "agent", 5, {"english": 5, "sales": 4}, {"sales": "member"}),
    Person(
        "Diego Torres", "diego@demo.example.com", "supervisor", 3, {"spanish": 5}, {"sales": "supervisor"}
    ),
]

CANNED: list[dict[str, Any]] = [
    {
        "shortcut": "/hola",
        "title": "Saludo",
        "category": "general",
        "content": "¡Hola {{customer_first_name|}}! Soy {{agent_first_name}} de MAX. "
        "¿En qué te puedo ayudar?",
    },
    {
        "shortcut": "/hello",
        "title": "Greeting",
        "category": "general",
        "content": "Hi {{customer_first_name|there}}! I'm {{agent_first_name}} from MAX. How can I help?",
    },
    {
        "shortcut": "/gracias",
        "title": "Despedida",
        "category": "general",
        "content": "Gracias por escribirnos, {{customer_first_name|}}. "
        "Tu caso es el #{{conversation_number}}.",
    },
    {
        "shortcut": "/thanks",
        "title": "Closing",
        "category": "general",
        "content": "Thanks for reaching out, {{customer_first_name|}}! Your case number is "
        "#{{conversation_number}}.",
    },
    {
        "shortcut": "/pedido",
        "title": "Pedido en camino",
        "category": "pedidos",
        "team_id": "support",
        "content": "Tu pedido {{order_id}} ya salió de nuestro almacén y llega en "
        "{{days|2 a 3}} días hábiles.",
    },
    {
        "shortcut": "/order",
        "title": "Order on its way",
        "category": "orders",
        "team_id": "support",
        "content": "Your order {{order_id}} has left our warehouse and arrives in "
        "{{days|2-3}} business days.",
    },
    {
        "shortcut": "/reembolso",
        "title": "Reembolso",
        "category": "facturación",
        "team_id": "support",
        "content": "Ya solicitamos el reembolso de {{amount}}; lo verás en tu estado de cuenta "
        "en 5 a 10 días.",
    },
    {
        "shortcut": "/cotizacion",
        "title": "Cotización",
        "category": "ventas",
        "team_id": "sales",
        "content": "Con gusto, {{customer_first_name|}}: te preparo la cotización de {{quantity}} licencias "
        "y te la envío hoy mismo.",
    },
]

TEMPLATES = [  # (name, language, body, example values)
    (
        "order_update",
        "es",
        "Hola {{1}}, tu pedido {{2}} ya va en camino. Te avisamos cuando llegue.",
        ["Ana", "A-1042"],
    ),
    (
        "order_update",
        "en",
        "Hi {{1}}, your order {{2}} is on its way. We will let you know when it arrives.",
        ["Ann", "A-1042"],
    ),
    (
        "follow_up",
        "es",
        "Hola {{1}}, ¿pudimos resolver tu consulta? Responde a este mensaje si necesitas algo más.",
        ["Ana"],
    ),
    (
        "follow_up",
        "en",
        "Hi {{1}}, did we solve your question? Reply to this message if you need anything else.",
        ["Ann"],
    ),
]

RULES = [
    RoutingRuleCreate(
        name="Urgent", pattern="urgente, urgent, emergencia", team="support", priority="urgent"
    ),
    RoutingRuleCreate(
        name="Billing",
        pattern="factura, cobro, cobraron, reembolso, invoice, charged, refund, billing",
        team="support",
        priority="high",
        required_skills=[SkillRequirement(skill="billing", min=2)],
    ),
    RoutingRuleCreate(
        name="Sales",
        pattern="precio, precios, cotización, licencias, quote, pricing, price, licenses",
        team="sales",
        priority="normal",
    ),
]

AFTER_HOURS = (
    "Hola {{customer_first_name|}}, gracias por escribir a Ventas. Atendemos de lunes a viernes de 9:00 "
    "a 18:00 y los sábados de 10:00 a 14:00 (hora de Ciudad de México); te respondemos en cuanto abramos. "
    "Tu caso es el #{{conversation_number}}."
)


@dataclass
class Seeded:
    """What the rest of the demo needs from the seed; tokens and secrets are shown once."""

    admin_token: str
    agent_token: str
    agent_name: str
    webhook_secret: str
    templates: list[tuple[str, str, str]] = field(default_factory=list)  # (meta id, name, language)


def is_seeded(db: Database) -> bool:
    with db.session(write=False) as session:
        return session.exec(select(User).where(User.email == ADMIN_EMAIL)).first() is not None


def seed(db: Database, settings: Settings, receiver_url: str, urgent_frt_s: int = SHORT_FRT_S) -> Seeded:
    """Seeds an empty database; templates are submitted to the Graph API (the sandbox)."""
    tokens: dict[str, str] = {}
    with db.session() as session:
        channels.ensure_config_accounts(session, settings)
        for slug, name in (("support", "Soporte"), ("sales", "Ventas")):
            teams.create_team(session, SYSTEM, TeamCreate(slug=slug, name=name, timezone=TIMEZONE))
        for person in PEOPLE:
            user, token = users.create_user(
                session,
                SYSTEM,
                UserCreate(name=person.name, email=person.email, role=person.role, capacity=person.capacity),
            )
            assert user.id is not None
            tokens[person.email] = token
            for slug, role in person.teams.items():
                teams.set_member(session, SYSTEM, slug, user.id, role)
            if person.skills:
                routing_rules.set_skills(session, SYSTEM, person.email, person.skills)
        _hours(session)
        _sla(session, urgent_frt_s)
        admin = _actor(session, ADMIN_EMAIL)
        for item in CANNED:
            canned.create(session, admin, CannedResponseCreate(**item))
        for rule in RULES:
            routing_rules.add_rule(session, admin, rule)
        for account in ("default", settings.whatsapp.phone_number_id):
            channels.set_default_team(session, admin, account, "support")
        created = webhooks.create(
            session,
            admin,
            settings,
            WebhookSubscriptionCreate(url=receiver_url, events=["*"], description=RECEIVER_DESCRIPTION),
        )
    submitted = []
    for name, language, body, example in TEMPLATES:
        components = [{"type": "BODY", "text": body, "example": {"body_text": [example]}}]
        template = templates.create(
            db,
            settings,
            admin,
            TemplateCreate(name=name, language=language, category="UTILITY", components=components),
        )
        assert template.whatsapp_template_id is not None
        submitted.append((template.whatsapp_template_id, name, language))
    return Seeded(
        admin_token=tokens[ADMIN_EMAIL],
        agent_token=tokens[AGENT_EMAIL],
        agent_name=PEOPLE[1].name,
        webhook_secret=created.secret,
        templates=submitted,
    )


def refresh(db: Database, settings: Settings, receiver_url: str, urgent_frt_s: int = SHORT_FRT_S) -> Seeded:
    """For a data directory seeded by an earlier run: new tokens (the old ones were shown once),
    the subscription pointed at this run's receiver with a fresh secret, and this run's urgent
    first-response target."""
    with db.session() as session:
        channels.ensure_config_accounts(session, settings)
        _urgent_policy(session, urgent_frt_s)
        admin_user = _user(session, ADMIN_EMAIL)
        agent_user = _user(session, AGENT_EMAIL)
        admin = users.actor_for(session, admin_user)
        assert admin_user.id is not None
        assert agent_user.id is not None
        _, admin_token = users.create_token(session, admin, admin_user.id, "max demo")
        _, agent_token = users.create_token(session, admin, agent_user.id, "max demo")
        subscription = session.exec(
            select(WebhookSubscription).where(WebhookSubscription.description == RECEIVER_DESCRIPTION)
        ).first()
        if subscription is None:
            secret = webhooks.create(
                session,
                admin,
                settings,
                WebhookSubscriptionCreate(url=receiver_url, events=["*"], description=RECEIVER_DESCRIPTION),
            ).secret
        else:
            assert subscription.id is not None
            webhooks.update(
                session, admin, settings, subscription.id, WebhookSubscriptionUpdate(url=receiver_url)
            )
            webhooks.set_active(session, admin, subscription.id, True)
            secret = webhooks.rotate_secret(session, admin, subscription.id).secret
    return Seeded(
        admin_token=admin_token, agent_token=agent_token, agent_name=agent_user.name, webhook_secret=secret
    )


def stored_templates(db: Database) -> list[dict[str, Any]]:
    """The templates an earlier run stored, as Meta would list them (to load into a new sandbox)."""
    with db.session(write=False) as session:
        rows = session.exec(
            select(WhatsAppTemplate)
            .where(col(WhatsAppTemplate.status) != "DELETED")
            .order_by(col(WhatsAppTemplate.id))
        ).all()
        return [
            {"name": r.name, "language": r.language, "category": r.category, "components": r.components}
            for r in rows
        ]


def _hours(session: Session) -> None:
    # Support never closes (so its urgent SLA runs around the clock); sales keeps office hours,
    # with Mexico's public holidays and an after-hours reply.
    hours.set_days(session, SYSTEM, "support", HoursSet(days=ALL_WEEK, opens="00:00", closes="00:00"))
    hours.set_days(session, SYSTEM, "sales", HoursSet(days=WEEKDAYS, opens="09:00", closes="18:00"))
    hours.set_days(session, SYSTEM, "sales", HoursSet(days=[5], opens="10:00", closes="14:00"))
    hours.set_message(session, SYSTEM, "sales", AFTER_HOURS)
    year = dt.date.today().year
    hours.import_holidays(session, SYSTEM, "sales", "MX", year, language="es")


def _urgent_policy(session: Session, frt_s: int) -> None:
    """Support's urgent policy: the short first-response target, escalation at twice it."""
    sla_policies.set_policy(
        session,
        SYSTEM,
        SlaPolicySet(
            team="support",
            priority=SHORT_SLA_PRIORITY,
            frt_target_s=frt_s,
            resolution_target_s=max(SHORT_RESOLUTION_S, 2 * frt_s),
            escalation_after_s=2 * frt_s,
            business_hours_only=False,
        ),
    )


def _sla(session: Session, urgent_frt_s: int) -> None:
    minute, hour = 60, 3600
    _urgent_policy(session, urgent_frt_s)
    policies = [
        ("support", "high", 10 * minute, 2 * hour, None, False),
        ("support", "normal", 30 * minute, 8 * hour, None, False),
        ("support", "low", 2 * hour, 24 * hour, None, False),
        ("sales", "high", 15 * minute, 4 * hour, None, True),
        ("sales", "normal", hour, 24 * hour, None, True),
    ]
    for team, priority, frt, resolution, escalate, business_hours in policies:
        sla_policies.set_policy(
            session,
            SYSTEM,
            SlaPolicySet(
                team=team,
                priority=priority,
                frt_target_s=frt,
                resolution_target_s=resolution,
                escalation_after_s=escalate,
                business_hours_only=business_hours,
            ),
        )
    sla_policies.set_targets(session, SYSTEM, SlaTargetsSet(team="support", frt=95, resolution=90))
    sla_policies.set_targets(session, SYSTEM, SlaTargetsSet(team="sales", frt=90, resolution=85))


def _user(session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == email)).first()
    if user is None:
        raise LookupError(f"the demo user {email} is missing from this data directory")
    return user


def _actor(session: Session, email: str) -> Actor:
    return users.actor_for(session, _user(session, email))
